"""Training checkpoints: everything a run needs to go on at the exact step it stopped.

One safetensors file holds the trained parameters, the head and the AdamW moments; its
metadata holds a JSON manifest: the progress (epoch, batch, step, this epoch's losses), the
dropout generators' states, the optimizer's step count and whatever the caller adds (settings,
history). The file is replaced atomically, so a crash leaves the previous checkpoint whole.
"""
import json
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from ..backend import to_host
from ..atomic import write_atomically
from ..pretrained import check_tensors
from ..train import Progress

FORMAT = "minibert-training-checkpoint-1"


def _generator_state(module):
    try:
        return module.rng.bit_generator.state
    except AttributeError:
        raise RuntimeError(f"device {module.device.name}: its random generator does not expose "
                           "its state, so a checkpoint could not resume dropout exactly") from None


def _tensors(model, head, optimizer):
    """{file name: array} of what training changes."""
    tensors = {f"model/{n}": model.params[n] for n in model.trainable_names()}
    tensors.update({f"head/{n}": p for n, p in head.params.items()})
    for (index, name), moments in optimizer.named_state().items():
        tensors[f"adam/{index}/{name}/m"] = moments.m
        tensors[f"adam/{index}/{name}/v"] = moments.v
    return tensors


def _module_of(index, model, head):
    return (model, head)[index]       # the optimizer's module order: AdamW([model, head])


def save_checkpoint(path, model, head, optimizer, progress, extra):
    """Write the training state to `path` atomically; `extra` (JSON-able) goes in the manifest."""
    tensors = {n: np.ascontiguousarray(to_host(a)) for n, a in _tensors(model, head, optimizer).items()}
    manifest = {"format": FORMAT, "progress": vars(progress), "optimizer_steps": optimizer.steps,
                "model_rng": _generator_state(model), "head_rng": _generator_state(head),
                "trainable": model.trainable_names(), "adam": sorted(optimizer.named_state()),
                "extra": extra}
    path = Path(path)
    write_atomically(path, lambda tmp: safetensors.numpy.save_file(
        tensors, tmp, metadata={"manifest": json.dumps(manifest)}))


def read_manifest(path):
    """The manifest of a checkpoint file, refusing anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training checkpoint here")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            manifest = json.loads((f.metadata() or {})["manifest"])
    except (KeyError, ValueError, safetensors.SafetensorError) as e:
        raise ValueError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {e})"
                         ) from None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: expected a checkpoint of format {FORMAT}, "
                         f"found {manifest.get('format')!r}")
    return manifest


def load_checkpoint(path, model, head, optimizer):
    """Restore a checkpoint into a model, head and optimizer built as for the original run
    (same settings); returns (progress, extra). Nothing is changed unless every tensor fits."""
    manifest = read_manifest(path)
    if manifest["trainable"] != model.trainable_names():
        raise ValueError(f"{path}: its run trained other parameters than this model would "
                         f"({len(manifest['trainable'])} vs {len(model.trainable_names())})")
    try:
        tensors = safetensors.numpy.load_file(str(path))
    except safetensors.SafetensorError as e:
        raise ValueError(f"{path}: truncated or corrupt training checkpoint ({e})") from None
    expected = {f"model/{n}": model.params[n].shape for n in model.trainable_names()}
    expected.update({f"head/{n}": p.shape for n, p in head.params.items()})
    for index, name in manifest["adam"]:
        shape = _module_of(index, model, head).params[name].shape
        expected.update({f"adam/{index}/{name}/m": shape, f"adam/{index}/{name}/v": shape})
    check_tensors(tensors, expected, source=str(path))
    for name, array in tensors.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {name} holds NaN or infinite values")

    for name in model.trainable_names():
        model.params[name][...] = model.device.asarray(tensors[f"model/{name}"])
    for name in head.params:
        head.params[name][...] = head.device.asarray(tensors[f"head/{name}"])
    optimizer.load_named_state(
        {(index, name): tuple(_module_of(index, model, head).device.asarray(
            tensors[f"adam/{index}/{name}/{moment}"]) for moment in "mv")
         for index, name in manifest["adam"]}, manifest["optimizer_steps"])
    model.rng.bit_generator.state = manifest["model_rng"]
    head.rng.bit_generator.state = manifest["head_rng"]
    return Progress(**manifest["progress"]), manifest["extra"]
