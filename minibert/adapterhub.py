"""AdapterHub's names for minibert's adapters: its bottleneck config (`BnConfig`) of an
AdapterConfig, and its tensor names of an adapter set's tensors.

AdapterHub (`pip install adapters`) describes a bottleneck adapter by flags where minibert has a
placement: Houlsby's is `original_ln_before=False` (the adapter reads the sub-layer's output),
Pfeiffer's `original_ln_before=True` (it reads the block's LayerNorm of it), the parallel one
`is_parallel=True` (it reads the block's input); all keep the residual around the adapter
before the block's LayerNorm (`residual_before_ln=True`) and end in it
(`original_ln_after=True`). The sites are `mh_adapter` (the attention block) and
`output_adapter` (the feed-forward block). The size is a `reduction_factor`, M = int(C //
reduction_factor).
"""
import math

from .adapters import SITES, adapter_prefixes, adapter_shapes

VERSION = "1.3.0"                     # the AdapterHub release these names are those of
PLACEMENT_FLAGS = {                   # placement -> the BnConfig flags that make it
    "houlsby": {"original_ln_before": False, "original_ln_after": True,
                "residual_before_ln": True, "is_parallel": False},
    "pfeiffer": {"original_ln_before": True, "original_ln_after": True,
                 "residual_before_ln": True, "is_parallel": False},
    "parallel": {"original_ln_before": False, "original_ln_after": True,
                 "residual_before_ln": False, "is_parallel": True},
}
SITE_FLAGS = {"attention.output": "mh_adapter", "output": "output_adapter"}
# minibert's nonlinearities by AdapterHub's names (transformers' activations): the same
# functions, "gelu" the erf form in both
NON_LINEARITIES = {"gelu": "gelu", "gelu_new": "gelu_new", "relu": "relu", "swish": "swish",
                   "tanh": "tanh"}


def reduction_factor(C, M):
    """A float r with int(C // r) == M, as AdapterHub reads it (C / M itself, or the float next
    to it where C / M rounds the floor division down)."""
    r = C / M
    for candidate in (r, math.nextafter(r, 0.0), math.nextafter(math.nextafter(r, 0.0), 0.0)):
        if int(C // candidate) == M:
            return candidate
    raise ValueError(f"adapter size {M}: no reduction factor gives it for hidden size {C}")


def bn_config(adapter_config, hidden_size):
    """The BnConfig fields (a JSON-able dict) of an AdapterConfig on a model of hidden size C."""
    config = adapter_config
    return {
        **{flag: site in config.sites for site, flag in SITE_FLAGS.items()},
        "reduction_factor": reduction_factor(hidden_size, config.size),
        "non_linearity": NON_LINEARITIES[config.activation],
        **PLACEMENT_FLAGS[config.placement],
        "ln_before": config.ln_before, "ln_after": config.ln_after,
        "init_weights": "bert", "init_weights_seed": None, "scaling": float(config.scaling),
        "use_gating": False, "adapter_residual_before_ln": False, "inv_adapter": None,
        "inv_adapter_reduction_factor": None, "cross_adapter": False,
        "leave_out": list(config.leave_out), "dropout": 0.0, "phm_layer": False,
        "stochastic_depth": 0.0, "architecture": None,
    }


def tensor_names(adapter_config, num_layers, name, prefix=""):
    """{minibert's adapter tensor name: AdapterHub's} for adapter `name` (AdapterHub's models
    hold the base under `prefix`, "bert." in a BertAdapterModel). The down-projection is the
    first module of AdapterHub's `adapter_down` sequence, the second after an ln_before."""
    down = "adapter_down.1" if adapter_config.ln_before else "adapter_down.0"
    modules = {"down": down, "up": "adapter_up", "ln_before": "adapter_down.0",
               "ln_after": "adapter_norm_after"}
    names = {}
    for ours in adapter_prefixes(num_layers, adapter_config.leave_out, adapter_config.sites):
        site = ours[:-len(".adapter")]
        for tensor in adapter_shapes(1, adapter_config):
            module, kind = tensor.split(".")
            names[f"{ours}.{tensor}"] = f"{prefix}{site}.adapters.{name}.{modules[module]}.{kind}"
    return names




# ---------------------------------------------------------------------------- folders
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter.safetensors"
HEAD_CONFIG, HEAD_WEIGHTS = "head_config.json", "model_head.safetensors"
LAYERNORMS = "minibert_layernorms.safetensors"    # the LayerNorms trained with the adapters
BASE_PREFIX = "bert."                # where a BertAdapterModel holds the base model
MODEL_CLASS = "BertAdapterModel"


def head_config(head, labels, dropout_prob):
    """AdapterHub's head config of a minibert head's metadata, or a ValueError naming what
    AdapterHub's heads cannot express."""
    if head.get("kind") == "question-answering":
        return {"head_type": "question_answering", "num_labels": 2, "layers": 1,
                "activation_function": "tanh", "label2id": None, "dropout_prob": 0.0}
    if head.get("pooling", "cls") != "cls":
        raise ValueError(f"head: pooling {head['pooling']!r} (the mean of the tokens) is not a "
                         "head AdapterHub has (its heads read the [CLS] token or the pooler)")
    return {"head_type": "classification", "num_labels": head["num_labels"], "layers": 1,
            "activation_function": "tanh", "use_pooler": True, "bias": True,
            "dropout_prob": dropout_prob,
            "label2id": None if labels is None else {label: i for i, label in enumerate(labels)}}


def head_tensor_names(head, name):
    """{minibert's head tensor name: AdapterHub's}: the last Linear of a 1-layer head is module
    1 of its sequence, after its dropout."""
    ours = "qa_outputs" if head.get("kind") == "question-answering" else "classifier"
    return {f"{ours}.{kind}": f"heads.{name}.1.{kind}" for kind in ("weight", "bias")}


def full_config(config, hidden_size, name, model_name):
    """AdapterHub's wrapper around a config in its json files (its build_full_config)."""
    return {"config": config, "hidden_size": hidden_size, "model_type": "bert",
            "model_class": MODEL_CLASS, "model_name": model_name, "name": name,
            "version": "adapters." + VERSION}
