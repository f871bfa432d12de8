import os
import shutil
import tempfile

import numpy as np
import pytest

import minibert
from minibert import backend, named_models
from minibert.data import hub
from minibert.optim import AdamW, clip_global_norm
from minibert.train import configure
import glue_fixture
from strict_device import STRICT

backend.register(STRICT)

# The speed layer's plans, timed under the tests' load, stay out of the user's cache (the
# commands the tests start in other processes share them).
os.environ.setdefault("MINIBERT_SPEED_PLANS", tempfile.mkdtemp(prefix="minibert-plans-"))

# No test reaches the network: the commands that tests start in other processes are offline to
# the Hugging Face Hub, and in this process its download call is replaced (no_hub_downloads).
os.environ["HF_HUB_OFFLINE"] = "1"

# Where the real GLUE files are (tests that need them skip without them, naming the folder;
# tests that need only GLUE-shaped files run on tests/glue_fixture.py's where these are absent).
GLUE_DIR = os.environ.get("GLUE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data", "glue")
HAVE_GLUE = all(os.path.isfile(os.path.join(GLUE_DIR, task, "dev.tsv"))
                for task in glue_fixture.TASKS)
needs_glue = pytest.mark.skipif(not HAVE_GLUE, reason=f"needs the real GLUE files (SST-2, CoLA, "
                                                      f"MRPC, RTE, STS-B) at {GLUE_DIR}")


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory):
    """A GLUE data folder: the real one where it is, else a small one of the same shape."""
    if HAVE_GLUE:
        return GLUE_DIR
    return str(glue_fixture.write_glue(tmp_path_factory.mktemp("glue")))


@pytest.fixture(autouse=True)
def no_hub_downloads(monkeypatch, tmp_path_factory):
    """Every test starts with an empty cache of GLUE fetched from the Hub, and a download from
    the Hub fails as it does without network."""
    def offline(name, folder):
        raise ConnectionError("huggingface.co cannot be reached: tests do not use the network")
    monkeypatch.setattr(hub, "_download", offline)
    cache = tmp_path_factory.mktemp("hub-cache")
    monkeypatch.setattr(hub, "cache_folder", lambda: cache / "glue")


def tiny_config(**overrides):
    """A BERT small enough for element-by-element gradient checks. initializer_range 0.3 (not
    0.02) keeps attention far from uniform, so every gradient stands well above round-off."""
    fields = dict(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=16, max_position_embeddings=12, type_vocab_size=2,
                  initializer_range=0.3)
    fields.update(overrides)
    return minibert.BertConfig(**fields)


@pytest.fixture
def config():
    return tiny_config()


@pytest.fixture
def batch():
    """Two sequences of different lengths, padded with id 0, with token types."""
    return {"input_ids": np.array([[2, 5, 7, 9, 11, 0], [3, 4, 1, 6, 0, 0]]),
            "token_type_ids": np.array([[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 0]]),
            "attention_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])}


def head_loss_with_gradients(model, head, batch, labels):
    """Fill model.grads and head.grads for the head's loss on batch; return that loss as a
    function of the current parameters, for the gradient checks."""
    def loss():
        return float(head.forward(model.forward(**batch)[1], labels)[1])
    model.zero_grad()
    head.zero_grad()
    loss()
    model.backward(None, head.backward())
    return loss


def training_step(config, batch, device, train=True):
    """forward, backward and one clipped AdamW step (dropout on when train) -> host copies of
    (sequence output, loss, every gradient, every updated parameter)."""
    model = minibert.BertModel(config, device=device, seed=3).train(train)
    head = minibert.SequenceClassificationHead(config.hidden_size, 3, device=device, seed=4)
    head.train(train)
    seq, pooled = model.forward(**batch)
    _, loss = head.forward(pooled, np.array([2, 0]))
    model.backward(None, head.backward())
    grads = {**model.grads, **head.grads}
    host_grads = {n: backend.to_host(g).copy() for n, g in grads.items()}
    clip_global_norm(list(grads.values()), max_norm=0.5)
    AdamW([model, head], lr=1e-2).step()
    params = {n: backend.to_host(p) for n, p in {**model.params, **head.params}.items()}
    return backend.to_host(seq), float(loss), host_grads, params


def adapter_step(config, batch, variant):
    """One forward and backward of a model with adapters of `variant`, trained as adapters are
    (init_std 0.3, so that the adapters' own gradients stand above round-off) -> (sequence
    output, {name: gradient})."""
    model = minibert.BertModel(config, seed=3).train(False)
    minibert.add_adapters(model, size=4, init_std=0.3, **variant)
    head = minibert.SequenceClassificationHead(config.hidden_size, 3, seed=4)
    configure(model, head, "adapters")
    seq, pooled = model.forward(**batch)
    head.forward(pooled, np.array([2, 0]))
    model.backward(None, head.backward())
    return seq, {name: grad.copy() for name, grad in model.grads.items()}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A 2-layer random BERT that uses minilm-l6's vocabulary, saved as an HF folder."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = minibert.BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64)
    minibert.BertModel(config, seed=0).save_pretrained(folder)
    shutil.copy(named_models.folder_of("minilm-l6") / "vocab.txt", folder)
    return folder


def without_timings(results, also=()):
    """A run's results (or a sweep's record of one) less what differs between two runs of the
    same settings: the clock (and the fields named in `also`) and the output folder."""
    drop = ("train_seconds", "seconds_per_epoch", "examples_per_second",
            "windows_per_second", *also)                  # the last: SQuAD's throughput
    results = {k: v for k, v in results.items() if k not in drop}
    results["history"] = [{k: v for k, v in h.items() if k != "train_seconds"}
                          for h in results["history"]]
    results["settings"] = {k: v for k, v in results["settings"].items() if k != "out"}
    return results


def snapshot(folder):
    """Every path under folder (itself included) with its kind, size and modification time: two
    snapshots are equal when nothing there was created, removed or written."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in [folder, *folder.rglob("*")]}


def gpu_available():
    try:
        backend.get_device("cupy")
        return True
    except RuntimeError:
        return False


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
