"""Each analysis end to end on a tiny random BERT (with the real tokenizer and real data):
the JSON it writes, a real PNG, and a re-run that skips what is finished."""
import contextlib
import dataclasses
import json

import pytest

import minibert
from minibert.lab import analyses
from minibert.runs import RunSettings, run


PNG = b"\x89PNG\r\n\x1a\n"


def base(model, data_dir=None):
    return RunSettings(model=str(model), max_train_examples=16, max_eval_examples=16,
                       max_seq_length=16, batch_size=8, epochs=1, adapter_size=4,
                       data_dir=data_dir)


def rerun_runs_nothing(monkeypatch, name, out, settings, task_names):
    monkeypatch.setattr(analyses, "run_train",
                        lambda s, resume: pytest.fail(f"re-ran {s.out}"))
    monkeypatch.setattr(analyses, "evaluate", lambda *a: pytest.fail("re-evaluated"))
    analyses.EXPERIMENTS[name](out, settings, task_names)


@pytest.mark.slow
@pytest.mark.parametrize("name, task_names", [("tradeoff", ("TREC-6",)),
                                              ("init-scale", ("TREC-6",)),
                                              ("ablation", ("TREC-6",)),
                                              ("variants", ("TREC-6",))])
def test_experiment_writes_json_and_png_and_resumes(tiny_model, tmp_path, monkeypatch, name,
                                                    task_names):
    settings = base(tiny_model)
    figure, data = analyses.EXPERIMENTS[name](tmp_path, settings, task_names)
    assert figure.read_bytes()[:8] == PNG
    on_disk = json.loads((tmp_path / f"{name}.json").read_text())
    assert on_disk == json.loads(json.dumps(data))
    assert on_disk["experiment"] == name and "16 train / 16 eval examples" in on_disk["settings"]["subsampled"]
    runs = on_disk["runs"]
    if name == "tradeoff":        # 9 adapter sizes, top-1 and top-2, LayerNorm, head, full
        assert len(runs) == 9 + 2 + 3 + 1                                   # + the majority class
        assert runs["TREC-6/majority"]["score"] > 0
        assert all({"score", "trained_params", "seed", "settings"} <= set(r)
                   for key, r in runs.items() if key != "TREC-6/majority")
        sizes = sorted(r["trained_params"] for k, r in runs.items() if "/adapters-" in k)
        assert sizes == sorted(set(sizes))                  # more parameters for larger adapters
    if name == "init-scale":
        assert [r["settings"]["adapter_init_std"] for r in runs.values()] == list(
            analyses.INIT_STDS)
    if name == "ablation":
        assert len([k for k in runs if k.startswith("remove-")]) == 3        # [0,0] [0,1] [1,1]
        assert {"trained", "majority"} <= set(runs)
    if name == "variants":        # every variant with every seed, and the majority class
        assert len(runs) == len(analyses.VARIANTS) * analyses.VARIANT_SEEDS + 1
        summary = on_disk["summary"]
        assert set(summary) == set(analyses.VARIANTS)
        houlsby = runs["houlsby/seed-1"]["settings"]
        assert (houlsby["adapter_placement"], houlsby["seed"]) == ("houlsby", 1)
        assert runs["parallel/seed-0"]["settings"]["adapter_placement"] == "parallel"
        # one block's adapters are half of both blocks' (their LayerNorms are the same)
        C, M, L = 16, 4, 2
        half = L * (2 * C * M + C + M)
        assert (summary["houlsby"]["trained_params"]
                - summary["attention-only"]["trained_params"]) == half
        assert summary["houlsby"]["mean"] == pytest.approx(
            sum(runs[f"houlsby/seed-{s}"]["score"] for s in range(3)) / 3)
    rerun_runs_nothing(monkeypatch, name, tmp_path, settings, task_names)
    # finished configurations count only for the settings they were made with
    with pytest.raises(ValueError, match=r"made with other settings .*'epochs': \(1, 2\)"):
        analyses.EXPERIMENTS[name](tmp_path, dataclasses.replace(settings, epochs=2),
                                      task_names)


@pytest.mark.slow
def test_sequential_keeps_adapter_scores_and_resumes(tiny_model, tmp_path, monkeypatch, glue_dir):
    settings = base(tiny_model, glue_dir)
    figure, data = analyses.sequential(tmp_path, settings, ("TREC-6", "SST-2"))
    assert figure.read_bytes()[:8] == PNG
    runs = data["runs"]
    # adapters: the first task's score after the second stage is exactly what it was
    assert runs["adapters/after-SST-2/TREC-6"]["score"] == runs["adapters/after-TREC-6/TREC-6"]["score"]
    assert {"full/after-TREC-6/TREC-6", "full/after-SST-2/TREC-6", "full/after-SST-2/SST-2"} <= set(runs)
    rerun_runs_nothing(monkeypatch, "sequential", tmp_path, settings, ("TREC-6", "SST-2"))


def test_one_task_experiments_refuse_two(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="tasks: expected one task for experiment ablation"):
        analyses.ablation(tmp_path, base(tiny_model), ("TREC-6", "MRPC"))


@pytest.mark.slow
def test_interrupted_experiment_resumes_its_interrupted_run(tiny_model, tmp_path, monkeypatch):
    settings = base(tiny_model)
    _, whole = analyses.init_scale(tmp_path / "whole", settings, ("TREC-6",))

    @contextlib.contextmanager
    def sigint_at_once():        # as if Ctrl-C came during the first step
        yield ["SIGINT"]
    with monkeypatch.context() as m:
        m.setattr(run, "stop_requests", sigint_at_once)
        with pytest.raises(run.Interrupted):
            analyses.init_scale(tmp_path / "cut", settings, ("TREC-6",))
    # other settings than the interrupted run's: refused, naming the folder and the change
    with pytest.raises(ValueError, match=r"other settings is here .*'epochs': \(1, 2\)"):
        analyses.init_scale(tmp_path / "cut", dataclasses.replace(settings, epochs=2),
                               ("TREC-6",))
    _, resumed = analyses.init_scale(tmp_path / "cut", settings, ("TREC-6",))
    assert ([r["score"] for r in resumed["runs"].values()] ==
            [r["score"] for r in whole["runs"].values()])
