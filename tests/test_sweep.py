"""Sweeps: the grids, the folder's guard against mixed settings, and (with Ray installed) whole
sweeps on a tiny random BERT with embedded Ray: a trial's worker killed with SIGKILL, a stopped
sweep run again, each ending with every trial's result equal to an uninterrupted sweep's."""
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from minibert import cli
from minibert.lab import sweep
from minibert.runs.lock import LOCK
from minibert.runs import CHECKPOINT, RunSettings, run_train
from minibert.lab.sweep import TRIAL_LOG, Engine, Grid, grid_trials, run_sweep
from minibert.speed.plans import cpu_name

from conftest import snapshot, without_timings

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
# what a sweep records beyond results.json that differs between two runs of the same trial
SWEEP_ONLY = ("seconds", "resumed_at_step")
LRS, SEEDS = (1e-3, 3e-2), 2


def base(model):
    """TREC-6 on the tiny model: 3 epochs of 25 steps, long enough to kill a trial mid-run."""
    return dict(task="TREC-6", model=str(model), max_train_examples=200, max_eval_examples=32,
                max_seq_length=24, batch_size=8)


def grid(lrs=LRS, seeds=SEEDS):
    return Grid.make("adapters", lr=list(lrs), epochs=[3], adapter_size=[4], seeds=seeds)


def same_run(entry):
    return without_timings(entry, also=SWEEP_ONLY)


# ---------------------------------------------------------------------------- without Ray
def test_the_paper_grid_is_the_papers():
    adapters = Grid.make("adapters", "paper")
    assert (adapters.lr, adapters.epochs, adapters.adapter_size, adapters.seeds) == (
        (3e-5, 3e-4, 3e-3), (3, 20), (8, 64, 256), 5)
    trials = grid_trials("runs/x", {"task": "TREC-6"}, adapters)
    assert len(trials) == 3 * 2 * 3 * 5 == 90
    settings = trials["lr0.0003-epochs20-size256-seed4"]
    assert (settings.lr, settings.epochs, settings.adapter_size, settings.seed) == (3e-4, 20, 256, 4)
    assert settings.out == str(Path("runs/x/trials/lr0.0003-epochs20-size256-seed4").absolute())
    assert len(grid_trials("runs/x", {"method": "full"}, Grid.make("full", "paper"))) == 4 * 5


@pytest.mark.parametrize("argv, option", [
    (["--grid", "paper", "--lr", "1e-3"], "--lr"),
    (["--grid", "paper", "--method", "top-k", "--top-k", "2"], "--grid"),
    (["--method", "full", "--adapter-size", "8", "64"], "--adapter-size"),
    (["--lr", "1e-3", "1e-3"], "--lr"),
    (["--gpus-per-trial", "0.5"], "--gpus-per-trial")])
def test_options_that_do_not_go_together_are_refused_by_name(tmp_path, capsys, argv, option):
    before = snapshot(tmp_path)
    assert cli.main(["sweep", "--out", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minibert sweep: error: {option}: ") and len(err.splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_ray_and_matplotlib_load_only_to_run_trials_and_to_draw():
    code = ("import sys; from minibert.lab import sweep, sweep_report; "
            "sweep.grid_trials('runs/x', {}, sweep.Grid.make('adapters', 'paper')); "
            "loaded = {'ray', 'matplotlib'} & set(sys.modules); assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr


def record(folder, lr, epochs, scores, machine=None, **settings):
    """A sweep folder as a finished sweep leaves it: sweep.json with one trial per seed (made
    on `machine`; None: a record older than the field)."""
    shared = {**base("tiny"), "method": "adapters", "pooling": "mean", **settings}
    runs = {sweep.trial_name("adapters", lr, epochs, 4, seed): {
        "task": "TREC-6", "method": "adapters", "eval_split": "test", "score_metric": "accuracy",
        "train_examples": 200, "learning_rate": lr, "epochs": epochs, "adapter_size": 4,
        "seed": seed, "score": score, "seconds": 5.0, **({"machine": machine} if machine else {})}
        for seed, score in enumerate(scores)}
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({
        "experiment": "sweep", "settings": {"base": shared, "grid": {}, "trials": list(runs)},
        "runs": runs}))
    return folder


def test_a_grid_run_in_parts_is_combined_into_one_sweep_with_its_table(tmp_path, capsys):
    short = record(tmp_path / "short", 1e-3, 3, [0.5, 0.7])
    zen = {"cpu": "AMD EPYC", "cpu_features": "0123456789ab", "threads": 1,
           "blas": "openblas 0.3.31 SkylakeX", "numpy": "2.4.6"}
    long = record(tmp_path / "long", 1e-3, 20, [0.8, 0.9], machine=zen)
    assert cli.main(["sweep", "--from", str(short), str(long / "sweep.json"),
                     "--out", str(tmp_path / "both")]) == 0
    table = capsys.readouterr().out
    assert "| lr 0.001, 3 epochs, size 4 | 2 | 60.0 ± 14.1 | 50.0, 70.0 | 5 |" in table
    assert "best configuration by mean over seeds: lr 0.001, 20 epochs, size 4, 85.0 ± 7.1" in table
    # trials made on other CPUs round differently: the table says where each part ran
    assert ("trials by machine: not recorded: 2; AMD EPYC (flags 0123456789ab), 1 thread, "
            "openblas 0.3.31 SkylakeX: 2\n") in table
    data = json.loads((tmp_path / "both" / "sweep.json").read_text())
    assert len(data["runs"]) == 4 and data["settings"]["trials"] == list(data["runs"])
    assert data["settings"]["sources"] == [str(short / "sweep.json"), str(long / "sweep.json")]
    assert (tmp_path / "both" / "sweep.md").read_text() == table.split("sweep.json, ")[0]
    assert (tmp_path / "both" / "sweep.png").read_bytes()[:8] == PNG
    # a later sweep into the combined folder counts its trials as done
    sweep._check_same_sweep(tmp_path / "both", {**base("tiny"), "method": "adapters",
                                                "pooling": "mean"})
    # a source may be the folder written: its trials are among those kept
    assert cli.main(["sweep", "--from", str(short), str(long), "--out", str(short)]) == 0
    assert len(json.loads((short / "sweep.json").read_text())["runs"]) == 4
    # and so may an earlier combination of the same sweeps, made again
    assert cli.main(["sweep", "--from", str(short), str(long), "--out",
                     str(tmp_path / "both")]) == 0


def test_a_setting_an_older_record_lacks_counts_as_its_default(tmp_path):
    old = record(tmp_path / "old", 1e-3, 3, [0.5])           # written before the placement existed
    new = record(tmp_path / "new", 1e-3, 20, [0.6], adapter_placement="houlsby")
    assert len(sweep.combine([old, new], tmp_path / "out")["runs"]) == 2
    other = record(tmp_path / "other", 3e-3, 3, [0.6], adapter_placement="pfeiffer")
    for sources in ([old, other], [other, old]):                 # either order
        with pytest.raises(ValueError, match=r"^sources: .* adapter_placement"):
            sweep.combine(sources, tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("case, message", [
    ("setting", r"^--from: .*sweep.json was made with pooling 'cls', .* with 'mean'"),
    ("trial", r"^--from: .*sweep.json records trial lr0.001-epochs3-size4-seed0 otherwise than "),
    ("missing", r"^--from: expected a sweep's folder or its sweep.json, found no such file: "),
    ("not a sweep", r"^--from: expected a sweep's record .* found another file: "),
    ("out", r"^--out: expected a new folder or one whose trials are among those combined, "
            r"found trial lr0.003-epochs3-size4-seed0 in "),
    ("grid", r"^--from: expected no grid beside it \(it runs nothing\), found --lr$")])
def test_sweeps_that_do_not_fit_together_are_refused_by_name(tmp_path, capsys, case, message):
    first = record(tmp_path / "first", 1e-3, 3, [0.5, 0.7])
    argv, out = ["--from", str(first)], tmp_path / "out"
    if case == "setting":
        argv.append(str(record(tmp_path / "cls", 1e-3, 20, [0.6], pooling="cls")))
    elif case == "trial":
        argv.append(str(record(tmp_path / "again", 1e-3, 3, [0.6])))
    elif case == "missing":
        argv.append(str(tmp_path / "nowhere"))
    elif case == "not a sweep":
        (tmp_path / "results.json").write_text('{"task": "TREC-6"}')
        argv.append(str(tmp_path / "results.json"))
    elif case == "out":
        out = record(tmp_path / "elsewhere", 3e-3, 3, [0.4])
    else:
        argv += ["--lr", "1e-3"]
    before = snapshot(tmp_path)
    assert cli.main(["sweep", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert re.match(message, err.removeprefix("minibert sweep: error: ")), err
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------- with Ray
needs_ray = pytest.mark.skipif(not sweep.ray_installed(), reason="needs ray: pip install "
                                                                  "'minibert[sweep]'")


@pytest.fixture(scope="module")
def whole(tiny_model, tmp_path_factory):
    """An uninterrupted sweep: 2 learning rates x 2 seeds, two trials at a time."""
    out = tmp_path_factory.mktemp("whole")
    lines = []
    return out, run_sweep(out, base(tiny_model), grid(), Engine(), lines.append), lines


@pytest.mark.slow
@needs_ray
def test_a_sweep_records_every_trial_and_writes_its_table_and_figure(whole, tiny_model,
                                                                   monkeypatch, capsys):
    out, data, lines = whole
    names = [f"lr{lr:g}-epochs3-size4-seed{seed}" for lr in LRS for seed in range(SEEDS)]
    assert data["settings"]["trials"] == names
    assert json.loads((out / "sweep.json").read_text()) == json.loads(json.dumps(data))
    for name in names:
        entry = data["runs"][name]
        results = json.loads((out / "trials" / name / "results.json").read_text())
        assert entry["settings"] == results["settings"] and entry["score"] == results["score"]
        assert entry["dev_scores"] == [h["metrics"]["score"] for h in results["history"]]
        assert len(entry["dev_scores"]) == 3 and entry["seconds"] > entry["train_seconds"] > 0
        assert entry["resumed_at_step"] is None
        assert entry["machine"] == results["machine"]
        assert (entry["machine"]["cpu"], entry["machine"]["threads"]) == (cpu_name(), 1)
    assert any("finished" in line and "4 done, 0 running, 0 left" in line for line in lines)

    # each trial is an ordinary training run: the same results, run here without Ray
    monkeypatch.setattr(sweep.parallel.SETTINGS, "threads", 1)
    name = names[-1]
    alone = run_train(RunSettings(**{**data["runs"][name]["settings"],
                                     "out": str(out / "alone")}))
    assert same_run(sweep.trial_entry(alone, 0.0)) == same_run(data["runs"][name])

    assert cli.main(["sweep", "--out", str(out), "--lr", *map(str, LRS), "--epochs", "3",
                     "--seeds", str(SEEDS), "--adapter-size", "4", *options(base(tiny_model))]) == 0   # all done
    printed = capsys.readouterr().out
    assert "sweep: 4 trials, 4 done earlier, 0 to run" in printed
    assert "| lr 0.001, 3 epochs, size 4 | 2 |" in printed
    assert "paper's selection (best trial on validation)" in printed
    assert (out / "sweep.md").read_text() in printed
    assert f"1 thread, {entry['machine']['blas']}: 4\n" in printed      # every trial here
    assert (out / "sweep.png").read_bytes()[:8] == PNG


def options(settings):
    return [word for name, value in settings.items()
            for word in (f"--{name.replace('_', '-')}", str(value))]


@pytest.mark.slow
@needs_ray
def test_a_sweep_folder_refuses_trials_of_other_settings(whole, tiny_model, capsys):
    out, _, _ = whole
    before = snapshot(out)
    changed = {**base(tiny_model), "max_train_examples": 100}
    assert cli.main(["sweep", "--out", str(out), "--lr", "1e-3", "--adapter-size", "4",
                     *options(changed)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minibert sweep: error: --max-train-examples: expected 200, the "
                          f"setting of the sweep in {out}, found 100")
    assert snapshot(out) == before


def kill_one_trial_mid_run(out, killed):
    """Wait for a trial that has written a checkpoint (an epoch done) and not its results,
    then SIGKILL the process holding its folder."""
    while not killed:
        for folder in (out / "trials").glob("*") if (out / "trials").exists() else ():
            lock = folder / LOCK
            if (folder / CHECKPOINT).exists() and not (folder / "results.json").exists():
                try:
                    pid = int(lock.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
                if pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(folder.name)
                    return
        time.sleep(0.005)


@contextlib.contextmanager
def ray_warnings():
    """The warnings Ray logs while inside (its handler writes to the stderr it found first,
    which no capture fixture sees)."""
    warnings, handler = [], logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("ray.tune")
    logger.addHandler(handler)
    try:
        yield warnings
    finally:
        logger.removeHandler(handler)


@pytest.mark.slow
@needs_ray
def test_a_trial_killed_with_sigkill_goes_on_from_its_checkpoint(whole, tiny_model, tmp_path):
    _, uninterrupted, _ = whole
    killed, lines = [], []
    killer = threading.Thread(target=kill_one_trial_mid_run, args=(tmp_path, killed),
                              daemon=True)
    killer.start()
    with ray_warnings() as warnings:
        data = run_sweep(tmp_path, base(tiny_model), grid(lrs=LRS[:1]), Engine(), lines.append)
    killer.join(timeout=1)
    assert killed, "no trial was caught between its first checkpoint and its end"
    assert any(killed[0] in line and "lost its worker" in line for line in lines), lines
    assert data["runs"][killed[0]]["resumed_at_step"] > 0
    # Tune read every trial's result back (the killed trial's failure is logged too)
    assert not [w for w in warnings if w.startswith("Failed to fetch metrics")], warnings
    for name, entry in data["runs"].items():
        assert same_run(entry) == same_run(uninterrupted["runs"][name]), name


@pytest.mark.slow
@needs_ray
def test_a_stopped_sweep_run_again_skips_finished_trials_and_resumes_the_rest(
        whole, tiny_model, tmp_path):
    """Run from the folder above with --out relative to it, as a user would: Ray runs each
    trial in a folder of its own, and the trials still write into the sweep's folder."""
    _, uninterrupted, _ = whole
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "minibert.cli", "sweep", "--out", "sweep", "--lr",
            *map(str, LRS), "--epochs", "3", "--seeds", str(SEEDS), "--adapter-size", "4",
            *options(base(tiny_model))]
    driver = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    record = out / "sweep.json"
    while not record.exists() and driver.poll() is None:       # the first trial finished
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)                          # Ctrl-C
    assert driver.wait(timeout=120) != 0
    finished = json.loads(record.read_text())["runs"]
    assert 0 < len(finished) < 4
    written = {name: (out / "trials" / name / "results.json").stat().st_mtime_ns
               for name in finished}
    lines = []
    data = run_sweep(out, base(tiny_model), grid(), Engine(), lines.append)
    assert lines[0] == f"sweep: 4 trials, {len(finished)} done earlier, {4 - len(finished)} to run"
    for name, mtime in written.items():                        # not run again
        assert (out / "trials" / name / "results.json").stat().st_mtime_ns == mtime
        assert data["runs"][name] == finished[name]
    for name, entry in data["runs"].items():
        assert same_run(entry) == same_run(uninterrupted["runs"][name]), name
        assert (out / "trials" / name / "results.json").exists()


@pytest.mark.slow
@needs_ray
def test_a_sweep_stopped_before_some_trials_started_says_so_in_one_line(tiny_model, tmp_path):
    # 4 one-CPU trials on at most 2 CPUs: Ctrl-C while the first run leaves the others unstarted,
    # trials Tune returns without a config
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "minibert.cli", "sweep", "--out", str(out), "--lr",
            *map(str, LRS), "--epochs", "3", "--seeds", str(SEEDS), "--adapter-size", "4",
            "--cpus-per-trial", "1", *options(base(tiny_model))]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    first_log = out / "trials" / "lr0.001-epochs3-size4-seed0" / "train.log"
    while not first_log.exists() and driver.poll() is None:    # the first trial has begun
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode != 0 and "Traceback" not in err, err[-3000:]
    assert "trials did not finish" in err and "run the same command again" in err, err[-3000:]


@pytest.mark.slow
@needs_ray
def test_a_sweeps_log_in_a_file_has_every_trials_line_and_no_colour_codes(tiny_model, tmp_path):
    """Written to a file, as `minibert sweep ... > log 2>&1` writes it: no ANSI colour codes,
    no notice about Ray's token authentication, every line of every trial's log (the last
    trial's last line too, which Ray's own forwarding can drop), named by its trial."""
    argv = ["sweep", "--out", str(tmp_path / "sweep"), "--lr", "1e-3", "3e-2", "--epochs", "1",
            "--seeds", "1", "--adapter-size", "4", *options(base(tiny_model))]
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_COLOR_PREFIX", "RAY_DEDUP_LOGS")}
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run([sys.executable, "-c", "import sys; from minibert.cli import main; "
                               f"sys.exit(main({argv!r}))"], stdout=log, stderr=subprocess.STDOUT,
                              env=env, timeout=600)
    text = (tmp_path / "log").read_text()
    assert done.returncode == 0, text
    assert "\x1b[" not in text and "Token authentication" not in text, text
    assert text.count("epoch 1: train loss") == 2, text
    for name in ("lr0.001-epochs1-size4-seed0", "lr0.03-epochs1-size4-seed0"):
        log = (tmp_path / "sweep" / "trials" / name / TRIAL_LOG).read_text()
        assert log.count("epoch 1: train loss") == 1, log
        for line in log.splitlines():
            assert f"({name}) {line}" in text.splitlines(), (line, text)
    assert "sweep: 2 trials, 0 done earlier, 2 to run" in text
