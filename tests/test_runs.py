"""`minibert train` / `eval` end to end on small real subsets with the real minilm-l6 weights."""
import json
import os

import numpy as np
import pytest

import minibert
from minibert.adapter_files import read_adapter_file
from minibert.checks import BadValue
from minibert.cli import main
from minibert.runs import RunSettings, run_eval, run_train
from minibert.speed.plans import cpu_name
from minibert.train import TrainingDiverged, configure, train_step
from minibert.optim import AdamW

from conftest import tiny_config

SMALL = dict(epochs=1, max_train_examples=48, max_eval_examples=40, max_seq_length=48,
             batch_size=16)


@pytest.fixture(scope="module")
def trec_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trec")
    return out, run_train(RunSettings(task="TREC-6", out=str(out), **SMALL))


@pytest.mark.slow
def test_train_writes_results_and_adapter_file(trec_run):
    out, results = trec_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["score"] == results["score"]
    for field in ("task", "method", "adapter_size", "metrics", "score", "trained_params",
                  "total_params", "train_seconds", "examples_per_second", "seed", "settings",
                  "history"):
        assert field in on_disk, field
    assert on_disk["task"] == "TREC-6" and on_disk["method"] == "adapters"
    assert on_disk["eval_examples"] == 40 and on_disk["train_examples"] == 48
    assert 0.0 <= on_disk["score"] <= 1.0
    assert on_disk["trained_params"] / on_disk["total_params"] < 0.05
    assert (out / "adapter.safetensors").is_file()
    # where it ran: a run on another CPU rounds differently
    assert on_disk["machine"]["cpu"] == cpu_name() and on_disk["machine"]["threads"] >= 1
    assert {"cpu_features", "blas", "numpy"} <= set(on_disk["machine"])
    # minilm-l6's own pooling, from its sentence-transformers config, and why
    assert on_disk["pooling"] == on_disk["settings"]["pooling"] == "mean"
    assert on_disk["pooling_reason"] == ("the default (minilm-l6: 1_Pooling/config.json names "
                                         "pooling_mode_mean_tokens)")


@pytest.mark.slow
def test_pooling_by_hand_wins_and_is_recorded_in_results_and_file(tmp_path, capsys):
    args = ["train", "--task", "TREC-6", "--method", "full", "--pooling", "cls", "--out",
            str(tmp_path), "--epochs", "1", "--max-train-examples", "32",
            "--max-eval-examples", "24", "--max-seq-length", "32"]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["pooling"] == results["settings"]["pooling"] == "cls"
    assert results["pooling_reason"].startswith("set in the run's settings; the default is "
                                                "mean (minilm-l6: 1_Pooling/config.json")
    info, _ = read_adapter_file(tmp_path / "trained.safetensors")
    assert info["head"]["pooling"] == "cls"
    assert info["head"]["pooling_reason"] == results["pooling_reason"]
    again = run_eval("TREC-6", "minilm-l6", tmp_path / "trained.safetensors",
                     max_seq_length=32, max_eval_examples=24)
    assert again["metrics"] == results["metrics"]


@pytest.mark.slow
def test_an_adapter_variant_trains_is_recorded_and_evaluates_as_trained(tmp_path):
    args = ["train", "--task", "TREC-6", "--out", str(tmp_path), "--epochs", "1",
            "--max-train-examples", "32", "--max-eval-examples", "24", "--max-seq-length", "32",
            "--adapter-placement", "parallel", "--adapter-activation", "swish",
            "--adapter-sites", "attention.output", "output", "--adapter-ln-before",
            "--leave-out", "0", "--adapter-size", "8"]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    variant = {"size": 8, "init_std": 1e-3, "activation": "swish", "leave_out": [0],
               "placement": "parallel", "sites": ["attention.output", "output"],
               "scaling": 4.0, "ln_before": True, "ln_after": False}
    assert results["adapter"] == variant
    info, tensors = read_adapter_file(tmp_path / "adapter.safetensors")
    assert info["adapter"] == variant
    assert "encoder.layer.1.attention.output.adapter.ln_before.weight" in tensors
    assert not any(n.startswith("encoder.layer.0.") and ".adapter." in n for n in tensors)
    again = run_eval("TREC-6", "minilm-l6", tmp_path / "adapter.safetensors",
                     max_seq_length=32, max_eval_examples=24)
    assert again["metrics"] == results["metrics"]


def test_the_adapters_variant_is_refused_for_the_other_methods():
    with pytest.raises(BadValue, match="adapter_placement: expected none with method full "
                                       r"\(method adapters alone takes it\), found 'pfeiffer'"):
        RunSettings(task="TREC-6", method="full", adapter_placement="pfeiffer")
    with pytest.raises(BadValue, match="leave_out: expected none with method head"):
        RunSettings(task="TREC-6", method="head", leave_out=[1])
    assert RunSettings(task="TREC-6", leave_out=[3, 1, 3]).leave_out == [1, 3]
    assert RunSettings(task="TREC-6", method="full", leave_out=()).leave_out == []


@pytest.mark.slow
def test_eval_reproduces_the_training_score_exactly(trec_run):
    out, results = trec_run
    again = run_eval("TREC-6", "minilm-l6", out / "adapter.safetensors",
                     max_seq_length=SMALL["max_seq_length"], max_eval_examples=40)
    assert again["metrics"] == results["metrics"]
    # without max_seq_length: the length the file records, the run's 48 (not 128); the run's
    # folder stands for its file
    assert run_eval("TREC-6", "minilm-l6", out, max_eval_examples=40)["metrics"] == \
        results["metrics"]


@pytest.mark.slow
def test_an_adapter_file_is_scored_only_on_the_task_it_was_trained_on(trec_run, tmp_path,
                                                                      capsys, glue_dir):
    out, _ = trec_run
    adapters = out / "adapter.safetensors"
    assert main(["eval", "--task", "MRPC", "--data-dir", glue_dir, "--adapters",
                 str(adapters)]) == 2
    assert capsys.readouterr().err == (
        f"minibert eval: error: --adapters: expected an adapter file trained on MRPC, found "
        f"{adapters}, trained on TREC-6 (another task); score it on what it was trained on\n")
    (tmp_path / "t.csv").write_text("text,label\na good film,pos\na bad film,neg\n")
    assert main(["train", "--train", str(tmp_path / "t.csv"), "--dev", str(tmp_path / "t.csv"),
                 "--epochs", "1", "--out", str(tmp_path / "own")]) == 0
    own = tmp_path / "own" / "adapter.safetensors"
    capsys.readouterr()
    assert main(["eval", "--task", "MRPC", "--data-dir", glue_dir, "--adapters", str(own)]) == 2
    assert capsys.readouterr().err == (
        f"minibert eval: error: --adapters: expected an adapter file trained on MRPC, found "
        f"{own}, trained on {tmp_path / 't.csv'} (your own files); score it on what it was "
        "trained on\n")


@pytest.mark.slow
@pytest.mark.parametrize("task, method", [("MRPC", "full"), ("STS-B", "adapters"),
                                          ("CoLA", "top-k")])
def test_glue_tasks_and_methods_run_from_the_command_line(tmp_path, capsys, task, method,
                                                          glue_dir):
    args = ["train", "--task", task, "--method", method, "--out", str(tmp_path), "--epochs", "1",
            "--max-train-examples", "32", "--max-eval-examples", "32", "--max-seq-length", "40",
            "--data-dir", glue_dir] + (["--top-k", "2"] if method == "top-k" else [])
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["task"] == task and results["method"] == method
    expected = {"MRPC": {"f1", "accuracy"}, "STS-B": {"spearman", "pearson"},
                "CoLA": {"mcc"}}[task]
    assert expected <= set(results["metrics"])
    assert (tmp_path / "adapter.safetensors").exists() == (method == "adapters")


@pytest.mark.slow
def test_two_task_adapters_swap_on_one_base(trec_run, tmp_path, glue_dir):
    trec_out, trec_results = trec_run
    sst = run_train(RunSettings(task="SST-2", out=str(tmp_path), data_dir=glue_dir, **SMALL))
    model = minibert.BertModel.from_pretrained("minilm-l6")
    heads = {"TREC-6": minibert.load_adapters(model, trec_out / "adapter.safetensors"),
             "SST-2": minibert.load_adapters(model, tmp_path / "adapter.safetensors")}
    tok = minibert.Tokenizer.from_pretrained("minilm-l6")
    enc = tok(["what is the capital of france ?"])
    outputs = {}
    for task in ("TREC-6", "SST-2", "TREC-6"):
        minibert.set_active_adapters(model, task)
        seq, pooled = model.forward(**enc)
        # each head on what its pooling reads (minilm-l6's: the mean of the tokens)
        outputs.setdefault(task, []).append(heads[task].forward_batch(seq, pooled, enc)[0])
    np.testing.assert_array_equal(*outputs["TREC-6"])       # SST-2 in between changed nothing
    assert outputs["SST-2"][0].shape == (1, 2) and outputs["TREC-6"][0].shape == (1, 6)
    assert sst["task"] == "SST-2"


def test_bad_task_method_and_data_folder_are_named(tmp_path, capsys):
    assert main(["train", "--task", "SST-3", "--out", str(tmp_path)]) == 2
    assert "SST-3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--method", "lora"])
    assert "invalid choice: 'lora'" in capsys.readouterr().err
    assert main(["train", "--task", "RTE", "--data-dir", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path)]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_each_task_has_its_own_default_folder(glue_dir):
    assert RunSettings().out == "runs/trec6"
    assert RunSettings(task="STS-B", data_dir=glue_dir).out == "runs/stsb"
    assert RunSettings(task="SST-2", data_dir=glue_dir, out="elsewhere").out == "elsewhere"


def test_settings_for_your_own_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("reviews.csv", "dev.csv"):
        (tmp_path / name).write_text("review,label\ngood,pos\nbad,neg\n")
    settings = RunSettings(train_file="reviews.csv", dev_file="dev.csv", text_column="review")
    assert settings.task is None and settings.out == "runs/reviews"
    # saved absolute, so that --resume works from any folder
    assert settings.data_files() == {"train": os.path.join(os.getcwd(), "reviews.csv"),
                                     "dev": os.path.join(os.getcwd(), "dev.csv")}
    refusals = [
        (dict(task="SST-2"), "task: expected no task beside train_file (your files are the task), "
                             "found 'SST-2'"),
        (dict(dev_file=None), "dev_file: expected a dev file beside the training file (it is "
                              "scored after every epoch), found none"),
        (dict(text_column="text"), "text_column: expected a column of reviews.csv, but it has "
                                   "no column 'text'; its columns: 'review', 'label'"),
        (dict(label_column="lable"), "label_column: expected a column of reviews.csv, but it "
                                     "has no column 'lable'; its columns: 'review', 'label'; "
                                     "did you mean 'label'?"),
        (dict(train_file=None), "dev_file: expected no dev_file without train_file (a task's "
                                "splits are its own), found 'dev.csv'"),
        (dict(train_file=None, dev_file=None, regression=True),
         "regression: expected regression only with train_file (a task knows its head)"),
    ]
    for change, message in refusals:
        with pytest.raises(BadValue) as error:
            RunSettings(**{**dict(train_file="reviews.csv", dev_file="dev.csv",
                                  text_column="review"), **change})
        assert str(error.value) == message


def test_a_nan_loss_stops_training_and_keeps_the_last_good_weights(batch):
    model = minibert.BertModel(tiny_config())
    head = minibert.SequenceClassificationHead(8, 2)
    configure(model, head, "full")
    optimizer = AdamW([model, head])
    batch = {**batch, "labels": np.array([0, 1])}
    train_step(model, head, batch, optimizer, 1e-3)
    good = {n: p.copy() for n, p in model.params.items()}
    head.params["classifier.bias"][0] = np.inf                 # poisons the next loss
    with pytest.raises(TrainingDiverged, match="loss is nan at optimizer step 2"), \
            np.errstate(invalid="ignore"):
        train_step(model, head, batch, optimizer, 1e-3)
    for name, value in good.items():
        np.testing.assert_array_equal(model.params[name], value, err_msg=name)


@pytest.mark.slow
def test_a_run_on_a_non_numpy_device_goes_through_the_switch(tmp_path):
    """The strict device refuses NumPy calls on its arrays, as CuPy does: a whole
    `--device` run (tokenised batches in, predictions and files out) works on it."""
    results = run_train(RunSettings(task="TREC-6", out=str(tmp_path), device="strict", epochs=1,
                                    max_train_examples=16, max_eval_examples=16,
                                    max_seq_length=24, batch_size=8))
    again = run_eval("TREC-6", "minilm-l6", tmp_path / "adapter.safetensors", max_seq_length=24,
                     max_eval_examples=16)
    assert again["metrics"] == results["metrics"]


def test_the_runs_public_names_are_what_they_say_not_submodules():
    # a submodule named as a function (runs/predict.py beside runs.predict) would replace the
    # function in the package once imported
    import inspect
    from minibert import runs
    for name in runs.__all__:
        assert not inspect.ismodule(getattr(runs, name)), name
    assert {runs.predict.__module__, runs.evaluate.__module__} == {"minibert.runs.evaluation"}


@pytest.mark.slow
def test_training_shows_its_labels_and_warns_of_a_run_too_short_or_a_class_too_small(
        tmp_path, capsys):
    rows = [f"good film {i},pos\nbad film {i},neg\n" for i in range(30)]
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(rows) + "meh,mid\n")
    assert main(["train", "--train", str(tmp_path / "t.csv"), "--dev", str(tmp_path / "t.csv"),
                 "--epochs", "1", "--max-seq-length", "16", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "labels (training rows): mid 1, neg 30, pos 30",
        "warning: label 'mid' has 1 training row; a class needs 5 at least to be learnt",
        "warning: this run makes 2 optimizer steps (61 examples, batch 32, 1 epoch); under 20 "
        "the model barely moves from where it began: give more --epochs or a smaller "
        "--batch-size"]
