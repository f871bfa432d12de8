"""Adapter files: one task's adapters, LayerNorms and head in a small safetensors file.

The metadata names the base model (a fingerprint of its frozen weights), the adapter
settings and the head, so a file is never loaded onto a base it was not trained on.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .adapters import AdapterConfig, AdapterSet, adapter_prefixes, layernorm_names
from .backend import to_host
from .atomic import write_atomically
from .pretrained import check_tensors
from .heads import head_from_metadata
from .param_names import is_adapter, is_layernorm

FORMAT = "minibert-adapters-1"


def base_fingerprint(model):
    """sha256 of the base weights that adapter training leaves alone (all but the LayerNorms),
    in float32, so the same checkpoint matches on any device and in any dtype."""
    digest = hashlib.sha256()
    for name in sorted(model.params):
        if not is_layernorm(name) and not is_adapter(name):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(to_host(model.params[name]), np.float32).tobytes())
    return digest.hexdigest()


def adapter_set_shapes(config, adapter_config):
    """{name: shape} of an adapter set: its adapters and its 2L+1 LayerNorms."""
    C, M, L = config.hidden_size, adapter_config.size, config.num_hidden_layers
    shapes = {n: (C,) for n in layernorm_names(L)}
    for prefix in adapter_prefixes(L, adapter_config.leave_out):
        shapes.update({prefix + ".down.weight": (M, C), prefix + ".down.bias": (M,),
                       prefix + ".up.weight": (C, M), prefix + ".up.bias": (C,)})
    return shapes


def save_adapters(model, path, head=None, task=None, data=None):
    """Write the active adapter set (and the head, if given) to `path`, atomically. `data`
    (a JSON-able dict: the labels in id order, the columns of your own files) is kept in the
    metadata for eval and predict (read_adapter_file)."""
    if model.adapters.active is None:
        raise ValueError("save_adapters: the model has no active adapter set")
    adapter_set = model.adapters[model.adapters.active]
    tensors = {n: np.ascontiguousarray(to_host(p), np.float32) for n, p in adapter_set.params.items()}
    if head is not None:
        tensors.update({n: np.ascontiguousarray(to_host(p), np.float32)
                        for n, p in head.params.items()})
    info = {"format": FORMAT, "task": task, "base_fingerprint": base_fingerprint(model),
            "base_config": model.config.to_dict(),
            "adapter": {"size": adapter_set.config.size, "init_std": adapter_set.config.init_std,
                        "activation": adapter_set.config.activation,
                        "leave_out": list(adapter_set.config.leave_out)},
            "head": None if head is None else head.metadata(),
            "data": data}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: safetensors.numpy.save_file(
        tensors, tmp, metadata={"format": "pt", "minibert": json.dumps(info)}))


def read_adapter_file(path):
    """(info dict, {name: float32 array}) of an adapter file, refusing anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such adapter file")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:          # truncated or not safetensors at all
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        info = json.loads(metadata["minibert"])
        assert info["format"] == FORMAT
    except (KeyError, ValueError, AssertionError, TypeError):
        raise ValueError(f"{path}: not a minibert adapter file (its metadata has no "
                         f"'minibert' entry of format {FORMAT})") from None
    return info, tensors


def load_adapters(model, path, name=None, expected_size=None):
    """Load an adapter file as adapter set `name` (default: the file's task, else its stem) and
    make it active. Returns the file's head (a SequenceClassificationHead or a
    QuestionAnsweringHead) or None."""
    path = Path(path)
    info, tensors = read_adapter_file(path)
    base = info["base_config"]
    for field in ("hidden_size", "num_hidden_layers"):
        if base[field] != getattr(model.config, field):
            raise ValueError(f"{path}: made for a base model with {field} {base[field]}, but this "
                             f"model has {field} {getattr(model.config, field)}")
    if expected_size is not None and info["adapter"]["size"] != expected_size:
        raise ValueError(f"{path}: holds adapters of size {info['adapter']['size']}, "
                         f"expected size {expected_size}")
    if info["base_fingerprint"] != base_fingerprint(model):
        raise ValueError(f"{path}: made for another base model (its weights' fingerprint "
                         f"{info['base_fingerprint'][:12]}... differs from this model's "
                         f"{base_fingerprint(model)[:12]}...)")
    config = AdapterConfig(size=info["adapter"]["size"], init_std=info["adapter"]["init_std"],
                           activation=info["adapter"]["activation"],
                           leave_out=tuple(info["adapter"]["leave_out"]))
    expected = adapter_set_shapes(model.config, config)
    head = None if info["head"] is None else head_from_metadata(
        info["head"], model.config.hidden_size, model.device, model.dtype)
    if head is not None:
        expected.update({n: tuple(p.shape) for n, p in head.params.items()})
    check_tensors(tensors, expected, source=str(path))
    for tensor_name, array in tensors.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {tensor_name} holds NaN or infinite values")
    name = name or info["task"] or path.stem
    if name in model.adapters:
        raise ValueError(f"{path}: the model has an adapter set named {name!r} already; "
                         "load this file under another name")
    model.adapters.add(name, AdapterSet(config, {
        n: model.device.asarray(tensors[n], dtype=model.dtype) for n in adapter_set_shapes(
            model.config, config)}))
    if head is not None:
        head.params = {n: model.device.asarray(tensors[n], dtype=model.dtype) for n in head.params}
    return head
