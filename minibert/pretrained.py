"""Pretrained BERT in Hugging Face-format folders: find them, read them, check them, write them.

A folder holds config.json, the weights (model.safetensors, or pytorch_model.bin as written
by torch.save) and the tokenizer files (vocab.txt and/or tokenizer.json). Tensors are named
as in Hugging Face's BertModel ("encoder.layer.0.attention.self.query.weight"), so loading
into a model is a copy by name. Nothing here needs torch: pytorch_model.bin is a zip archive
that is read with a pickle reader which rebuilds tensors and refuses everything else.
"""
import collections
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .config import BertConfig
from .atomic import write_atomically
from .param_names import is_layernorm, layer_of, parse

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")    # in order of preference
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")

# the parts of a checkpoint that belong to BertModel; heads (cls.*, classifier.*) are set aside
MODEL_PREFIXES = ("embeddings.", "encoder.", "pooler.")
POOLING_FILES = ("modules.json", "1_Pooling/config.json")     # sentence-transformers'
BUFFERS = ("embeddings.position_ids",)                      # arange(512), not a parameter


# ---------------------------------------------------------------------------- finding
def resolve(path_or_hub_id):
    """A checkpoint folder: an existing folder as is, or a hub id's download (when online).
    Named models ("minilm-l6") are found by named_models.folder_of."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{path}: expected a checkpoint folder, found a file")
    name = str(path_or_hub_id)
    if _looks_like_hub_id(name):
        return _download(name)
    raise FileNotFoundError(f"{path.resolve()}: no such folder (and {name!r} is not a hub id)")


def _looks_like_hub_id(name):
    # "bert-base-uncased" or "google/bert_uncased_L-2_H-128_A-2"; "weights/x" is a local path
    # when weights/ exists, and "./x", "/x", "~/x" always are
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", name):
        return False
    return "/" not in name or not Path(name.split("/")[0]).is_dir()


def _download(repo_id):
    no_hub = (f"{repo_id!r} is not a local folder ({Path(repo_id).resolve()} does not exist) "
              f"and looks like a Hugging Face hub id, but this machine cannot reach the hub")
    local = ("Provide a local folder instead: one holding config.json, model.safetensors or "
             "pytorch_model.bin, and vocab.txt or tokenizer.json (e.g. weights/NAME, see "
             "weights/README.md), and pass its path")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import RepositoryNotFoundError
    except ImportError:
        raise FileNotFoundError(f"{no_hub} (huggingface_hub is not installed). {local}.") from None
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=["config.json", WEIGHT_FILES[0],
                                                                 *TOKENIZER_FILES,
                                                                 *POOLING_FILES]))
        if not (folder / WEIGHT_FILES[0]).exists():
            folder = Path(snapshot_download(repo_id, allow_patterns=[WEIGHT_FILES[1]]))
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"{repo_id!r}: no such folder, and no such model on the "
                                f"Hugging Face hub (or it is private). {local}.") from None
    except Exception as e:   # offline, DNS, proxy, HF_HUB_OFFLINE=1, hub down: all end here
        raise FileNotFoundError(f"{no_hub} ({type(e).__name__}). {local}.") from e
    return folder


# ---------------------------------------------------------------------------- reading
def read_config(path_or_hub_id):
    """The BertConfig of a checkpoint folder (its config.json)."""
    path = resolve(path_or_hub_id) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; a checkpoint folder needs config.json")
    return BertConfig.from_json_file(path)


def read_pretrained(path_or_hub_id):
    """(BertConfig, {name: array}) of a checkpoint: the BertModel tensors only, named without
    the "bert." prefix, floats as float32. Heads (cls.*, ...) and buffers are left out;
    read_weights gives every tensor under its stored name. Shapes are checked by check_tensors."""
    folder = resolve(path_or_hub_id)
    config = read_config(folder)
    path = weights_file(folder)
    return config, _model_tensors(read_weights(path), path)


def read_pooling(folder):
    """(mode, why) of a sentence-transformers folder's pooling, the feature of a sequence its
    checkpoint was trained to give: mode "mean" or "cls_token" when its Pooling config names
    that mode alone; None when the folder has no Pooling config, or names another mode or several
    (why says which). The config is modules.json's Pooling module, else 1_Pooling/."""
    folder = Path(folder)
    pooling_dir = "1_Pooling"
    if (folder / "modules.json").is_file():
        modules = _read_json(folder / "modules.json")
        pooling_dir = next((m.get("path", "") for m in modules if isinstance(m, dict) and
                            str(m.get("type", "")).endswith("Pooling")), pooling_dir)
    path = folder / pooling_dir / "config.json"
    if not path.is_file():
        return None, "no sentence-transformers pooling config"
    config = _read_json(path)
    named = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v is True)
    if isinstance(config.get("pooling_mode"), str):                 # newer files name it once
        named = [f"pooling_mode_{config['pooling_mode']}"]
    # sentence-transformers' CLS mode is the [CLS] token's state itself, without BERT's pooler
    mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls_token",
            "pooling_mode_mean": "mean", "pooling_mode_cls": "cls_token"}.get(
        named[0] if len(named) == 1 else None)
    return mode, f"{pooling_dir}/config.json names {', '.join(named) or 'no mode'}"


def _read_json(path):
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: expected JSON, found a file that is not ({e})") from None


def weights_file(folder):
    """The weights file of a checkpoint folder: model.safetensors, else pytorch_model.bin."""
    for name in WEIGHT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    found = sorted(p.name for p in Path(folder).iterdir())
    raise FileNotFoundError(f"{folder}: expected a weights file ({' or '.join(WEIGHT_FILES)}), "
                            f"found only {found}")


def read_weights(path):
    """Every tensor of a .safetensors or torch.save .bin file, under its stored name, as numpy;
    float16/bfloat16/float64 become float32."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    tensors = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch_zip(path)
    return {name: a.astype(np.float32, copy=False) if a.dtype.kind == "f" else a
            for name, a in tensors.items()}


def _model_tensors(tensors, source):
    """Keep BertModel's tensors under their BertModel names: strip "bert.", rename TF-era
    LayerNorm gamma/beta, drop buffers, set aside everything else."""
    model = {}
    for stored_name, array in tensors.items():
        name = stored_name.removeprefix("bert.")
        if is_layernorm(name):
            name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        if name in BUFFERS or not name.startswith(MODEL_PREFIXES):
            continue
        if name in model:
            raise ValueError(f"{source}: two tensors are both {name!r} once the 'bert.' prefix "
                             f"is removed; expected one")
        model[name] = array
    if not model:
        examples = ", ".join(list(tensors)[:5])
        raise ValueError(f"{source}: no BertModel tensors (expected names such as "
                         f"embeddings.word_embeddings.weight, optionally prefixed 'bert.'); "
                         f"found {len(tensors)} others, e.g. {examples}")
    return model


# -- safetensors: a little-endian u64 header length, a JSON header, then the raw data
def _read_safetensors(path):
    header, data_start = _safetensors_header(path)
    tensors = {}
    try:
        with safetensors.safe_open(str(path), framework="np") as f:
            for name in f.keys():
                if header[name]["dtype"] == "BF16":          # NumPy has no bfloat16
                    begin, end = header[name]["data_offsets"]
                    raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2,
                                      offset=data_start + begin)
                    tensors[name] = _bfloat16_to_float32(raw).reshape(header[name]["shape"])
                else:
                    tensors[name] = f.get_tensor(name)
    except safetensors.SafetensorError as e:
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    return tensors


def _safetensors_header(path):
    """The header {name: {dtype, shape, data_offsets}} and where the data starts; refuses a
    truncated file with the sizes it expected and found."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        if size < 8 or 8 + header_size > size:
            expected = "at least 8 bytes" if size < 8 else f"8 + {header_size} bytes of header"
            raise ValueError(f"{path}: truncated or not a safetensors file: expected {expected}, "
                             f"found a file of {size} bytes")
        try:
            header = json.loads(f.read(header_size))
            header.pop("__metadata__", None)
            data_end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
        except (ValueError, AttributeError, TypeError, KeyError, IndexError):   # JSON, layout
            raise ValueError(f"{path}: corrupt safetensors file: expected a JSON header "
                             f"{{name: {{dtype, shape, data_offsets}}}}") from None
    data_start = 8 + header_size
    if data_start + data_end > size:
        raise ValueError(f"{path}: truncated safetensors file: its header describes "
                         f"{data_start + data_end} bytes, found {size}")
    return header, data_start


def _bfloat16_to_float32(raw):
    # bfloat16 is the upper half of a float32
    return (raw.astype(np.uint32) << 16).view(np.float32)


# -- pytorch_model.bin: a zip holding data.pkl (the state dict, with storages as persistent
# ids) and one raw file per storage under data/
TORCH_STORAGES = {      # torch storage class -> the little-endian dtype of its bytes
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
}


def _read_torch_zip(path):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a zip archive; expected the format torch.save writes "
                         f"since PyTorch 1.6 (convert older files to model.safetensors)")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        try:
            with archive.open(pickles[0]) as data_pkl:
                state = _TensorUnpickler(data_pkl, archive, pickles[0].removesuffix("data.pkl"),
                                         path).load()
        except (pickle.UnpicklingError, EOFError, TypeError, KeyError, IndexError,
                AttributeError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: cannot read data.pkl ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
        raise ValueError(f"{path}: expected a state dict {{name: tensor}}, "
                         f"found {type(state).__name__}")
    return dict(state)


class _TensorUnpickler(pickle.Unpickler):
    """Rebuilds a torch state dict as numpy arrays and refuses every other global, so a
    checkpoint cannot run code."""

    def __init__(self, data_pkl, archive, prefix, path):
        super().__init__(data_pkl)
        self.archive, self.prefix, self.path = archive, prefix, path
        byteorder_file = prefix + "byteorder"
        self.byteorder = (archive.read(byteorder_file).decode().strip()
                          if byteorder_file in archive.namelist() else "little")
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self.rebuild_tensor
        if module == "torch" and name in TORCH_STORAGES:
            return name                     # only ever used as a tag in a persistent id
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise ValueError(f"{self.path}: refusing to load the global {module}.{name} from "
                         f"data.pkl: only tensors can be loaded from a checkpoint")

    def persistent_load(self, pid):
        # ('storage', storage class, key, device, number of elements) -> flat numpy array
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and pid[1] in TORCH_STORAGES):
            raise ValueError(f"{self.path}: expected a storage reference in data.pkl, "
                             f"found {pid!r}")
        _, kind, key, _, numel = pid
        if key not in self.storages:
            dtype = np.dtype(TORCH_STORAGES[kind]).newbyteorder("<" if self.byteorder == "little"
                                                                 else ">")
            raw = self.archive.read(f"{self.prefix}data/{key}")
            if len(raw) != numel * dtype.itemsize:
                raise ValueError(f"{self.path}: storage data/{key} has {len(raw)} bytes, "
                                 f"expected {numel} x {dtype.itemsize}")
            flat = np.frombuffer(raw, dtype=dtype)
            self.storages[key] = (_bfloat16_to_float32(flat) if kind == "BFloat16Storage"
                                  else flat.astype(dtype.newbyteorder("=")))
        return self.storages[key]

    def rebuild_tensor(self, storage, offset, size, stride, *unused):
        # torch._utils._rebuild_tensor_v2: a strided view into a flat storage, copied out
        if not isinstance(storage, np.ndarray):
            raise ValueError(f"{self.path}: a tensor without a storage in data.pkl")
        if all(n > 0 for n in size):
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if offset < 0 or min(stride, default=0) < 0 or last >= storage.size:
                raise ValueError(f"{self.path}: a tensor of shape {tuple(size)} reaches element "
                                 f"{last} of a storage of {storage.size}")
        else:
            return np.empty(size, dtype=storage.dtype)
        view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                               strides=[s * storage.itemsize for s in stride],
                                               writeable=False)
        return np.array(view)


# ---------------------------------------------------------------------------- checking
# tensor -> the config.json field behind each of its dimensions
CONFIG_DIMENSIONS = {
    "embeddings.word_embeddings.weight": ("vocab_size", "hidden_size"),
    "embeddings.position_embeddings.weight": ("max_position_embeddings", "hidden_size"),
    "embeddings.token_type_embeddings.weight": ("type_vocab_size", "hidden_size"),
    "encoder.layer.0.intermediate.dense.weight": ("intermediate_size", "hidden_size"),
}


def check_tensors(tensors, expected_shapes, source):
    """Raise one ValueError listing every missing, wrong-shape and unused tensor, and what in
    config.json disagrees with the weights. expected_shapes: {name: shape} of the model."""
    missing = [n for n in expected_shapes if n not in tensors]
    wrong = {n: (tuple(expected_shapes[n]), tuple(tensors[n].shape)) for n in expected_shapes
             if n in tensors and tuple(tensors[n].shape) != tuple(expected_shapes[n])}
    unused = [n for n in tensors if n not in expected_shapes]
    if not (missing or wrong or unused):
        return
    lines = [f"{source}: the checkpoint's tensors do not fit the model"]
    if missing:
        lines.append(f"  missing ({len(missing)}):")
        lines += [f"    {n} {tuple(expected_shapes[n])}" for n in missing]
        if any(parse(n).site == "pooler" for n in missing):
            lines.append("    (BertModel needs the pooler, pooler.dense.weight and "
                         "pooler.dense.bias; this checkpoint has none)")
    if wrong:
        lines.append(f"  wrong shape ({len(wrong)}):")
        lines += [f"    {n}: expected {e}, found {f}" for n, (e, f) in wrong.items()]
    if unused:
        lines.append(f"  unused ({len(unused)}):")
        lines += [f"    {n} {tuple(tensors[n].shape)}" for n in unused]
    disagreements = _config_disagreements(wrong, expected_shapes, tensors)
    if disagreements:
        lines.append("  config.json disagrees with the weights: " + "; ".join(disagreements))
    raise ValueError("\n".join(lines))


def _config_disagreements(wrong, expected_shapes, tensors):
    """Name the config.json fields that the found shapes contradict."""
    found = {}
    for name, fields in CONFIG_DIMENSIONS.items():
        if name in wrong:
            expected, shape = wrong[name]
            for dim, field in enumerate(fields):
                if dim < len(shape) and expected[dim] != shape[dim]:
                    found.setdefault(field, f"{field} is {expected[dim]} but {name} has "
                                            f"{shape[dim]} in dimension {dim}")
    config_layers, weight_layers = _layer_count(expected_shapes), _layer_count(tensors)
    if config_layers != weight_layers:
        found["num_hidden_layers"] = (f"num_hidden_layers is {config_layers} but the weights "
                                      f"have {weight_layers} layers")
    return list(found.values())


def _layer_count(names):
    layers = [layer_of(n) for n in names if layer_of(n) is not None]
    return max(layers, default=-1) + 1


# ---------------------------------------------------------------------------- writing
def write_pretrained(folder, config, tensors):
    """Write config.json and model.safetensors (loadable by transformers), each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in tensors.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, found {type(array).__module__}."
                            f"{type(array).__name__}; copy it to the host first")
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    text = json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n"
    write_atomically(folder / "config.json", lambda tmp: Path(tmp).write_text(text, "utf-8"))
    write_atomically(folder / "model.safetensors", lambda tmp: safetensors.numpy.save_file(
        arrays, tmp, metadata={"format": "pt"}))

