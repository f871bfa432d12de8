"""Interrupted runs resume exactly; checkpoints and results are never damaged; odd input is
handled or refused by name."""
import dataclasses
import errno
import json
import os
import shutil
import signal

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import minibert
from minibert import cli, runs
from minibert import train as training
from minibert.cli import main
from minibert.runs import CHECKPOINT, Interrupted, RunSettings, run_train
from minibert.runs.checkpoint import FORMAT

from conftest import snapshot, without_timings


def settings(out, **changes):
    fields = dict(task="TREC-6", out=str(out), epochs=2, max_train_examples=40,
                  max_eval_examples=24, max_seq_length=24, batch_size=8)
    return RunSettings(**{**fields, **changes})


def assert_same_tensors(path_a, path_b):
    a, b = safetensors.numpy.load_file(path_a), safetensors.numpy.load_file(path_b)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


class Started(Exception):
    """A run that would have started, with run_train's arguments."""


def start_instead(settings, resume, overwrite):
    """A stand-in for run_train: what the command would start a run with."""
    raise Started(settings, resume, overwrite)


def interrupt_at_step(monkeypatch, step):
    """Send this process a real SIGINT during optimizer step `step`."""
    calls = []
    original = training.train_step

    def step_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)
    monkeypatch.setattr(training, "train_step", step_then_signal)      # the one training loop's


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    return out, run_train(settings(out))


@pytest.mark.slow
@pytest.mark.parametrize("method, stop_at", [("adapters", 3), ("full", 7)])   # epoch 1, epoch 2
def test_interrupted_run_resumes_to_the_same_end(uninterrupted, tmp_path, monkeypatch, method,
                                                 stop_at):
    whole_out, whole = uninterrupted
    if method == "full":
        whole_out = tmp_path / "whole_full"
        whole = run_train(settings(whole_out, method="full"))
    out = tmp_path / "cut"
    interrupt_at_step(monkeypatch, stop_at)
    with pytest.raises(Interrupted, match=f"SIGINT at step {stop_at}: .*resume with: "
                                          f"minibert train --resume {out}"):
        run_train(settings(out, method=method))
    assert (out / CHECKPOINT).exists() and not (out / "results.json").exists()
    monkeypatch.undo()
    resumed = runs.run_train(runs.resume_settings(out), resume=True)
    assert without_timings(resumed) == without_timings(whole)
    assert not (out / CHECKPOINT).exists()                    # removed once results are written
    if method == "adapters":
        assert_same_tensors(out / "adapter.safetensors", whole_out / "adapter.safetensors")


@pytest.mark.slow
def test_same_seed_gives_the_same_results_and_adapter_file(uninterrupted, tmp_path):
    """The one determinism retrain: two epochs from the same seed give the same results.json
    (every metric, the per-epoch history) and the same adapter tensors, bit for bit."""
    whole_out, whole = uninterrupted
    assert without_timings(run_train(settings(tmp_path))) == without_timings(whole)
    assert_same_tensors(tmp_path / "adapter.safetensors", whole_out / "adapter.safetensors")


@pytest.mark.slow
def test_a_pending_checkpoint_is_never_overwritten_by_a_new_run(tmp_path, monkeypatch, capsys):
    interrupt_at_step(monkeypatch, 2)
    with pytest.raises(Interrupted):
        run_train(settings(tmp_path))
    monkeypatch.undo()
    before = (tmp_path / CHECKPOINT).read_bytes()
    with pytest.raises(ValueError, match="an interrupted run is here; resume it with"):
        run_train(settings(tmp_path))
    assert (tmp_path / CHECKPOINT).read_bytes() == before


@pytest.mark.slow
def test_corrupted_checkpoints_are_refused_by_name(tmp_path, monkeypatch):
    interrupt_at_step(monkeypatch, 2)
    with pytest.raises(Interrupted):
        run_train(settings(tmp_path))
    monkeypatch.undo()
    path = tmp_path / CHECKPOINT
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="checkpoint.safetensors: .*(truncated|not a readable)"):
        run_train(settings(tmp_path), resume=True)

    path.write_bytes(good)
    with safetensors.safe_open(str(path), "numpy") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = next(n for n in tensors if n.startswith("model/"))
    tensors[name] = tensors[name].copy()
    tensors[name].flat[0] = np.nan
    safetensors.numpy.save_file(tensors, path, metadata=metadata)
    with pytest.raises(ValueError, match=f"tensor {name} holds NaN"):
        run_train(settings(tmp_path), resume=True)

    tensors[name] = np.zeros((3,), np.float32)
    safetensors.numpy.save_file(tensors, path, metadata=metadata)
    with pytest.raises(ValueError, match=f"(?s)wrong shape .*{name}: expected \\(384,\\), found \\(3,\\)"):
        run_train(settings(tmp_path), resume=True)


@pytest.mark.slow
def test_full_disk_or_read_only_folder_loses_nothing(tmp_path, monkeypatch, capsys):
    """results.json cannot be written: the run says why, and its checkpoint stays, so it can
    be resumed to the same end."""
    original = os.replace

    def no_space(src, dst, *args, **kwargs):
        if str(dst).endswith("results.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return original(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", no_space)
    args = ["train", "--task", "TREC-6", "--out", str(tmp_path), "--epochs", "1",
            "--max-train-examples", "8", "--max-eval-examples", "8", "--max-seq-length", "16"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "results.json" in err
    assert not (tmp_path / "results.json").exists() and (tmp_path / CHECKPOINT).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert main(["train", "--resume", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["train_examples"] == 8

    assert main(["train", "--task", "TREC-6", "--out", "/proc/minibert-run"]) == 2
    assert "/proc/minibert-run" in capsys.readouterr().err


@pytest.mark.slow
def test_a_finished_run_is_replaced_only_with_overwrite_and_whole_until_then(
        uninterrupted, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted[0], out)
    finished = snapshot(out)
    args = ["train", "--task", "TREC-6", "--out", str(out), "--epochs", "1", "--seed", "1",
            "--max-train-examples", "8", "--max-eval-examples", "8", "--max-seq-length", "16"]
    assert main(args) == 2
    err = capsys.readouterr().err
    old = uninterrupted[1]
    assert err == (f"minibert train: error: --out: expected a folder without a finished run, "
                   f"found one in {out} (TREC-6 adapters, seed 0: accuracy {old['score']:.4f}); "
                   "choose another --out, or give --overwrite to replace it\n")
    assert snapshot(out) == finished

    original = os.replace               # the new run fails before its first checkpoint

    def no_space(src, dst, *args, **kwargs):
        if str(dst).endswith(CHECKPOINT):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return original(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", no_space)
    assert main([*args, "--overwrite"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    # the old run, whole (the folder itself changed: the run's lock came and went)
    assert {k: v for k, v in snapshot(out).items() if k != "."} == {
        k: v for k, v in finished.items() if k != "."}
    monkeypatch.undo()

    assert main([*args, "--overwrite"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (results["seed"], results["train_examples"]) == (1, 8)
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "results.json"]


def test_empty_padding_only_and_overlong_inputs(tmp_path):
    model = minibert.BertModel.from_pretrained("minilm-l6")
    tok = minibert.Tokenizer.from_pretrained("minilm-l6")
    enc = tok(["", "   ", "word " * 5000], max_length=32)
    assert enc["input_ids"].shape == (3, 32)                       # truncated, not refused
    seq, pooled = model.forward(**enc)
    assert np.isfinite(seq).all() and np.isfinite(pooled).all()
    all_padding = np.zeros((2, 5), dtype=np.int64)
    seq, pooled = model.forward(all_padding, token_type_ids=all_padding,
                                attention_mask=all_padding)    # nothing to attend to
    assert np.isfinite(seq).all() and np.isfinite(pooled).all()


def test_resume_refuses_options_that_differ_from_the_saved_run(tmp_path, monkeypatch, capsys):
    """`train --resume DIR` goes on with the saved settings: an option given beside it must equal
    the saved one (argparse defaults do not count as given), else it is refused by name."""
    saved = settings(tmp_path, epochs=2, lr=1e-3)
    manifest = {"format": FORMAT, "extra": {"settings": dataclasses.asdict(saved)}}
    safetensors.numpy.save_file({"x": np.zeros(1, np.float32)}, tmp_path / CHECKPOINT,
                                metadata={"manifest": json.dumps(manifest)})
    before = (tmp_path / CHECKPOINT).read_bytes()
    for option, value, then in (("--epochs", "3", "2"), ("--lr", "0.01", "0.001"),
                                ("--task", "SST-2", "'TREC-6'"), ("--pooling", "cls", "'mean'"),
                                ("--out", "elsewhere", repr(str(tmp_path)))):
        assert main(["train", "--resume", str(tmp_path), option, value]) == 2
        err = capsys.readouterr().err
        assert f"error: {option}: expected {then}" in err and "run being resumed" in err, err
    assert (tmp_path / CHECKPOINT).read_bytes() == before

    monkeypatch.setattr(cli, "run_train", start_instead)
    monkeypatch.chdir(tmp_path.parent)              # the same folder, spelled another way
    with pytest.raises(Started) as started:
        main(["train", "--resume", str(tmp_path), "--epochs", "2", "--out", tmp_path.name])
    assert started.value.args == (saved, True, False)


def test_resume_takes_an_option_equal_to_the_value_the_run_used_by_default(tmp_path, capsys,
                                                                            monkeypatch):
    saved = settings(tmp_path, train_file=None)              # lr None: the method's, 1e-3
    manifest = {"format": FORMAT, "extra": {"settings": dataclasses.asdict(saved)}}
    safetensors.numpy.save_file({"x": np.zeros(1, np.float32)}, tmp_path / CHECKPOINT,
                                metadata={"manifest": json.dumps(manifest)})
    assert main(["train", "--resume", str(tmp_path), "--lr", "0.01"]) == 2
    assert "error: --lr: expected 0.001, the setting of the run" in capsys.readouterr().err
    monkeypatch.setattr(cli, "run_train", start_instead)
    with pytest.raises(Started) as started:
        main(["train", "--resume", str(tmp_path), "--lr", "0.001"])
    assert started.value.args == (saved, True, False)


def test_resume_on_a_finished_run_says_where_its_results_are(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}\n")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"minibert train: error: --resume: expected an interrupted run, found a finished one "
        f"in {tmp_path}: its results are in {tmp_path / 'results.json'}\n")


def test_a_run_begun_before_heads_had_a_pooling_resumes_on_the_pooled_cls(tmp_path, monkeypatch):
    """Its saved settings say nothing of pooling: it resumes as it began, on the pooler, not on
    the checkpoint's default (mean for minilm-l6)."""
    saved = dataclasses.asdict(settings(tmp_path))
    assert saved.pop("pooling") == "mean"
    manifest = {"format": FORMAT, "extra": {"settings": saved}}
    safetensors.numpy.save_file({"x": np.zeros(1, np.float32)}, tmp_path / CHECKPOINT,
                                metadata={"manifest": json.dumps(manifest)})
    assert runs.resume_settings(tmp_path).pooling == "cls"
