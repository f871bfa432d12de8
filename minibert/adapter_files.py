"""Adapter files: one task's adapters, LayerNorms and head in a small safetensors file.

The metadata names the base model (a fingerprint of its frozen weights), the adapter
settings and the head, so a file is never loaded onto a base it was not trained on.

The other methods change the base model's own weights (full fine-tuning all of them, top-k the
top layers): their file, a trained file, holds the weights they trained and the head instead,
and names the base by the weights they left alone. `load_training_file` loads either kind.
"""
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .adapters import AdapterConfig, AdapterSet, adapter_prefixes, adapter_shapes, layernorm_names
from .backend import to_host
from . import adapterhub
from .atomic import write_atomically
from .checks import BadValue
from .pretrained import check_tensors
from .heads import head_from_metadata
from .param_names import is_layernorm

FORMAT = "minibert-adapters-1"
TRAINED_FORMAT = "minibert-trained-1"        # the other methods' files


def base_fingerprint(model, trained=None):
    """sha256 of the base weights that training left alone, in float32, so the same checkpoint
    matches on any device and in any dtype: for adapters all but the LayerNorms, else all but
    the names in `trained`."""
    digest, base = hashlib.sha256(), model.owned.params      # the base's own, whatever is active
    for name in sorted(base):
        if not is_layernorm(name) if trained is None else name not in trained:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(to_host(base[name]), np.float32).tobytes())
    return digest.hexdigest()


def adapter_set_shapes(config, adapter_config):
    """{name: shape} of an adapter set: its adapters and its 2L+1 LayerNorms."""
    C, L = config.hidden_size, config.num_hidden_layers
    shapes = {n: (C,) for n in layernorm_names(L)}
    for prefix in adapter_prefixes(L, adapter_config.leave_out, adapter_config.sites):
        shapes.update({f"{prefix}.{tensor}": shape
                       for tensor, shape in adapter_shapes(C, adapter_config).items()})
    return shapes


def adapter_config_metadata(adapter_config):
    """An AdapterConfig as the JSON an adapter file keeps (lists for tuples)."""
    return {field: list(value) if isinstance(value, tuple) else value
            for field, value in dataclasses.asdict(adapter_config).items()}


def adapter_config_of(metadata, path):
    """The AdapterConfig an adapter file's metadata names; files written before the variants
    name none of theirs, which means Houlsby's."""
    unknown = sorted(set(metadata) - {f.name for f in dataclasses.fields(AdapterConfig)})
    if unknown:
        raise ValueError(f"{path}: adapter setting {unknown[0]!r} is not one minibert has")
    try:
        return AdapterConfig(**{field: tuple(value) if isinstance(value, list) else value
                                for field, value in metadata.items()})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def save_adapters(model, path, head=None, task=None, data=None):
    """Write the active adapter set (and the head, if given) to `path`, atomically. `data`
    (a JSON-able dict: the labels in id order, the columns of your own files) is kept in the
    metadata for eval and predict (read_adapter_file)."""
    if model.adapters.active is None:
        raise ValueError("save_adapters: the model has no active adapter set")
    adapter_set = model.adapters.active_set
    if adapter_set.disabled_layers:
        raise ValueError(f"save_adapters: adapter set {model.adapters.active!r} has layers "
                         f"{list(adapter_set.disabled_layers)} disabled; "
                         f"set_active_adapters(model, {model.adapters.active!r}) puts them "
                         "back before saving")
    tensors = {n: np.ascontiguousarray(to_host(p), np.float32) for n, p in adapter_set.params.items()}
    if head is not None:
        tensors.update({n: np.ascontiguousarray(to_host(p), np.float32)
                        for n, p in head.params.items()})
    info = {"format": FORMAT, "task": task, "base_fingerprint": base_fingerprint(model),
            "base_config": model.config.to_dict(),
            "adapter": adapter_config_metadata(adapter_set.config),
            "head": None if head is None else head.metadata(),
            "data": data}
    _write(path, tensors, info)


def save_trained(model, path, head, method, task=None, data=None):
    """Write the base model's trained weights (those `method` trained, model.trainable_names())
    and the head to `path`, atomically, with the metadata an adapter file has. For full
    fine-tuning the file holds the whole model, the weights it left unused too (the pooler,
    under mean pooling), so that transformers loads it as a BertForSequenceClassification."""
    trained = model.trainable_names()
    stored = list(model.params) if method == "full" else trained
    tensors = {n: np.ascontiguousarray(to_host(model.params[n]), np.float32) for n in stored}
    tensors.update({n: np.ascontiguousarray(to_host(p), np.float32)
                    for n, p in head.params.items()})
    info = {"format": TRAINED_FORMAT, "method": method, "task": task,
            "base_fingerprint": base_fingerprint(model, trained), "trained": trained,
            "base_config": model.config.to_dict(), "head": head.metadata(), "data": data}
    _write(path, tensors, info)


def _write(path, tensors, info):
    """A safetensors file of the tensors with `info` as its minibert metadata, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: safetensors.numpy.save_file(
        tensors, tmp, metadata={"format": "pt", "minibert": json.dumps(info)}))


def read_adapter_file(path, tensors=True):
    """(info dict, {name: float32 array}) of an adapter file or a trained file, or of an
    AdapterHub adapter folder (minibert.adapterhub.read_folder), refusing anything else; with
    tensors=False, (info dict, None), the metadata alone read."""
    path = Path(path)
    if adapterhub.is_folder(path):
        return adapterhub.read_folder(path, tensors)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such adapter file")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()} if tensors else None
    except Exception as e:          # truncated or not safetensors at all
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        info = json.loads(metadata["minibert"])
        assert info["format"] in (FORMAT, TRAINED_FORMAT)
    except (KeyError, ValueError, AssertionError, TypeError):
        raise ValueError(f"{path}: not a minibert adapter file (its metadata has no "
                         f"'minibert' entry of format {FORMAT})") from None
    return info, arrays


def load_adapters(model, path, name=None, expected_size=None):
    """Load an adapter file as adapter set `name` (default: the file's task, else its stem) and
    make it active. Returns the file's head (a SequenceClassificationHead or a
    QuestionAnsweringHead) or None."""
    path = Path(path)
    return _load_adapter_set(model, path, *read_adapter_file(path), name, expected_size)


def _load_adapter_set(model, path, info, tensors, name=None, expected_size=None):
    """load_adapters on a file already read: (info, tensors) of read_adapter_file."""
    if info["format"] == adapterhub.FORMAT:
        tensors = _with_base_layernorms(model, info, tensors, path)
    elif info["format"] != FORMAT:
        raise ValueError(f"{path}: a trained file of method {info['method']}, not an adapter "
                         "file (load it with load_training_file)")
    else:
        _check_base(model, info, path)
    if expected_size is not None and info["adapter"]["size"] != expected_size:
        raise ValueError(f"{path}: holds adapters of size {info['adapter']['size']}, "
                         f"expected size {expected_size}")
    config = adapter_config_of(info["adapter"], path)
    expected = adapter_set_shapes(model.config, config)
    head = None if info["head"] is None else head_from_metadata(
        info["head"], model.config.hidden_size, model.device, model.dtype)
    if head is not None:
        expected.update({n: tuple(p.shape) for n, p in head.params.items()})
    _check_tensors(tensors, expected, path)
    name = name or info["task"] or info.get("name") or path.stem
    if name in model.adapters:
        raise ValueError(f"{path}: the model has an adapter set named {name!r} already; "
                         "load this file under another name")
    model.adapters.add(name, AdapterSet(config, {
        n: model.device.asarray(tensors[n], dtype=model.dtype) for n in adapter_set_shapes(
            model.config, config)}))
    if head is not None:
        head.params = {n: model.device.asarray(tensors[n], dtype=model.dtype) for n in head.params}
    return head


def load_training_file(model, path):
    """Load a file written by training: an adapter file (as load_adapters: its adapter set
    made active), or a trained file (its weights copied into the model's). Returns the head."""
    path = Path(path)
    info, tensors = read_adapter_file(path)
    if info["format"] in (FORMAT, adapterhub.FORMAT):
        return _load_adapter_set(model, path, info, tensors)
    _check_base(model, info, path, set(info["trained"]))
    head = head_from_metadata(info["head"], model.config.hidden_size, model.device, model.dtype)
    # the trained weights, and what else the file holds of the base (a full fine-tuning's
    # unused pooler): the latter equal to this base's, as its fingerprint says
    stored = set(info["trained"]) | {n for n in tensors if n in model.params}
    expected = {n: tuple(model.params[n].shape) for n in stored if n in model.params}
    expected.update({n: tuple(p.shape) for n, p in head.params.items()})
    _check_tensors(tensors, expected, path)
    for n in info["trained"]:
        model.params[n] = model.device.asarray(tensors[n], dtype=model.dtype)
    head.params = {n: model.device.asarray(tensors[n], dtype=model.dtype) for n in head.params}
    return head


def _with_base_layernorms(model, info, tensors, path):
    """An AdapterHub folder's tensors, with the base model's LayerNorms where the folder holds
    none of its own (AdapterHub trains the adapters alone); it names no fingerprint, only
    the hidden size it was made for."""
    C = info["base_config"]["hidden_size"]
    if C != model.config.hidden_size:
        raise ValueError(f"{path}: made for a base model with hidden_size {C}, but this model "
                         f"has hidden_size {model.config.hidden_size}")
    base = {n: np.ascontiguousarray(to_host(p), np.float32)
            for n, p in model.adapters.base_layernorms().items()}
    return {**base, **tensors}


def _check_base(model, info, path, trained=None):
    """The file was made for this base model: its size, and the weights training left alone."""
    base = info["base_config"]
    for field in ("hidden_size", "num_hidden_layers"):
        if base[field] != getattr(model.config, field):
            raise ValueError(f"{path}: made for a base model with {field} {base[field]}, but this "
                             f"model has {field} {getattr(model.config, field)}")
    if info["base_fingerprint"] != base_fingerprint(model, trained):
        raise ValueError(f"{path}: made for another base model (its weights' fingerprint "
                         f"{info['base_fingerprint'][:12]}... differs from this model's "
                         f"{base_fingerprint(model, trained)[:12]}...)")


def _check_tensors(tensors, expected, path):
    check_tensors(tensors, expected, source=str(path))
    for tensor_name, array in tensors.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {tensor_name} holds NaN or infinite values")


def export_adapterhub(path, out, model_name=None, with_head=True):
    """Write the adapter file `path` as an AdapterHub adapter folder `out` (absent or empty),
    which `BertAdapterModel.load_adapter(out, use_safetensors=True)` loads
    (adapterhub.write_folder). Returns the names of the files written."""
    path, out = Path(path), Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise BadValue("out", f"expected a new or empty folder, found {out}, which "
                              f"{'holds files' if out.is_dir() else 'is a file'}")
    info, tensors = read_adapter_file(path)
    if info["format"] != FORMAT:
        raise ValueError(f"{path}: a trained file of method {info['method']}; only adapter "
                         "files have an AdapterHub form")
    config = adapter_config_of(info["adapter"], path)
    name = (info["task"] or path.stem).replace(".", "_")    # a module name: no dots
    try:
        return adapterhub.write_folder(out, config, info, tensors, name, model_name, with_head)
    except ValueError as e:             # a head AdapterHub has no form for
        raise ValueError(f"{path}: {e}") from None
