"""Bad input at every door: every option of every `minibert` command, given bad values drawn by
hypothesis, is refused before any work starts: exit status 2, one line on stderr naming the
option, no traceback, and nothing created or changed on disk.

Loading a model, a tokenizer or data, timing and running an experiment all raise WorkStarted
here, so a check that came after any of them would fail the test (`params` loads nothing: it
counts from the config, and its counts come after its checks)."""
import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert import cli
from minibert.adapters import ACTIVATIONS, PLACEMENTS, SITES
from minibert.data import tasks
from minibert.lab import analyses, bench, sweep
from minibert.qa import squad
from minibert.runs import qa_run
from minibert.model import BertModel
from minibert.tokenizer import Tokenizer
from minibert.train import METHODS

from conftest import snapshot

REPO = Path(__file__).resolve().parents[1]


class WorkStarted(Exception):
    """Raised by whatever does the work of a command (not an error the CLI handles)."""


def refuse_work(*args, **kwargs):
    raise WorkStarted


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """The current folder for a command: a file, an empty folder, an earlier run's folder, an
    adapter file (never read: the checks come first) and a data file (its header is read by the
    checks). Nothing may do work."""
    (tmp_path / "a-file.txt").write_text("not a folder\n")
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}\n")
    (tmp_path / "adapter.safetensors").write_bytes(b"never read")
    (tmp_path / "data.csv").write_text("text,pair,label\nA good film.,It was.,pos\n"
                                      "A bad film.,It was.,neg\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setattr(BertModel, "__init__", refuse_work)
    monkeypatch.setattr(Tokenizer, "from_pretrained", refuse_work)
    monkeypatch.setattr(tasks, "load_examples", refuse_work)
    monkeypatch.setattr(squad, "load_questions", refuse_work)
    monkeypatch.setattr(qa_run, "load_questions", refuse_work)
    monkeypatch.setattr(bench, "matmul_peak", refuse_work)
    monkeypatch.setattr(bench, "run", refuse_work)
    monkeypatch.setattr(sweep, "run_on_ray", refuse_work)
    for name in analyses.EXPERIMENTS:
        monkeypatch.setitem(analyses.EXPERIMENTS, name, refuse_work)
    return tmp_path


def run(argv):
    """main(argv)'s exit status, argparse's SystemExit included."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


# ---------------------------------------------------------------------------- bad values
def texts(*values):
    return st.sampled_from(values)


NOT_INTEGERS = texts("abc", "1.5", "nan", "inf", "", "1e3", "0x10", "3 4")
NOT_NUMBERS = texts("abc", "", "1,5", "one", "0.1.2")


def integers_below(minimum):
    return st.integers(max_value=minimum - 1).map(str) | NOT_INTEGERS


def integers_outside(minimum, maximum):
    return (st.integers(max_value=minimum - 1) | st.integers(min_value=maximum + 1)).map(str) \
        | NOT_INTEGERS


NOT_POSITIVE = (st.floats(max_value=0.0).map(repr) | texts("nan", "-nan", "inf", "+inf")
                | NOT_NUMBERS)
POSITIVE_INTEGER, COUNT = integers_below(1), integers_below(0)


def names_other_than(known):
    # not starting with "-": argparse would take such a word for an option
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ ",
                   max_size=12).filter(lambda name: name not in known and name[:1] != "-")


NOT_A_TASK = names_other_than([*tasks.TASKS, "SQuAD"])
NOT_A_METHOD = names_other_than(METHODS)
NOT_AN_EXPERIMENT = names_other_than(analyses.EXPERIMENTS)
NOT_A_GRID = names_other_than(sweep.GRIDS)
NOT_AN_ADDRESS = texts("nowhere", "AUTO", "", "ray://", "ray://host", "ray://host:0",
                       "ray://host:65536", "ray://:10001", "http://host:10001", "host:10001")
# GPUs are refused outright for the default device (numpy), so any number of them is bad here
NOT_GPUS = (st.floats(max_value=-1e-9) | st.floats(min_value=1e-3, max_value=8)).map(repr) \
    | texts("nan", "inf") | NOT_NUMBERS
NOT_A_DEVICE = texts("tpu", "", "NUMPY", "cuda", "gpu:0")
NOT_A_FOLDER = texts("missing/folder", "a-file.txt")
NOT_A_FILE = texts("missing.safetensors", "empty-folder")
NO_OUTPUT_FOLDER = texts("a-file.txt", "a-file.txt/run")
NOT_A_MODEL = texts("./missing-model", "a-file.txt", "empty-folder")
# data.csv's columns are text, pair and label; a-file.txt's format cannot be told
NOT_A_DATA_FILE = NOT_A_FILE | texts("a-file.txt")
NOT_A_COLUMN = names_other_than({"text", "pair", "label"}) | texts("")
NOT_A_FORMAT = texts("xml", "CSV", "json", "")
DATA_FILE_OPTIONS = {"--text-column": NOT_A_COLUMN, "--text-pair-column": NOT_A_COLUMN,
                     "--file-format": NOT_A_FORMAT}
NOT_A_POOLING = texts("max", "CLS", "mean_tokens", "")
NOT_A_TRAINABLE_MODEL = NOT_A_MODEL | texts("bert-base-random", "tiny-random")
MINILM_LAYERS, MINILM_POSITIONS = 6, 512
# the adapter's variant: train's and sweep's; params takes those that change the count
COUNTED_VARIANT_OPTIONS = {"--adapter-placement": names_other_than(PLACEMENTS),
                           "--adapter-sites": names_other_than(SITES),
                           "--leave-out": integers_outside(0, MINILM_LAYERS - 1)}
VARIANT_OPTIONS = {**COUNTED_VARIANT_OPTIONS,
                   "--adapter-activation": names_other_than(ACTIVATIONS),
                   "--adapter-scaling": texts("nan", "-nan", "inf", "-inf") | NOT_NUMBERS}

# the options of shared_run_arguments: train, eval and experiment have them all
RUN_OPTIONS = {"--model": NOT_A_TRAINABLE_MODEL, "--data-dir": NOT_A_FOLDER,
               "--batch-size": POSITIVE_INTEGER,
               "--max-seq-length": integers_outside(3, MINILM_POSITIONS),
               "--max-eval-examples": COUNT, "--device": NOT_A_DEVICE}
# extractive QA's options (train's and eval's), on a classification task or your own files:
# unused there, but they must still be what they may be
QA_OPTIONS = {"--doc-stride": POSITIVE_INTEGER, "--max-query-length": POSITIVE_INTEGER,
              "--max-answer-length": POSITIVE_INTEGER}
# the options train passes on to each trial of a sweep
TRIAL_OPTIONS = {**RUN_OPTIONS, **QA_OPTIONS, **DATA_FILE_OPTIONS, "--method": NOT_A_METHOD,
                 "--adapter-init-std": NOT_POSITIVE, "--top-k": integers_outside(1, MINILM_LAYERS),
                 "--max-train-examples": COUNT, "--checkpoint-every": COUNT,
                 "--pooling": NOT_A_POOLING, **VARIANT_OPTIONS}
# case -> (the valid arguments the bad one is added to, the command first; {option: bad
# values}); an option's last occurrence is the one argparse keeps
COMMANDS = {
    "train": (["train", "--out", "runs/new", "--train", "data.csv", "--dev", "data.csv"], {
        **RUN_OPTIONS, **DATA_FILE_OPTIONS, "--train": NOT_A_DATA_FILE, "--dev": NOT_A_DATA_FILE,
        "--test": NOT_A_DATA_FILE, "--label-column": NOT_A_COLUMN,
        "--task": NOT_A_TASK | texts("TREC-6", "SQuAD"),      # no task beside --train
        "--method": NOT_A_METHOD, "--out": NO_OUTPUT_FOLDER,
        "--adapter-size": POSITIVE_INTEGER, "--adapter-init-std": NOT_POSITIVE,
        "--top-k": integers_outside(1, MINILM_LAYERS), "--lr": NOT_POSITIVE,
        "--epochs": POSITIVE_INTEGER, "--max-train-examples": COUNT, "--seed": COUNT,
        "--checkpoint-every": COUNT, "--resume": NOT_A_FOLDER | texts("empty-folder", "done"),
        "--pooling": NOT_A_POOLING, **QA_OPTIONS, **VARIANT_OPTIONS}),
    "train SQuAD": (["train", "--task", "SQuAD", "--out", "runs/new"], {
        **RUN_OPTIONS, **QA_OPTIONS,
        # the question, [CLS] and two [SEP]s leave a token of context in the default 384
        "--max-query-length": integers_outside(1, 380),
        "--pooling": NOT_A_POOLING | texts("cls", "mean")}),      # its head reads every token
    "eval": (["eval", "--adapters", "adapter.safetensors", "--test", "data.csv"], {
        **RUN_OPTIONS, **DATA_FILE_OPTIONS, "--dev": NOT_A_DATA_FILE, "--test": NOT_A_DATA_FILE,
        "--label-column": NOT_A_COLUMN,
        "--data-dir": NOT_A_FOLDER | texts("empty-folder"),   # a task's, not beside your files
        "--task": NOT_A_TASK | texts("TREC-6", "SQuAD"),      # a task or your files
        "--adapters": NOT_A_FILE, **QA_OPTIONS,
        "--predictions": texts("predictions.json", "a-file.txt")}),   # your files write none
    "eval TREC-6": (["eval", "--task", "TREC-6", "--adapters", "adapter.safetensors"], {
        **RUN_OPTIONS, "--task": NOT_A_TASK, "--adapters": NOT_A_FILE, **QA_OPTIONS,
        "--predictions": texts("predictions.json", "a-file.txt")}),     # TREC-6 writes none
    "eval SQuAD": (["eval", "--task", "SQuAD", "--adapters", "adapter.safetensors"], {
        **RUN_OPTIONS, "--adapters": NOT_A_FILE, **QA_OPTIONS,
        "--max-query-length": integers_outside(1, 380),
        "--predictions": texts("empty-folder", "a-file.txt/predictions.json", "")}),
    "predict": (["predict", "--adapters", "adapter.safetensors", "--input", "data.csv",
                 "--output", "labels.csv"], {
        **DATA_FILE_OPTIONS, "--adapters": NOT_A_FILE, "--input": NOT_A_DATA_FILE,
        "--output": texts("empty-folder", "a-file.txt/labels.csv", "labels.xml",
                          "data.csv", "./data.csv"),            # the input itself
        "--output-format": NOT_A_FORMAT,
        "--model": NOT_A_TRAINABLE_MODEL, "--batch-size": POSITIVE_INTEGER,
        "--max-seq-length": integers_outside(3, MINILM_POSITIONS), "--device": NOT_A_DEVICE}),
    "params": (["params"], {
        "--model": NOT_A_MODEL, "--adapter-size": POSITIVE_INTEGER,
        "--num-labels": POSITIVE_INTEGER, "--pooling": NOT_A_POOLING,
        **COUNTED_VARIANT_OPTIONS}),
    "export": (["export", "--adapters", "adapter.safetensors", "--to", "adapterhub", "--out",
                "hub"], {"--adapters": NOT_A_FILE, "--to": names_other_than(["adapterhub"]),
                         "--out": NO_OUTPUT_FOLDER | texts("done")}),    # done/ holds a file
    # tiny-random holds 128 positions: the default lengths (up to 384) are refused for it
    "bench": (["bench", "--no-torch", "--models", "tiny-random", "--seq-length", "24"], {
        "--models": NOT_A_MODEL, "--batch-size": POSITIVE_INTEGER,
        "--seq-length": integers_outside(1, 128),          # tiny-random's position table
        "--repeats": POSITIVE_INTEGER, "--task": NOT_A_TASK, "--batches": POSITIVE_INTEGER,
        "--data-dir": NOT_A_FOLDER}),
    "experiment": (["experiment", "init-scale", "--tasks", "TREC-6", "--out", "experiments"], {
        **RUN_OPTIONS, "name": NOT_AN_EXPERIMENT, "--out": NO_OUTPUT_FOLDER,
        "--tasks": NOT_A_TASK, "--epochs": POSITIVE_INTEGER, "--max-train-examples": COUNT,
        "--adapter-size": POSITIVE_INTEGER, "--seed": COUNT, "--pooling": NOT_A_POOLING}),
    "gradcheck": (["gradcheck"], {
        "--device": NOT_A_DEVICE, "--layers": POSITIVE_INTEGER,
        "--hidden-size": POSITIVE_INTEGER,
        "--heads": integers_outside(1, 16) | st.integers(1, 16).filter(lambda h: 16 % h).map(str),
        "--seed": COUNT, "--tol": NOT_POSITIVE}),
    "sweep": (["sweep", "--out", "runs/new", "--seeds", "1", "--train", "data.csv", "--dev",
               "data.csv"], {
        **TRIAL_OPTIONS, "--train": NOT_A_DATA_FILE, "--dev": NOT_A_DATA_FILE,
        "--test": NOT_A_DATA_FILE, "--label-column": NOT_A_COLUMN,
        "--task": NOT_A_TASK | texts("TREC-6", "SQuAD"),      # no task beside --train
        "--grid": NOT_A_GRID, "--lr": NOT_POSITIVE,
        "--epochs": POSITIVE_INTEGER, "--adapter-size": POSITIVE_INTEGER,
        "--seeds": POSITIVE_INTEGER, "--out": NO_OUTPUT_FOLDER, "--address": NOT_AN_ADDRESS,
        "--cpus-per-trial": NOT_POSITIVE, "--gpus-per-trial": NOT_GPUS,
        "--max-failures": COUNT}),
    # sweeps to combine: none there, a folder without a sweep, files that are not a sweep's
    "sweep --from": (["sweep", "--out", "runs/new"], {
        "--from": texts("missing/folder", "empty-folder", "done", "a-file.txt", "data.csv",
                        "done/results.json")}),
}
CASES = [(case, option) for case, (_, options) in COMMANDS.items() for option in options]
TRIED = collections.Counter()             # (case, option) -> bad values tried


def with_bad_value(case, option, value):
    base, _ = COMMANDS[case]
    if option == "name":                  # experiment's positional argument
        return [base[0], value, *base[2:]]
    return [*base, option, value]


@pytest.fixture(scope="module", autouse=True)
def report_the_count(request):
    """After the tests: how many commands, options and bad values were tried, on the terminal."""
    yield
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(
            f"\nbad options: {len({COMMANDS[c][0][0] for c, _ in TRIED})} commands, "
            f"{len({(COMMANDS[c][0][0], o) for c, o in TRIED})} options, "
            f"{sum(TRIED.values())} bad values refused")


@pytest.mark.parametrize("case, option", CASES)
def test_a_bad_value_is_refused_by_name_and_writes_nothing(workspace, capsys, case, option):
    command = COMMANDS[case][0][0]

    @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    @given(COMMANDS[case][1][option])
    def refused(value):
        before = snapshot(workspace)
        status = run(with_bad_value(case, option, value))
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert status == 2, (value, err)
        assert len(lines) == 1 and lines[0].startswith(f"minibert {command}: error: "), err
        assert f"error: {option}: " in lines[0] or f"error: argument {option}" in lines[0], err
        assert "Traceback" not in err and out == ""
        assert snapshot(workspace) == before, value
        TRIED[case, option] += 1
    refused()


def test_every_option_of_every_command_is_covered():
    _, commands = cli.make_parser()
    options = {name: {action.option_strings[-1] if action.option_strings else action.dest
                      for action in parser._actions if action.nargs != 0}
               for name, parser in commands.choices.items()}
    covered = collections.defaultdict(set)
    for base, bad in COMMANDS.values():
        covered[base[0]].update(bad)
    assert options == covered


@pytest.mark.parametrize("argv", [["train", "--out", "runs/new", "--epochs", "1"],
                                  ["train", "--out", "runs/new", "--train", "data.csv", "--dev",
                                   "data.csv", "--text-pair-column", "pair"],
                                  ["train", "--task", "SQuAD", "--out", "runs/new"],
                                  ["eval", "--task", "TREC-6", "--adapters", "adapter.safetensors"],
                                  ["eval", "--task", "SQuAD", "--adapters", "adapter.safetensors",
                                   "--predictions", "runs/predictions.json"],
                                  ["bench", "--models", "tiny-random", "--no-torch",
                                   "--seq-length", "24"],
                                  ["experiment", "init-scale", "--tasks", "TREC-6", "--out",
                                   "experiments"],
                                  ["gradcheck"], ["sweep", "--out", "runs/new", "--seeds", "1"]])
def test_good_options_reach_the_work(workspace, argv):
    """The other side: with every option good, each command gets as far as its work (so the
    refusals above came from the checks), and a run that fails there leaves no folder."""
    with pytest.raises(WorkStarted):
        cli.main(argv)
    assert not (workspace / "runs").exists() and not (workspace / "experiments").exists()


@pytest.mark.parametrize("argv, option", [(["train", "--epochs", "0"], "--epochs"),
                                          (["bench", "--repeats", "three"], "--repeats")])
def test_a_real_user_sees_one_line_and_no_traceback(tmp_path, argv, option):
    done = subprocess.run([sys.executable, "-m", "minibert.cli", *argv], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and option in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []            # not even train's default runs/trec6
