"""BertConfig reads Hugging Face config.json fields and refuses impossible ones by name."""
import json

import pytest

from minibert import BertConfig
from minibert.named_models import folder_of


def test_reads_a_hugging_face_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert",
                                "hidden_size": 384, "num_attention_heads": 12,
                                "intermediate_size": 1536, "num_hidden_layers": 6,
                                "hidden_act": "gelu", "transformers_version": "4.8.2"}))
    config = BertConfig.from_json_file(path)
    assert (config.hidden_size, config.head_size, config.gelu_form) == (384, 32, "erf")
    assert BertConfig.from_dict(config.to_dict()) == config


def test_takes_every_key_of_the_real_minilm_config_json():
    fields = json.loads((folder_of("minilm-l6") / "config.json").read_text())
    config = BertConfig(**fields)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (6, 384, 1536)
    assert config.extra["model_type"] == "bert" and config.extra["use_cache"] is True
    assert config.to_dict() == fields                 # written back as read


HF_ONLY_KEYS = {"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                "transformers_version": "4.44.0", "torch_dtype": "float32",
                "position_embedding_type": "absolute", "use_cache": True,
                "classifier_dropout": None, "gradient_checkpointing": False}


def test_keys_that_are_not_bert_fields_are_kept_and_change_nothing():
    config = BertConfig(hidden_size=64, num_attention_heads=4, **HF_ONLY_KEYS)
    assert config == BertConfig(hidden_size=64, num_attention_heads=4)
    assert config.extra == HF_ONLY_KEYS
    written = config.to_dict()
    assert written["architectures"] == ["BertModel"]       # what minibert's weights are
    assert written["torch_dtype"] == "float32" and written["hidden_size"] == 64
    assert BertConfig.from_dict(written).extra["transformers_version"] == "4.44.0"


@pytest.mark.parametrize("fields, message", [
    ({"hidden_size": 100, "num_attention_heads": 12}, "hidden_size 100 is not divisible by num_attention_heads 12"),
    ({"hidden_act": "relu"}, "BertConfig.hidden_act: expected one of .* found 'relu'"),
    ({"num_hidden_layers": 0}, "BertConfig.num_hidden_layers: expected a positive integer, found 0"),
    ({"hidden_dropout_prob": 1.0}, r"BertConfig.hidden_dropout_prob: expected a probability in \[0, 1\)"),
    ({"hidden_size": "384"}, "BertConfig.hidden_size: expected a positive integer, found '384'"),
    ({"position_embedding_type": "relative_key"},
     "BertConfig.position_embedding_type: expected 'absolute', found 'relative_key'"),
])
def test_impossible_configs_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        BertConfig.from_dict(fields)
    with pytest.raises(ValueError, match=message):     # keys of a real config.json beside them
        BertConfig(**{**HF_ONLY_KEYS, **fields})


def test_bad_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 384,\n  oops\n}')
    with pytest.raises(ValueError, match=r"config.json: not valid JSON \(line 3"):
        BertConfig.from_json_file(path)
