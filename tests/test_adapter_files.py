"""Adapter files and the other methods' trained files: save -> load -> predict is exact; files
for another base are refused."""
import json

import numpy as np
import pytest
import safetensors.numpy

import minibert
from minibert.adapter_files import (load_adapters, load_training_file, read_adapter_file,
                                    save_adapters, save_trained)
from minibert.adapters import add_adapters
from minibert.train import configure

from conftest import tiny_config


def trained_setup(seed=0, **config):
    model = minibert.BertModel(tiny_config(**config), seed=seed)
    add_adapters(model, size=4, init_std=0.2, name="sst", seed=1)
    head = minibert.SequenceClassificationHead(8, 3, seed=2)
    rng = np.random.default_rng(3)            # stand-in for training: move every trained tensor
    for p in list(model.adapters["sst"].params.values()) + list(head.params.values()):
        p += rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    return model, head


def predict(model, head, batch):
    return head.forward(model.forward(**batch)[1])[0]


def test_a_question_answering_head_travels_in_the_file(tmp_path, batch):
    model, _ = trained_setup()
    head = minibert.heads.QuestionAnsweringHead(8, seed=2)
    head.params["qa_outputs.bias"] += np.float32(0.5)
    candidates = np.array([[1, 0, 0, 1, 1, 0], [1, 0, 1, 1, 0, 0]], dtype=bool)
    expected = head.forward(model.forward(**batch)[0], candidates)[0]
    path = tmp_path / "squad.safetensors"
    save_adapters(model, path, head, task="SQuAD")
    assert set(safetensors.numpy.load_file(path)) == set(model.adapters["sst"].params) | {
        "qa_outputs.weight", "qa_outputs.bias"}
    fresh = minibert.BertModel(tiny_config(), seed=0)
    loaded = load_adapters(fresh, path)
    assert isinstance(loaded, minibert.heads.QuestionAnsweringHead)
    for got, want in zip(loaded.forward(fresh.forward(**batch)[0], candidates)[0], expected):
        np.testing.assert_array_equal(got, want)


def test_save_load_predict_is_identical_and_file_holds_only_task_tensors(tmp_path, batch):
    model, head = trained_setup()
    expected = predict(model, head, batch)
    path = tmp_path / "sst.safetensors"
    save_adapters(model, path, head, task="SST-2")
    names = set(safetensors.numpy.load_file(path))
    assert names == set(model.adapters["sst"].params) | {"classifier.weight", "classifier.bias"}
    assert not any(n.startswith(("embeddings.word", "pooler.")) or ".dense." in n for n in names)

    fresh = minibert.BertModel(tiny_config(), seed=0)
    loaded_head = load_adapters(fresh, path)
    assert fresh.adapters.active == "SST-2" and loaded_head.num_labels == 3
    np.testing.assert_array_equal(predict(fresh, loaded_head, batch), expected)


def test_a_mean_pooling_head_travels_in_the_file_and_old_files_read_the_pooler(tmp_path,
                                                                             batch):
    model, _ = trained_setup()
    head = minibert.SequenceClassificationHead(8, 3, seed=2, pooling="mean",
                                               pooling_reason="the default (a reason)")
    head.params["classifier.bias"] += np.float32(0.5)

    def outputs(model, head):
        seq, pooled = model.forward(**batch)
        return head.forward_batch(seq, pooled, batch)[0]
    expected = outputs(model, head)
    path = tmp_path / "mean.safetensors"
    save_adapters(model, path, head, task="SST-2")
    info, _ = read_adapter_file(path)
    assert info["head"]["pooling"] == "mean"
    assert info["head"]["pooling_reason"] == "the default (a reason)"
    fresh = minibert.BertModel(tiny_config(), seed=0)
    loaded = load_adapters(fresh, path)
    assert (loaded.pooling, loaded.pooling_reason) == ("mean", "the default (a reason)")
    np.testing.assert_array_equal(outputs(fresh, loaded), expected)

    # a file written before heads had a pooling: its head reads the pooler, as it was trained
    with safetensors.safe_open(str(path), "numpy") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old_info = json.loads(metadata["minibert"])
    del old_info["head"]["pooling"], old_info["head"]["pooling_reason"]
    old = tmp_path / "old.safetensors"
    safetensors.numpy.save_file(tensors, old, metadata={**metadata,
                                                        "minibert": json.dumps(old_info)})
    loaded = load_adapters(minibert.BertModel(tiny_config(), seed=0), old)
    assert loaded.pooling == "cls" and loaded.reads_pooled


@pytest.mark.parametrize("other, message", [
    (dict(seed=9), "made for another base model"),
    (dict(hidden_size=12, num_attention_heads=2), "made for a base model with hidden_size 8"),
])
def test_file_for_another_base_is_refused(tmp_path, other, message):
    model, head = trained_setup()
    save_adapters(model, tmp_path / "a.safetensors", head)
    seed = other.pop("seed", 0)
    with pytest.raises(ValueError, match=message):
        load_adapters(minibert.BertModel(tiny_config(**other), seed=seed), tmp_path / "a.safetensors")


def test_wrong_adapter_size_truncated_file_nan_and_plain_safetensors_are_refused(tmp_path):
    model, head = trained_setup()
    path = tmp_path / "a.safetensors"
    save_adapters(model, path, head)
    base = lambda: minibert.BertModel(tiny_config(), seed=0)
    with pytest.raises(ValueError, match="holds adapters of size 4, expected size 64"):
        load_adapters(base(), path, expected_size=64)

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="cut.safetensors: not a readable safetensors file"):
        load_adapters(base(), cut)

    plain = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"x": np.zeros(3, np.float32)}, plain)
    with pytest.raises(ValueError, match="plain.safetensors: not a minibert adapter file"):
        load_adapters(base(), plain)

    with safetensors.safe_open(str(path), "numpy") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["classifier.bias"][1] = np.nan
    bad = tmp_path / "nan.safetensors"
    safetensors.numpy.save_file(tensors, bad, metadata=metadata)
    with pytest.raises(ValueError, match="tensor classifier.bias holds NaN"):
        load_adapters(base(), bad)

    tensors = {k: v for k, v in safetensors.numpy.load_file(path).items() if k != "classifier.bias"}
    safetensors.numpy.save_file(tensors, tmp_path / "missing.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match=r"(?s)missing \(1\):\s+classifier.bias"):
        load_adapters(base(), tmp_path / "missing.safetensors")


def test_saving_again_replaces_the_file_whole(tmp_path):
    model, head = trained_setup()
    path = tmp_path / "a.safetensors"
    save_adapters(model, path, head)
    save_adapters(model, path, head, task="again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]   # no temp files left


# ---------------------------------------------------------------- trained files (other methods)
def fine_tuned(method, top_k=None, pooling="cls", model=None):
    """A tiny model (or `model`) and head configured for `method`, every trained tensor
    moved."""
    model = model or minibert.BertModel(tiny_config(), seed=0)
    head = minibert.SequenceClassificationHead(model.config.hidden_size, 3, seed=2,
                                               pooling=pooling)
    configure(model, head, method, top_k)
    rng = np.random.default_rng(3)
    for name in model.trainable_names():
        model.params[name] += rng.standard_normal(model.params[name].shape).astype(np.float32) / 10
    for p in head.params.values():
        p += rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    return model, head


@pytest.mark.parametrize("method, top_k", [("full", None), ("top-k", 1), ("layernorm", None),
                                           ("head", None)])
def test_a_trained_file_holds_what_the_method_trained_and_predicts_exactly(tmp_path, batch,
                                                                           method, top_k):
    model, head = fine_tuned(method, top_k)
    expected = predict(model, head, batch)
    path = tmp_path / "trained.safetensors"
    save_trained(model, path, head, method, task="SST-2", data={"labels": ["a", "b", "c"]})
    assert set(safetensors.numpy.load_file(path)) == set(model.trainable_names()) | {
        "classifier.weight", "classifier.bias"}
    fresh = minibert.BertModel(tiny_config(), seed=0)
    loaded = load_training_file(fresh, path)
    np.testing.assert_array_equal(predict(fresh, loaded, batch), expected)
    info, _ = read_adapter_file(path)
    assert info["method"] == method and info["data"] == {"labels": ["a", "b", "c"]}


def test_a_full_fine_tuning_file_holds_the_whole_model_even_its_unused_pooler(tmp_path, batch):
    model, head = fine_tuned("full", pooling="mean")
    assert "pooler.dense.weight" not in model.trainable_names()       # mean pooling: unused
    path = tmp_path / "trained.safetensors"
    save_trained(model, path, head, "full")
    assert set(safetensors.numpy.load_file(path)) == set(model.params) | {
        "classifier.weight", "classifier.bias"}

    def outputs(model, head):
        seq, pooled = model.forward(**batch)
        return head.forward_batch(seq, pooled, batch)[0]
    fresh = minibert.BertModel(tiny_config(), seed=0)
    np.testing.assert_array_equal(outputs(fresh, load_training_file(fresh, path)),
                                  outputs(model, head))


@pytest.mark.slow
def test_transformers_loads_a_full_fine_tuning_file_and_gives_its_logits(tmp_path):
    """The file of `train --method full` is a BertForSequenceClassification checkpoint: beside
    the base's config.json, transformers loads it with nothing missing and nothing left over,
    and its logits are minibert's (float32 on both sides, relative to their scale)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from minibert import named_models
    from closeness import assert_close
    base = named_models.folder_of("minilm-l6")
    model, head = fine_tuned("full", model=minibert.BertModel.from_pretrained(base))
    folder = tmp_path / "hf"
    folder.mkdir()
    save_trained(model, folder / "model.safetensors", head, "full")
    (folder / "config.json").write_text((base / "config.json").read_text())
    reference, loading = transformers.BertForSequenceClassification.from_pretrained(
        str(folder), num_labels=3, output_loading_info=True, attn_implementation="eager")
    assert not any(loading.values()), loading
    enc = minibert.Tokenizer.from_pretrained(base)(["a fine film", "not good at all, sadly"])
    ours = head.forward(model.forward(enc["input_ids"], token_type_ids=enc["token_type_ids"],
                                      attention_mask=enc["attention_mask"])[1])[0]
    with torch.no_grad():
        theirs = reference.eval()(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits
    assert_close(ours, theirs.numpy(), tol=1e-5, name="logits")


def test_a_trained_file_is_refused_on_a_base_whose_untrained_weights_differ(tmp_path, batch):
    model, head = fine_tuned("top-k", 1)               # layer 0 and the embeddings left alone
    path = tmp_path / "trained.safetensors"
    save_trained(model, path, head, "top-k")
    with pytest.raises(ValueError, match="made for another base model"):
        load_training_file(minibert.BertModel(tiny_config(), seed=9), path)
    with pytest.raises(ValueError, match="a trained file of method top-k, not an adapter file"):
        load_adapters(minibert.BertModel(tiny_config(), seed=0), path)
    full, full_head = fine_tuned("full")               # holds every weight: any base of its size
    save_trained(full, path, full_head, "full")
    other = minibert.BertModel(tiny_config(), seed=9)
    np.testing.assert_array_equal(predict(other, load_training_file(other, path), batch),
                                  predict(full, full_head, batch))


def test_load_training_file_takes_an_adapter_file_too(tmp_path, batch):
    model, head = trained_setup()
    expected = predict(model, head, batch)
    save_adapters(model, tmp_path / "a.safetensors", head, task="SST-2")
    fresh = minibert.BertModel(tiny_config(), seed=0)
    np.testing.assert_array_equal(
        predict(fresh, load_training_file(fresh, tmp_path / "a.safetensors"), batch), expected)
