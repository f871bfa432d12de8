"""AdapterHub's adapter folders, read and written: its names for minibert's adapters, its
bottleneck config (`BnConfig`) of an AdapterConfig, and its tensor names of an adapter set's
tensors.

AdapterHub (`pip install adapters`) describes a bottleneck adapter by flags where minibert has a
placement: Houlsby's is `original_ln_before=False` (the adapter reads the sub-layer's output),
Pfeiffer's `original_ln_before=True` (it reads the block's LayerNorm of it), the parallel one
`is_parallel=True` (it reads the block's input); all keep the residual around the adapter
before the block's LayerNorm (`residual_before_ln=True`) and end in it
(`original_ln_after=True`). The sites are `mh_adapter` (the attention block) and
`output_adapter` (the feed-forward block). The size is a `reduction_factor`, M = int(C //
reduction_factor).
"""
import json
import math
import re
from pathlib import Path

import safetensors.numpy

from .adapters import SITES, AdapterConfig, adapter_prefixes, adapter_shapes, layernorm_names
from .atomic import write_folder_atomically
from .pretrained import read_weights

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
    if head.get("pooling", "cls") == "mean":
        raise ValueError("head: pooling 'mean' (the mean of the tokens) is not a head "
                         "AdapterHub has (its heads read the [CLS] token or the pooler)")
    return {"head_type": "classification", "num_labels": head["num_labels"],
            "layers": head.get("layers", 1), "activation_function": "tanh",
            "use_pooler": head.get("pooling", "cls") == "cls", "bias": True,
            "dropout_prob": dropout_prob,
            "label2id": None if labels is None else {label: i for i, label in enumerate(labels)}}


def head_tensor_names(head, name):
    """{minibert's head tensor name: AdapterHub's}. AdapterHub's head is a sequence: dropout,
    linear (module 1); a two-layer one goes on with tanh, dropout, linear (module 4)."""
    if head.get("kind") == "question-answering":
        modules = {"qa_outputs": 1}
    else:
        modules = {"pre_classifier": 1, "classifier": 4} if head.get("layers", 1) == 2 \
            else {"classifier": 1}
    return {f"{ours}.{kind}": f"heads.{name}.{i}.{kind}" for ours, i in modules.items()
            for kind in ("weight", "bias")}


def full_config(config, hidden_size, name, model_name):
    """AdapterHub's wrapper around a config in its json files (its build_full_config)."""
    return {"config": config, "hidden_size": hidden_size, "model_type": "bert",
            "model_class": MODEL_CLASS, "model_name": model_name, "name": name,
            "version": "adapters." + VERSION}


# ---------------------------------------------------------------------------- reading
def write_folder(out, config, info, tensors, name, model_name=None, with_head=True):
    """Write an adapter set (its AdapterConfig, an adapter file's metadata `info` and tensors)
    as AdapterHub adapter folder `out`, atomically: its config, its adapters under AdapterHub's
    names (adapter `name`), the head (unless with_head is False) and, in LAYERNORMS, the
    LayerNorms trained with the adapters, which AdapterHub has no place for. Returns the names
    of the files written."""
    C, L = info["base_config"]["hidden_size"], info["base_config"]["num_hidden_layers"]
    as_json = lambda config: json.dumps(full_config(config, C, name, model_name),
                                        indent=2, sort_keys=True) + "\n"
    files = {ADAPTER_CONFIG: as_json(bn_config(config, C)),
             ADAPTER_WEIGHTS: {BASE_PREFIX + hub: tensors[ours]
                               for ours, hub in tensor_names(config, L, name).items()},
             LAYERNORMS: {BASE_PREFIX + n: tensors[n] for n in layernorm_names(L)}}
    head = info["head"]
    if with_head and head is not None:
        labels = (info.get("data") or {}).get("labels")
        try:
            config_of_head = head_config(head, labels, head.get("dropout_prob", 0.0))
        except ValueError as e:
            raise ValueError(f"{e}; export the adapters alone (without the head)") from None
        files[HEAD_CONFIG] = as_json(config_of_head)
        files[HEAD_WEIGHTS] = {hub: tensors[ours]
                               for ours, hub in head_tensor_names(head, name).items()}

    def write(folder):
        for file, content in files.items():
            if isinstance(content, str):
                (folder / file).write_text(content, "utf-8")
            else:
                safetensors.numpy.save_file(content, folder / file, metadata={"format": "pt"})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_folder_atomically(Path(out), write)
    return list(files)


FORMAT = "adapterhub"                 # the format read_folder's metadata says it came from
ADAPTER_WEIGHTS_BIN, HEAD_WEIGHTS_BIN = "pytorch_adapter.bin", "pytorch_model_head.bin"
# files before adapters 1.0 (adapter-transformers) named the tanh form "gelu", the erf "gelu_orig"
LEGACY_NON_LINEARITIES = {"gelu": "gelu_new", "gelu_orig": "gelu"}
OURS_OF_NON_LINEARITY = {**{hub: ours for ours, hub in NON_LINEARITIES.items()}, "silu": "swish"}
# BnConfig fields minibert's adapters have no counterpart for, and the value that means "none"
WITHOUT = {"use_gating": False, "phm_layer": False, "inv_adapter": None, "cross_adapter": False,
           "adapter_residual_before_ln": False, "stochastic_depth": 0.0}
# BnConfig fields that do not change what a trained adapter computes
IGNORED = {"architecture", "init_weights", "init_weights_seed", "dropout", "phm_dim",
           "factorized_phm_W", "shared_W_phm", "shared_phm_rule", "factorized_phm_rule",
           "phm_c_init", "phm_init_range", "learn_phm", "hypercomplex_nonlinearity", "phm_rank",
           "phm_bias", "inv_adapter_reduction_factor"}
READ = {"mh_adapter", "output_adapter", "reduction_factor", "non_linearity", "original_ln_before",
        "original_ln_after", "residual_before_ln", "is_parallel", "ln_before", "ln_after",
        "scaling", "leave_out"}
KEY = re.compile(r"(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\."
                 r"([^.]+)\.(adapter_down\.[01]|adapter_up|adapter_norm_before|"
                 r"adapter_norm_after)\.(weight|bias)")


def is_folder(path):
    """Whether `path` is an AdapterHub adapter folder (it holds adapter_config.json)."""
    return Path(path).is_dir() and (Path(path) / ADAPTER_CONFIG).is_file()


def read_folder(folder, tensors=True):
    """(metadata, {minibert's name: float32 array}) of an AdapterHub adapter folder, in the
    form of a minibert adapter file's (adapter_files.read_adapter_file): the adapter's
    AdapterConfig fields, its head and labels, and its tensors under minibert's names (the
    LayerNorms too where the folder holds minibert_layernorms.safetensors). Anything minibert
    cannot compute as AdapterHub does is refused in one line naming the field and its value."""
    folder = Path(folder)
    if (folder / "adapter_fusion_config.json").exists():
        raise ValueError(f"{folder}: an AdapterFusion (adapter_fusion_config.json); minibert "
                         "reads single bottleneck adapters")
    full = _read_json(folder / ADAPTER_CONFIG)
    where = folder / ADAPTER_CONFIG
    config = full.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{where}: config: expected a bottleneck adapter's settings, found "
                         f"{config!r}")
    if config.get("architecture") is not None:
        raise ValueError(f"{where}: config.architecture {config['architecture']!r}: minibert "
                         "reads bottleneck adapters alone (architecture null)")
    if full.get("model_type", "bert") != "bert":
        raise ValueError(f"{where}: model_type {full['model_type']!r}: minibert is BERT")
    C = full.get("hidden_size")
    if not isinstance(C, int) or C < 1:
        raise ValueError(f"{where}: hidden_size: expected a positive integer, found {C!r}")
    adapter = adapter_fields(config, C, "version" in full, where)
    name = full.get("name")
    info = {"format": FORMAT, "task": None, "name": name, "base_fingerprint": None,
            "base_config": {"hidden_size": C}, "adapter": adapter, "head": None, "data": None}
    head_tensors = None
    if (folder / HEAD_CONFIG).is_file():
        info["head"], labels, head_tensors = _head(folder, C, tensors)
        info["data"] = {"labels": labels} if "num_labels" in info["head"] else None
    if not tensors:
        return info, None
    found = _adapter_tensors(_weights(folder, ADAPTER_WEIGHTS, ADAPTER_WEIGHTS_BIN), name,
                             adapter["ln_before"], folder)
    if (folder / LAYERNORMS).is_file():
        found.update({n.removeprefix(BASE_PREFIX): a
                      for n, a in read_weights(folder / LAYERNORMS).items()})
    return info, {**found, **(head_tensors or {})}


def adapter_fields(config, C, versioned, where):
    """AdapterConfig's fields of a BnConfig's (a dict), or a ValueError naming the field."""
    def refuse(field, why):
        raise ValueError(f"{where}: config.{field} {config.get(field)!r}: {why}")
    for field in sorted(set(config) - READ - IGNORED - set(WITHOUT)):
        refuse(field, "a setting minibert's adapters do not have")
    for field, none in WITHOUT.items():
        if config.get(field, none) not in (none, None if none is False else none):
            refuse(field, "minibert's adapters have no such part")
    flags = {k: config.get(k) for k in ("original_ln_before", "original_ln_after",
                                        "residual_before_ln", "is_parallel")}
    if flags["original_ln_after"] is not True:
        refuse("original_ln_after", "expected true: every placement ends in the block's "
                                    "LayerNorm")
    if flags["is_parallel"]:
        placement = "parallel"
    elif flags["original_ln_before"]:
        if flags["residual_before_ln"] is not True:
            refuse("residual_before_ln", "expected true with original_ln_before (Pfeiffer's "
                                         "adapter adds the sub-layer's own output)")
        placement = "pfeiffer"
    else:
        if flags["residual_before_ln"] not in (True, False):
            refuse("residual_before_ln", "expected true or false before the block's "
                                         "LayerNorm")
        placement = "houlsby"
    sites = tuple(site for site, flag in SITE_FLAGS.items() if config.get(flag))
    if not sites:
        refuse("output_adapter", "expected mh_adapter or output_adapter true: no site has an "
                                 "adapter")
    nonlinearity = str(config.get("non_linearity")).lower()
    if not versioned:                   # written by adapter-transformers, before "version"
        nonlinearity = LEGACY_NON_LINEARITIES.get(nonlinearity, nonlinearity)
    if nonlinearity not in OURS_OF_NON_LINEARITY:
        refuse("non_linearity", f"expected one of {', '.join(sorted(OURS_OF_NON_LINEARITY))}")
    factor = config.get("reduction_factor")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
        refuse("reduction_factor", "expected a number > 0 (one size for every layer)")
    scaling = config.get("scaling", 1.0)
    if not isinstance(scaling, float):
        refuse("scaling", "expected a float (a learned scaling is not minibert's)")
    leave_out = config.get("leave_out") or []
    if not isinstance(leave_out, list) or not all(isinstance(l, int) for l in leave_out):
        refuse("leave_out", "expected a list of layer indices")
    for field in ("ln_before", "ln_after"):
        if not isinstance(config.get(field, False), bool):
            refuse(field, "expected true or false")
    return {"size": max(1, int(C // factor)), "init_std": AdapterConfig.init_std,
            "activation": OURS_OF_NON_LINEARITY[nonlinearity], "leave_out": sorted(leave_out),
            "placement": placement, "sites": list(sites), "scaling": scaling,
            "ln_before": config.get("ln_before", False), "ln_after": config.get("ln_after", False)}


def _adapter_tensors(tensors, name, ln_before, folder):
    """AdapterHub's adapter tensors under minibert's names."""
    modules = {"adapter_down.0": "ln_before" if ln_before else "down",
               "adapter_down.1": "down", "adapter_up": "up",
               "adapter_norm_before": "ln_before", "adapter_norm_after": "ln_after"}
    ours = {}
    for key, array in tensors.items():
        match = KEY.fullmatch(key)
        if match is None or match[3] != name or (match[4] == "adapter_down.1" and not ln_before):
            raise ValueError(f"{folder}: tensor {key} is not one of adapter {name!r}'s")
        layer, site, _, module, kind = match.groups()
        ours[f"encoder.layer.{layer}.{site}.adapter.{modules[module]}.{kind}"] = array
    return ours


def _head(folder, C, tensors):
    """(minibert's head metadata, labels in id order or None, {minibert's name: array} or None
    when tensors is False) of the folder's head."""
    where = folder / HEAD_CONFIG
    full = _read_json(where)
    config = full.get("config") or {}
    kind = config.get("head_type")
    if kind not in ("classification", "question_answering"):
        raise ValueError(f"{where}: config.head_type {kind!r}: minibert has classification "
                         "(and regression, one label) and question_answering heads")
    layers = config.get("layers")
    if layers not in ((1,) if kind == "question_answering" else (1, 2)):
        raise ValueError(f"{where}: config.layers {layers!r}: minibert's heads have one linear "
                         "layer (classification: or two)")
    if layers == 2 and config.get("activation_function") != "tanh":
        raise ValueError(f"{where}: config.activation_function "
                         f"{config.get('activation_function')!r}: minibert's two-layer head "
                         "has tanh")
    if config.get("bias", True) is not True:
        raise ValueError(f"{where}: config.bias {config.get('bias')!r}: minibert's heads have "
                         "a bias")
    if kind == "question_answering":
        if config.get("num_labels", 2) != 2:
            raise ValueError(f"{where}: config.num_labels {config['num_labels']!r}: a "
                             "question-answering head has 2 (start, end)")
        head, labels = {"kind": "question-answering"}, None
    else:
        if not isinstance(config.get("use_pooler", False), bool):
            raise ValueError(f"{where}: config.use_pooler {config['use_pooler']!r}: expected "
                             "true or false")
        num_labels = config.get("num_labels")
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"{where}: config.num_labels: expected a positive integer, found "
                             f"{num_labels!r}")
        labels = _labels(config.get("label2id"), num_labels, where)
        pooler = config.get("use_pooler", False)
        head = {"num_labels": num_labels, "dropout_prob": config.get("dropout_prob") or 0.0,
                "pooling": "cls" if pooler else "cls_token",
                "pooling_reason": "AdapterHub's head, on the " + ("pooler" if pooler else
                                                                  "[CLS] token"),
                **({"layers": 2} if layers == 2 else {})}
    if not tensors:
        return head, labels, None
    ours_of = {hub: ours for ours, hub in head_tensor_names(head, full.get("name")).items()}
    found = {}
    for key, array in _weights(folder, HEAD_WEIGHTS, HEAD_WEIGHTS_BIN).items():
        if key not in ours_of:
            raise ValueError(f"{folder}: tensor {key} is not one of head {full.get('name')!r}'s "
                             f"(those are {', '.join(sorted(ours_of))})")
        found[ours_of[key]] = array
    return head, labels, found


def _labels(label2id, num_labels, where):
    """The label names in id order: None for regression; where the file names none,
    transformers' own names for them, LABEL_0, LABEL_1, ..."""
    if num_labels == 1:
        return None
    if label2id is None:
        return [f"LABEL_{i}" for i in range(num_labels)]
    ids = sorted(label2id.values()) if isinstance(label2id, dict) else None
    if ids != list(range(num_labels)):
        raise ValueError(f"{where}: config.label2id: expected ids 0 .. {num_labels - 1}, found "
                         f"{label2id!r}")
    return [label for label, _ in sorted(label2id.items(), key=lambda item: item[1])]


def _weights(folder, safe, pickled):
    """The tensors of folder/safe, else of folder/pickled (read without torch, refusing every
    pickled global but tensors)."""
    for file in (safe, pickled):
        if (folder / file).is_file():
            return read_weights(folder / file)
    raise ValueError(f"{folder}: expected {safe} or {pickled}, found neither")


def _read_json(path):
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
