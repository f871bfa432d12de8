"""Parameter names: what a Hugging Face checkpoint name says about its parameter.

    encoder.layer.3.attention.output.adapter.down.weight
                  |  |                |
                  |  site             kind "adapter"
                  layer 3

Every parameter is named this way (adapters and the head too), so whatever needs to know
where a parameter sits or what it is -- which ones a method trains, which ones weight decay
spares, which layers an ablation removes -- asks here.
"""
import re
from typing import NamedTuple

# the modules inside a site, by the kind of parameter they hold
KINDS = {"LayerNorm": "layernorm", "adapter": "adapter", "word_embeddings": "embedding",
         "position_embeddings": "embedding", "token_type_embeddings": "embedding"}
LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.+)")


class ParameterName(NamedTuple):
    layer: int | None   # the encoder layer; None for the embeddings, the pooler and heads
    site: str           # the part it belongs to: "embeddings", "attention.self",
                        # "attention.output", "intermediate", "output", "pooler", "classifier"
    kind: str           # "embedding", "layernorm", "adapter" or "linear"


def parse(name):
    """"encoder.layer.3.output.LayerNorm.bias" -> ParameterName(3, "output", "layernorm")."""
    match = LAYER.fullmatch(name)
    layer, rest = (int(match[1]), match[2]) if match else (None, name)
    parts = rest.split(".")[:-1]                 # without "weight" / "bias"
    site = []
    for part in parts:
        if part in KINDS or part in ("query", "key", "value", "dense"):
            break
        site.append(part)
    kind = next((KINDS[part] for part in parts if part in KINDS), "linear")
    return ParameterName(layer, ".".join(site), kind)


def layer_of(name):
    """The encoder layer a parameter belongs to, None outside the encoder."""
    return parse(name).layer


def is_layernorm(name):
    return parse(name).kind == "layernorm"


def is_adapter(name):
    return parse(name).kind == "adapter"


def is_adapter_layernorm(name):
    """A LayerNorm of an adapter's own (AdapterConfig's ln_before, ln_after)."""
    return is_adapter(name) and name.split(".")[-2] in ("ln_before", "ln_after")
