"""names: a parameter's layer, site and kind, read from its name."""
import pytest

from minibert.param_names import ParameterName, is_adapter, is_layernorm, layer_of, parse


@pytest.mark.parametrize("name, parsed", [
    ("encoder.layer.3.attention.output.adapter.down.weight", (3, "attention.output", "adapter")),
    ("encoder.layer.11.output.LayerNorm.bias", (11, "output", "layernorm")),
    ("encoder.layer.0.attention.self.query.weight", (0, "attention.self", "linear")),
    ("encoder.layer.2.intermediate.dense.bias", (2, "intermediate", "linear")),
    ("embeddings.word_embeddings.weight", (None, "embeddings", "embedding")),
    ("embeddings.LayerNorm.weight", (None, "embeddings", "layernorm")),
    ("pooler.dense.weight", (None, "pooler", "linear")),
    ("classifier.bias", (None, "classifier", "linear")),
])
def test_parse(name, parsed):
    assert parse(name) == ParameterName(*parsed)
    assert layer_of(name) == parsed[0]
    assert is_layernorm(name) == (parsed[2] == "layernorm")
    assert is_adapter(name) == (parsed[2] == "adapter")
