"""pretrained: reading, checking and writing Hugging Face-format BERT folders, on the real
all-MiniLM-L6-v2 files."""
import dataclasses
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from minibert import pretrained
from minibert.config import BertConfig
from minibert.named_models import folder_of

ROOT = Path(__file__).resolve().parents[1]
C, F, V, P, L = 384, 1536, 30522, 512, 6          # all-MiniLM-L6-v2


def minilm_shapes(layers=L):
    """{name: shape} of BertModel's parameters for all-MiniLM-L6-v2, written out by hand."""
    shapes = {"embeddings.word_embeddings.weight": (V, C),
              "embeddings.position_embeddings.weight": (P, C),
              "embeddings.token_type_embeddings.weight": (2, C),
              "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,),
              "pooler.dense.weight": (C, C), "pooler.dense.bias": (C,)}
    for l in range(layers):
        for name, shape in {"attention.self.query.weight": (C, C), "attention.self.key.weight": (C, C),
                            "attention.self.value.weight": (C, C),
                            "attention.output.dense.weight": (C, C),
                            "intermediate.dense.weight": (F, C), "output.dense.weight": (C, F)}.items():
            shapes[f"encoder.layer.{l}.{name}"] = shape
            shapes[f"encoder.layer.{l}.{name[:-len('weight')]}bias"] = shape[:1]
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"encoder.layer.{l}.{name}.weight"] = (C,)
            shapes[f"encoder.layer.{l}.{name}.bias"] = (C,)
    return shapes


@pytest.fixture(scope="module")
def minilm():
    return pretrained.read_pretrained(folder_of("minilm-l6"))


def folder_with(tmp_path, config, tensors):
    folder = tmp_path / "checkpoint"
    pretrained.write_pretrained(folder, config, tensors)
    return folder


# ---------------------------------------------------------------------------- finding
def test_folder_resolves_to_itself(tmp_path):
    assert pretrained.resolve(tmp_path) == tmp_path
    assert pretrained.resolve(str(tmp_path)) == tmp_path


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'nope'}: no such folder")):
        pretrained.resolve(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(NotADirectoryError, match="expected a checkpoint folder, found a file"):
        pretrained.resolve(tmp_path / "config.json")


def test_hub_id_while_offline(monkeypatch, tmp_path):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cannot reach the hub") as error:
        pretrained.resolve("google/bert_uncased_L-2_H-128_A-2")
    assert "config.json" in str(error.value) and "weights/" in str(error.value)


def test_hub_id_without_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(FileNotFoundError, match="huggingface_hub is not installed"):
        pretrained.resolve("bert-base-uncased")


# ---------------------------------------------------------------------------- reading
def test_read_minilm(minilm):
    config, tensors = minilm
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size,
            config.vocab_size, config.hidden_act) == (C, L, F, V, "gelu")
    expected = minilm_shapes()
    assert len(tensors) == len(expected) == 103
    assert {n: a.shape for n, a in tensors.items()} == expected
    assert all(a.dtype == np.float32 for a in tensors.values())
    pretrained.check_tensors(tensors, expected, source="minilm-l6")


def test_write_then_read_is_bit_exact(tmp_path, minilm):
    config, tensors = minilm
    folder = folder_with(tmp_path, config, tensors)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config_back, tensors_back = pretrained.read_pretrained(folder)
    assert config_back == config
    assert tensors_back.keys() == tensors.keys()
    for name, array in tensors.items():
        assert tensors_back[name].dtype == array.dtype
        assert tensors_back[name].tobytes() == array.tobytes(), name
    with safetensors.safe_open(str(folder / "model.safetensors"), framework="np") as f:
        assert f.metadata() == {"format": "pt"}      # what transformers requires


def test_written_folder_loads_in_transformers(tmp_path, minilm):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config, tensors = minilm
    folder = folder_with(tmp_path, config, tensors)
    model, info = transformers.BertModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    np.testing.assert_array_equal(model.state_dict()["pooler.dense.weight"].numpy(),
                                  tensors["pooler.dense.weight"])
    assert torch.is_tensor(model.embeddings.word_embeddings.weight)


def test_write_replaces_existing_files(tmp_path, minilm):
    config, tensors = minilm
    folder = folder_with(tmp_path, config, tensors)
    smaller = {n: a for n, a in tensors.items() if not n.startswith("encoder.layer.5.")}
    pretrained.write_pretrained(folder, dataclasses.replace(config, num_hidden_layers=5), smaller)
    config_back, tensors_back = pretrained.read_pretrained(folder)
    assert config_back.num_hidden_layers == 5 and tensors_back.keys() == smaller.keys()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_names_are_normalised(tmp_path, minilm):
    # "bert." prefix, TF-era LayerNorm gamma/beta, the position_ids buffer, an MLM head
    config, tensors = minilm
    stored = {}
    for name, array in tensors.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                           "LayerNorm.beta")
        stored["bert." + name] = array
    stored["bert.embeddings.position_ids"] = np.arange(P, dtype=np.int64)[None]
    stored["cls.predictions.bias"] = np.zeros(V, dtype=np.float32)
    shutil.copy(folder_of("minilm-l6") / "config.json", tmp_path)
    safetensors.numpy.save_file(stored, str(tmp_path / "model.safetensors"))
    _, found = pretrained.read_pretrained(tmp_path)
    assert found.keys() == tensors.keys()
    assert all(np.array_equal(found[n], tensors[n]) for n in tensors)
    assert "cls.predictions.bias" in pretrained.read_weights(tmp_path / "model.safetensors")


def test_half_and_bfloat16_safetensors_become_float32(tmp_path):
    values = np.array([1.5, -2.25, 2.0 ** -20, 3 * 2.0 ** 12], dtype=np.float32)   # exact in bf16 and f16
    # bfloat16 is the upper 16 bits of a float32; NumPy cannot write it, so lay the file out by hand
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, len(bf16)]}})
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + bf16)
    found = pretrained.read_weights(path)["b"]
    assert found.dtype == np.float32 and found.shape == (2, 2)
    np.testing.assert_array_equal(found.ravel(), values)

    safetensors.numpy.save_file({"h": values.astype(np.float16)}, str(tmp_path / "f16.safetensors"))
    found = pretrained.read_weights(tmp_path / "f16.safetensors")["h"]
    assert found.dtype == np.float32
    np.testing.assert_array_equal(found, values.astype(np.float16).astype(np.float32))


# -- pytorch_model.bin
NO_TORCH_READER = """
import sys
sys.modules["torch"] = None          # any `import torch` now raises ImportError
import numpy as np
from minibert import named_models, pretrained
_, from_bin = pretrained.read_pretrained(sys.argv[1])
_, from_safetensors = pretrained.read_pretrained(named_models.folder_of("minilm-l6"))
assert from_bin.keys() == from_safetensors.keys(), sorted(from_bin.keys() ^ from_safetensors.keys())
for name, array in from_safetensors.items():
    assert from_bin[name].dtype == array.dtype and np.array_equal(from_bin[name], array), name
print("identical", len(from_bin))
"""


def test_pytorch_bin_reads_identically_without_torch(tmp_path, minilm):
    torch = pytest.importorskip("torch")
    config, tensors = minilm
    state = {"bert." + n: torch.from_numpy(a.copy()) for n, a in tensors.items()}
    state["bert.embeddings.position_ids"] = torch.arange(P)[None]
    state["cls.predictions.bias"] = torch.zeros(V)
    torch.save(state, tmp_path / "pytorch_model.bin")
    shutil.copy(folder_of("minilm-l6") / "config.json", tmp_path)
    run = subprocess.run([sys.executable, "-c", NO_TORCH_READER, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "identical 103"


def test_pytorch_bin_dtypes_and_views(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(12.0).reshape(3, 4)
    state = {"float32": base, "transposed": base.t(), "row": base[1], "columns": base[:, 1:3],
             "float16": torch.tensor([0.1, -7.5]).half(),
             "bfloat16": torch.tensor([1.5, -2.25, 3e-5]).bfloat16(),
             "float64": torch.tensor([1 / 3], dtype=torch.float64),
             "int64": torch.arange(5), "empty": torch.zeros(0, 3)}
    torch.save(state, tmp_path / "weights.bin")
    found = pretrained.read_weights(tmp_path / "weights.bin")
    assert found.keys() == state.keys()
    for name, tensor in state.items():
        expected = tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
        assert found[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(found[name], expected, err_msg=name)


class RunsACommand:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


class Evaluates:
    def __reduce__(self):
        return eval, (f"open({str(MARKER)!r}, 'w')",)


MARKER = Path("pickle-ran-code")


@pytest.mark.parametrize("payload, refused", [(RunsACommand(), r"(posix|nt)\.system"),
                                              (Evaluates(), r"(__builtin__|builtins)\.eval")])
def test_malicious_pickle_is_refused(tmp_path, monkeypatch, payload, refused):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": payload}, protocol=2))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: refusing to load the global {refused}"):
        pretrained.read_weights(path)
    assert not MARKER.exists()


def test_legacy_bin_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps(0x1950a86a20f9469cfc6c))     # pre-1.6 files start with a magic pickle
    with pytest.raises(ValueError, match="not a zip archive"):
        pretrained.read_weights(path)


# ---------------------------------------------------------------------------- bad folders
def test_missing_config(tmp_path, minilm):
    folder = folder_with(tmp_path, *minilm)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{folder / 'config.json'}: no such file")):
        pretrained.read_pretrained(folder)


def test_missing_weights(tmp_path, minilm):
    folder = folder_with(tmp_path, *minilm)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError,
                       match=r"expected a weights file \(model.safetensors or pytorch_model.bin\)"):
        pretrained.read_pretrained(folder)


@pytest.mark.parametrize("keep", [45_000_000, 100, 4])
def test_truncated_safetensors(tmp_path, keep):
    shutil.copy(folder_of("minilm-l6") / "config.json", tmp_path)
    data = (folder_of("minilm-l6") / "model.safetensors").read_bytes()
    path = tmp_path / "model.safetensors"
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: truncated") as error:
        pretrained.read_pretrained(tmp_path)
    assert (f"found a file of {keep} bytes" in str(error.value)
            or f"describes {len(data)} bytes, found {keep}" in str(error.value))


def test_corrupt_safetensors_header(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes((20).to_bytes(8, "little") + b"not json at all....." + bytes(10))
    with pytest.raises(ValueError, match="corrupt safetensors file: expected a JSON header"):
        pretrained.read_weights(path)


def test_wrong_shape_missing_and_unused_in_one_error(minilm):
    _, tensors = minilm
    bad = {n: a for n, a in tensors.items() if not n.startswith("pooler.")}
    bad["encoder.layer.0.attention.self.query.weight"] = np.zeros((C, C - 1), np.float32)
    bad["encoder.layer.0.attention.output.adapter.down.weight"] = np.zeros((8, C), np.float32)
    with pytest.raises(ValueError) as error:
        pretrained.check_tensors(bad, minilm_shapes(), source="some/model.safetensors")
    message = str(error.value)
    assert message.startswith("some/model.safetensors: ")
    assert "encoder.layer.0.attention.self.query.weight: expected (384, 384), found (384, 383)" in message
    assert "pooler.dense.weight (384, 384)" in message and "pooler.dense.bias (384,)" in message
    assert "BertModel needs the pooler" in message
    assert "unused (1):\n    encoder.layer.0.attention.output.adapter.down.weight (8, 384)" in message


def test_config_disagreeing_with_weights(minilm):
    # the shapes a config.json with vocab_size 30000 and 4 layers implies, against MiniLM's weights
    _, tensors = minilm
    expected = minilm_shapes(layers=4)
    expected["embeddings.word_embeddings.weight"] = (30000, C)
    with pytest.raises(ValueError) as error:
        pretrained.check_tensors(tensors, expected, source="minilm-l6")
    message = str(error.value)
    assert "config.json disagrees with the weights" in message
    assert "vocab_size is 30000 but embeddings.word_embeddings.weight has 30522 in dimension 0" in message
    assert "num_hidden_layers is 4 but the weights have 6 layers" in message
    assert "encoder.layer.5.output.dense.weight (384, 1536)" in message     # listed as unused


def test_config_json_that_is_not_a_bert_config(tmp_path, minilm):
    folder = folder_with(tmp_path, *minilm)
    fields = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**fields, "hidden_size": 100}))
    with pytest.raises(ValueError, match="config.json: BertConfig: hidden_size 100 is not divisible"):
        pretrained.read_pretrained(folder)


def test_write_refuses_non_numpy_arrays(tmp_path):
    with pytest.raises(TypeError, match="x: expected a numpy array, found builtins.list"):
        pretrained.write_pretrained(tmp_path, BertConfig(), {"x": [1.0, 2.0]})
