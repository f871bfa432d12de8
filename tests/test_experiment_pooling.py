"""`minibert experiment --pooling`: the option reaches every run of an analysis, the JSON says
which pooling its heads read, and a JSON written before it existed resumes as it was made (the
pooled [CLS])."""
import dataclasses
import json
from unittest import mock

import pytest

from minibert import cli
from minibert.heads import POOLINGS
from minibert.lab import analyses
from minibert.named_models import default_pooling
from minibert.runs import RunSettings


def test_experiment_takes_trains_poolings():
    parser, commands = cli.make_parser()
    train, experiment = commands.choices["train"], commands.choices["experiment"]
    choices = {a.dest: a.choices for a in experiment._actions}
    assert choices["pooling"] == {a.dest: a.choices for a in train._actions}["pooling"] == POOLINGS
    assert parser.parse_args(["experiment", "tradeoff"]).pooling is None      # the model's
    assert parser.parse_args(["experiment", "tradeoff", "--pooling", "cls_token"]).pooling == \
        "cls_token"


@pytest.mark.parametrize("given", [None, "mean"])
def test_experiment_passes_the_pooling_to_its_base_settings(tiny_model, tmp_path, monkeypatch,
                                                            given):
    seen = {}

    def run_experiment(name, out, base, task_names):
        seen["base"] = base
        return tmp_path / "figure.png", {"runs": {}}
    monkeypatch.setattr(analyses, "run_experiment", run_experiment)
    argv = ["experiment", "init-scale", "--tasks", "TREC-6", "--model", str(tiny_model),
            "--out", str(tmp_path / "out")] + (["--pooling", given] if given else [])
    assert cli.main(argv) == 0
    # None: the model's default, as train takes it
    assert seen["base"].pooling == (given or default_pooling(str(tiny_model))[0])


def fake_run_train(seen):
    def run_train(settings, resume=False, overwrite=False):
        seen.append(settings)
        return {"task": settings.task, "method": settings.method,
                "adapter_size": settings.adapter_size, "score": 0.5, "metrics": {"score": 0.5},
                "trained_params": 10 * settings.adapter_size + len(seen), "total_params": 1000,
                "train_seconds": 0.0, "seed": settings.seed,
                "settings": json.loads(json.dumps(dataclasses.asdict(settings)))}
    return run_train


@pytest.mark.parametrize("name", ["tradeoff", "init-scale", "variants"])
def test_every_run_of_an_analysis_reads_its_pooling_and_the_json_says_so(
        tiny_model, tmp_path, monkeypatch, name):
    seen = []
    monkeypatch.setattr(analyses, "run_train", fake_run_train(seen))
    monkeypatch.setattr(analyses, "majority_score", lambda task, base: 0.5)
    monkeypatch.setattr(analyses, "subplots", lambda *grid, figsize, **options: (
        mock.MagicMock(), mock.MagicMock()))                # no figure drawn
    monkeypatch.setattr(analyses, "save_figure", lambda fig, out, name: tmp_path / "f.png")
    base = RunSettings(model=str(tiny_model), pooling="mean", max_seq_length=16)
    analyses.EXPERIMENTS[name](tmp_path, base, ("TREC-6",))
    assert seen and {s.pooling for s in seen} == {"mean"}
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert data["settings"]["pooling"] == data["settings"]["base"]["pooling"] == "mean"
    assert {r["settings"]["pooling"] for r in data["runs"].values() if "settings" in r} == {"mean"}


def old_record(tmp_path, base):
    """init-scale.json as it was written before the pooling was recorded: no pooling anywhere."""
    settings = json.loads(json.dumps(dataclasses.asdict(base)))
    del settings["pooling"]
    run = {"task": "TREC-6", "score": 0.75, "settings": dict(settings)}
    (tmp_path / "init-scale.json").write_text(json.dumps(
        {"experiment": "init-scale", "settings": {"base": settings, "task": "TREC-6"},
         "runs": {"TREC-6/std-0.001": run}}))


def test_a_json_from_before_the_pooling_resumes_as_made_with_cls(tiny_model, tmp_path):
    base = RunSettings(model=str(tiny_model), pooling="cls", max_seq_length=16)
    old_record(tmp_path, base)
    record = analyses.Record(tmp_path, "init-scale", analyses.recorded_settings(base, task="TREC-6"))
    assert record.done("TREC-6/std-0.001")                 # its finished runs count
    data = json.loads((tmp_path / "init-scale.json").read_text())
    assert data["settings"]["pooling"] == "cls" and data["runs"]["TREC-6/std-0.001"]["score"] == 0.75
    # another pooling: its runs do not count, and the message names the pooling
    old_record(tmp_path, base)
    mean = dataclasses.replace(base, pooling="mean")
    with pytest.raises(ValueError, match=r"'pooling': \('cls', 'mean'\)"):
        analyses.Record(tmp_path, "init-scale", analyses.recorded_settings(mean, task="TREC-6"))


def test_an_interrupted_run_from_before_the_pooling_resumes_as_made_with_cls(tmp_path):
    then = {"task": "TREC-6", "epochs": 3}
    assert analyses.changed_settings(then, {"task": "TREC-6", "epochs": 3, "pooling": "cls"}) == {}
    assert analyses.changed_settings(then, {"task": "TREC-6", "epochs": 3, "pooling": "mean"}) == \
        {"pooling": ("cls", "mean")}
    assert analyses.changed_settings({"task": "SQuAD"}, {"task": "SQuAD", "pooling": None}) == {}
