"""Your own files end to end with the real minilm-l6 weights: `minibert train` on CSV files
written here, `eval` on them reproducing the run's test score exactly, and `predict` writing a
label and probabilities per row that agree with that score; regression from JSON Lines."""
import csv
import json

import numpy as np
import pytest

from minibert.cli import main

POSITIVE = ["a wonderful film", "great acting and a moving story", "I loved every minute",
            "superb, funny and warm", "a delight from start to end", "brilliant and touching"]
NEGATIVE = ["a dull mess", "boring and far too long", "I hated it", "awful acting, weak plot",
            "a waste of an evening", "tedious and flat"]
SMALL = ["--epochs", "2", "--max-seq-length", "24", "--batch-size", "8", "--lr", "3e-3"]


def reviews(folder, name, n, seed):
    """A CSV of n short reviews with column review and label pos or neg."""
    rng = np.random.default_rng(seed)
    path = folder / name
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"])
        for i in range(n):
            good = bool(rng.integers(2))
            writer.writerow([i, rng.choice(POSITIVE if good else NEGATIVE),
                             "pos" if good else "neg"])
    return path


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    files = {split: reviews(folder, f"{split}.csv", n, seed)
             for split, n, seed in (("train", 64, 0), ("dev", 16, 1), ("test", 24, 2))}
    out = folder / "run"
    assert main(["train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test",
                 str(files["test"]), "--text-column", "review", "--label-column", "sentiment",
                 "--out", str(out), *SMALL]) == 0
    return files, out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_train_on_your_files_records_labels_and_test_score(own_run):
    files, out, results = own_run
    assert results["labels"] == ["neg", "pos"] and results["task"] == str(files["train"])
    assert results["eval_split"] == "dev" and results["train_examples"] == 64
    assert results["test_examples"] == 24 and 0 <= results["test_metrics"]["accuracy"] <= 1
    assert (out / "adapter.safetensors").is_file()


@pytest.mark.slow
def test_eval_on_your_files_gives_the_runs_scores_exactly(own_run, capsys):
    files, out, results = own_run
    capsys.readouterr()
    assert main(["eval", "--adapters", str(out / "adapter.safetensors"), "--dev",
                 str(files["dev"]), "--test", str(files["test"]), "--max-seq-length", "24",
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["files"]
    assert scored["test"]["metrics"] == results["test_metrics"]
    assert scored["dev"]["metrics"] == results["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("output, output_format", [("labels.csv", None), ("labels.jsonl", None),
                                                   ("labels.txt", "tsv")])
def test_predict_keeps_every_input_column_and_adds_label_and_probabilities(own_run, output,
                                                                           output_format):
    """No --max-seq-length: the 24 tokens the run was trained with, recorded in its file, so
    predict agrees with the run's test score exactly."""
    files, out, results = own_run
    path = out.parent / output
    argv = ["predict", "--adapters", str(out / "adapter.safetensors"), "--input",
            str(files["test"]), "--output", str(path)]
    assert main(argv + (["--output-format", output_format] if output_format else [])) == 0
    if output.endswith(".jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        probabilities = [row["probabilities"] for row in rows]
        assert list(rows[0]) == ["id", "review", "sentiment", "predicted_label", "probabilities"]
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if output_format == "tsv" else ","))
        assert list(rows[0]) == ["id", "review", "sentiment", "predicted_label", "p(neg)",
                                 "p(pos)"]
        probabilities = [{"neg": float(r["p(neg)"]), "pos": float(r["p(pos)"])} for r in rows]
    with open(files["test"], newline="") as f:
        truth = list(csv.DictReader(f))
    assert [{k: r[k] for k in ("id", "review", "sentiment")} for r in rows] == truth
    for row, p in zip(rows, probabilities):
        assert sum(p.values()) == pytest.approx(1, abs=1e-6)
        assert row["predicted_label"] == max(p, key=p.get)
    accuracy = np.mean([r["predicted_label"] == t["sentiment"] for r, t in zip(rows, truth)])
    assert accuracy == results["test_metrics"]["accuracy"]


@pytest.mark.slow
def test_predict_never_writes_over_its_input_and_its_names_never_collide(own_run, tmp_path,
                                                                        capsys):
    files, out, _ = own_run
    adapters = ["--adapters", str(out / "adapter.safetensors")]
    texts = tmp_path / "texts.csv"
    texts.write_text("predicted_label,review,p(pos)\nx,a wonderful film,y\n")
    link = tmp_path / "link.csv"
    link.symlink_to(texts)
    before = texts.read_bytes()
    for output in (texts, link):
        assert main(["predict", *adapters, "--input", str(texts), "--output", str(output)]) == 2
        assert capsys.readouterr().err == (
            f"minibert predict: error: --output: expected a file other than the input, found "
            f"{output}, which is {texts}; choose another --output (predict never writes over "
            "its input)\n")
    assert texts.read_bytes() == before
    assert main(["predict", *adapters, "--input", str(texts), "--output",
                 str(tmp_path / "labels.txt")]) == 2
    assert capsys.readouterr().err == (
        f"minibert predict: error: --output: {tmp_path / 'labels.txt'}: cannot tell the format "
        "from the extension .txt; expected .csv, .tsv, .jsonl, .ndjson, or give --output-format\n")
    labelled = tmp_path / "labelled.csv"
    assert main(["predict", *adapters, "--input", str(texts), "--output", str(labelled)]) == 0
    with open(labelled, newline="") as f:
        row, = list(csv.DictReader(f))
    assert list(row) == ["predicted_label", "review", "p(pos)", "_predicted_label", "p(neg)",
                         "_p(pos)"]
    assert (row["predicted_label"], row["p(pos)"]) == ("x", "y")      # the input's, as it was


@pytest.mark.slow
def test_regression_from_json_lines(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 32), ("dev", 8)):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for _ in range(n):
                good = bool(rng.integers(2))
                f.write(json.dumps({"text": str(rng.choice(POSITIVE if good else NEGATIVE)),
                                    "stars": float(4 + rng.random() if good else rng.random())})
                        + "\n")
    out = tmp_path / "run"
    assert main(["train", "--train", str(tmp_path / "train.jsonl"), "--dev",
                 str(tmp_path / "dev.jsonl"), "--label-column", "stars", "--regression",
                 "--out", str(out), *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["labels"] is None and results["score_metric"] == "spearman"
    assert main(["predict", "--adapters", str(out / "adapter.safetensors"), "--input",
                 str(tmp_path / "dev.jsonl"), "--output", str(tmp_path / "values.tsv"),
                 "--max-seq-length", "24"]) == 0
    with open(tmp_path / "values.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["text", "stars", "predicted_value"] and len(rows) == 8
    assert all(np.isfinite(float(r["predicted_value"])) for r in rows)


@pytest.mark.slow
def test_a_question_answering_adapter_file_labels_nothing(tmp_path, capsys):
    """An adapter file with SQuAD's span head is refused by name by predict and by eval on your
    files: it has no labels to give."""
    from minibert.adapter_files import save_adapters
    from minibert.adapters import add_adapters
    from minibert.heads import QuestionAnsweringHead
    from minibert.model import BertModel
    model = BertModel.from_pretrained("minilm-l6")
    add_adapters(model, size=4, name="SQuAD")
    adapters = tmp_path / "squad.safetensors"
    save_adapters(model, adapters, QuestionAnsweringHead(model.config.hidden_size), task="SQuAD")
    texts = reviews(tmp_path, "texts.csv", 4, 0)
    for argv in (["predict", "--input", str(texts), "--output", str(tmp_path / "labels.csv"),
                  "--text-column", "review"],
                 ["eval", "--test", str(texts), "--text-column", "review", "--label-column",
                  "sentiment"]):
        assert main([*argv, "--adapters", str(adapters)]) == 2
        assert capsys.readouterr().err.strip().endswith(
            f"error: --adapters: expected an adapter file with a classification head and its "
            f"labels, found {adapters}, which records a question-answering head")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["squad.safetensors", "texts.csv"]


@pytest.mark.slow
def test_a_fully_fine_tuned_run_keeps_a_model_that_eval_and_predict_load(own_run, capsys):
    files, own_out, _ = own_run
    out = own_out.parent / "full"
    assert main(["train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test",
                 str(files["test"]), "--text-column", "review", "--label-column", "sentiment",
                 "--out", str(out), "--method", "full", *SMALL[:-2], "--lr", "5e-5"]) == 0
    results = json.loads((out / "results.json").read_text())
    trained = out / "trained.safetensors"
    assert trained.is_file() and not (out / "adapter.safetensors").exists()
    capsys.readouterr()
    assert main(["eval", "--adapters", str(trained), "--test", str(files["test"]),
                 "--max-seq-length", "24", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"]["test"]["metrics"] == \
        results["test_metrics"]
    labels = out / "labels.jsonl"
    assert main(["predict", "--adapters", str(out), "--input", str(files["test"]),   # the folder
                 "--output", str(labels)]) == 0
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    with open(files["test"], newline="") as f:
        truth = [row["sentiment"] for row in csv.DictReader(f)]
    accuracy = np.mean([row["predicted_label"] == label for row, label in zip(rows, truth)])
    assert len(rows) == 24 and accuracy == results["test_metrics"]["accuracy"]
