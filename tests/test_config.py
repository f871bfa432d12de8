"""BertConfig reads Hugging Face config.json fields and refuses impossible ones by name."""
import json

import pytest

from minibert import BertConfig


def test_reads_a_hugging_face_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert",
                                "hidden_size": 384, "num_attention_heads": 12,
                                "intermediate_size": 1536, "num_hidden_layers": 6,
                                "hidden_act": "gelu", "transformers_version": "4.8.2"}))
    config = BertConfig.from_json_file(path)
    assert (config.hidden_size, config.head_size, config.gelu_form) == (384, 32, "erf")
    assert BertConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("fields, message", [
    ({"hidden_size": 100, "num_attention_heads": 12}, "hidden_size 100 is not divisible by num_attention_heads 12"),
    ({"hidden_act": "relu"}, "BertConfig.hidden_act: expected one of .* found 'relu'"),
    ({"num_hidden_layers": 0}, "BertConfig.num_hidden_layers: expected a positive integer, found 0"),
    ({"hidden_dropout_prob": 1.0}, r"BertConfig.hidden_dropout_prob: expected a probability in \[0, 1\)"),
])
def test_impossible_configs_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        BertConfig.from_dict(fields)


def test_bad_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 384,\n  oops\n}')
    with pytest.raises(ValueError, match=r"config.json: not valid JSON \(line 3"):
        BertConfig.from_json_file(path)
