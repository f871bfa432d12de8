"""GLUE as the Hugging Face Hub holds it (nyu-mll/glue's parquet files): read as the TSVs are,
example for example, on files written here (tests/glue_fixture.py) and, where they are at hand,
on the real GLUE files; fetched into the cache when no data folder is given, with the download
call replaced (tests never reach the network)."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from minibert.cli import main
from minibert.data import hub, tasks
from minibert.data.tasks import Example, get_task, load_examples

import glue_fixture
from conftest import GLUE_DIR, needs_glue, without_timings

pa = pytest.importorskip("pyarrow", reason="GLUE as the Hub holds it needs pyarrow "
                                           "(pip install 'minibert[hub]')")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory):
    """(a GLUE folder of TSVs, the same files in the Hub's layout)."""
    tsv = glue_fixture.write_glue(tmp_path_factory.mktemp("glue-tsv"))
    return tsv, glue_fixture.write_hub_layout(tsv, tmp_path_factory.mktemp("glue-hub"))


def same_examples(a, b):
    """Equal text and labels, in the same order (the row numbers differ: lines against rows)."""
    return [(e.text_a, e.text_b, e.label) for e in a] == [(e.text_a, e.text_b, e.label) for e in b]


def write_parquet(path, **columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


# ---------------------------------------------------------------------------- reading
@pytest.mark.parametrize("name", glue_fixture.TASKS)
@pytest.mark.parametrize("split", ["train", "dev"])
def test_the_hub_layout_gives_the_examples_of_the_tsvs(both_layouts, name, split):
    tsv, hub_folder = both_layouts
    from_tsv = load_examples(name, split, data_dir=tsv)
    from_hub = load_examples(name, split, data_dir=hub_folder)
    assert len(from_tsv) == glue_fixture.SIZES[split] and same_examples(from_tsv, from_hub)
    assert [e.line for e in from_hub] == list(range(len(from_hub)))          # rows, from 0
    assert load_examples(name, split, data_dir=hub_folder, max_examples=3) == from_hub[:3]


@pytest.mark.slow
@needs_glue
@pytest.mark.parametrize("name", glue_fixture.TASKS)
def test_the_real_glue_files_in_the_hub_layout_are_the_same_examples(tmp_path, name):
    glue_fixture.write_hub_layout(GLUE_DIR, tmp_path, tasks=[name])
    for split in ("train", "dev"):
        from_tsv = load_examples(name, split, data_dir=GLUE_DIR)
        if name == "STS-B":        # the Hub keeps scores as float32: 2.11111111111111 is 2.1111112
            rounded = [float(str(np.float32(e.label))) for e in from_tsv]
            assert sum(r != e.label for r, e in zip(rounded, from_tsv)) == {"train": 14,
                                                                            "dev": 1}[split]
            from_tsv = [dataclasses.replace(e, label=r) for e, r in zip(from_tsv, rounded)]
        assert same_examples(from_tsv, load_examples(name, split, data_dir=tmp_path))


def test_labels_in_the_hubs_order(tmp_path):
    # RTE and QNLI: 0 is entailment, as the TSVs' first label
    write_parquet(tmp_path / "rte" / hub.shard("validation"), sentence1=["a", "b"],
                  sentence2=["c", "d"], label=[0, 1], idx=[0, 1])
    assert [e.label for e in load_examples("RTE", "dev", data_dir=tmp_path)] == [0, 1]
    assert get_task("RTE").labels == ("entailment", "not_entailment")
    # MNLI: the Hub says entailment, neutral, contradiction; minibert's ids are alphabetical
    for split, name in (("dev", "validation_matched"), ("dev_mismatched", "validation_mismatched"),
                        ("train", "train")):
        write_parquet(tmp_path / "mnli" / hub.shard(name), premise=["p0", "p1", "p2"],
                      hypothesis=["h0", "h1", "h2"], label=[0, 1, 2], idx=[0, 1, 2])
        examples = load_examples("MNLI", split, data_dir=tmp_path)
        assert [get_task("MNLI").labels[e.label] for e in examples] == [
            "entailment", "neutral", "contradiction"]
        assert examples[2] == Example("p2", "h2", 0, 2)


def test_stsb_scores_read_from_float32_are_the_tsvs_numbers(tmp_path):
    scores = [3.8, 0.2, 4.75, 1.333]
    write_parquet(tmp_path / "stsb" / hub.shard("train"), sentence1=list("abcd"),
                  sentence2=list("efgh"), label=pa.array(scores, pa.float32()), idx=range(4))
    assert [e.label for e in load_examples("STS-B", "train", data_dir=tmp_path)] == scores


def test_a_tsv_is_read_before_a_parquet_file_of_the_same_split(both_layouts, tmp_path):
    tsv, hub_folder = both_layouts
    for name in ("RTE", "rte"):
        (tmp_path / name).symlink_to((tsv if name == "RTE" else hub_folder) / name)
    path = tasks.glue_file(get_task("RTE"), "dev", tmp_path)
    assert path == (tmp_path / "RTE" / "dev.tsv").absolute()


# ---------------------------------------------------------------------------- bad input
def test_a_missing_file_names_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_examples("CoLA", "dev", data_dir=tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'CoLA' / 'dev.tsv'}: no such file (nor "
                              f"cola/validation-00000-of-00001.parquet, the Hub's layout)")
    assert "nyu-mll/glue" in message and "\n" not in message


@pytest.mark.parametrize("columns, message", [
    (dict(sentence=["a"], idx=[0]), r"expected the columns \['sentence', 'label'\] of "
                                    r"nyu-mll/glue, found \['sentence', 'idx'\] \(no 'label'\)"),
    (dict(sentence=["a", "b"], label=[1, 2]), r", row 1, column 'label': label 2 is not one of "
                                              r"\[0, 1\]$"),
    (dict(sentence=["a"], label=[-1]), r", row 0, column 'label': label -1 is not one of \[0, 1\] "
                                       r"\(-1: a test file, which has no labels\)"),
    (dict(sentence=["a", None], label=[1, 0]), r", row 1, column 'sentence': expected text, "
                                               r"found None"),
])
def test_bad_parquet_files_are_named_with_row_and_column(tmp_path, columns, message):
    path = write_parquet(tmp_path / "cola" / hub.shard("validation"), **columns)
    with pytest.raises(ValueError, match=message) as error:
        load_examples("CoLA", "dev", data_dir=tmp_path)
    assert str(error.value).startswith(str(path))


def test_a_score_that_is_not_a_number_is_named(tmp_path):
    write_parquet(tmp_path / "stsb" / hub.shard("validation"), sentence1=["a"], sentence2=["b"],
                  label=pa.array([float("nan")], pa.float32()))
    with pytest.raises(ValueError, match=r"row 0, column 'label': expected a similarity score "
                                         r"\(a number\), found nan"):
        load_examples("STS-B", "dev", data_dir=tmp_path)


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    path = tmp_path / "sst2" / hub.shard("validation")
    path.parent.mkdir()
    path.write_bytes(b"sentence\tlabel\n")
    with pytest.raises(ValueError, match="not a readable parquet file") as error:
        load_examples("SST-2", "dev", data_dir=tmp_path)
    assert str(error.value).startswith(f"{path.absolute()}: ")


def test_without_pyarrow_it_says_what_to_install(both_layouts, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(FileNotFoundError, match=r"parquet files needs pyarrow: pip install "
                                                r"'minibert\[hub\]'"):
        load_examples("SST-2", "dev", data_dir=both_layouts[1])


# ---------------------------------------------------------------------------- fetching
@pytest.fixture
def hub_online(both_layouts, monkeypatch):
    """The Hub's download call replaced by one that copies the fixture's files; -> the names
    it was asked for."""
    asked = []

    def download(name, folder):
        asked.append(name)
        target = Path(folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((both_layouts[1] / name).read_bytes())
    monkeypatch.setattr(hub, "_download", download)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    return asked


def test_no_data_folder_fetches_the_task_once_then_reads_the_cache(both_layouts, hub_online,
                                                                   monkeypatch, capsys):
    examples = load_examples("CoLA", "dev")
    assert hub_online == ["cola/train-00000-of-00001.parquet",
                          "cola/validation-00000-of-00001.parquet"]       # every split at once
    err = capsys.readouterr().err
    cache = hub.cache_folder()
    assert err == ("minibert: fetched cola/train-00000-of-00001.parquet of CoLA from the Hugging "
                   "Face Hub (nyu-mll/glue)\n"
                   "minibert: fetched cola/validation-00000-of-00001.parquet of CoLA from the "
                   "Hugging Face Hub (nyu-mll/glue)\n"
                   f"minibert: CoLA is in {cache / 'cola'}; later runs read it from there, "
                   "offline\n")
    assert same_examples(examples, load_examples("CoLA", "dev", data_dir=both_layouts[0]))
    monkeypatch.setattr(hub, "_download", lambda *a: pytest.fail("fetched again"))
    assert load_examples("CoLA", "train") == load_examples("CoLA", "train",
                                                           data_dir=both_layouts[1])
    assert capsys.readouterr().err == ""


def test_without_network_one_line_says_how_to_get_the_files(monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(FileNotFoundError) as error:
        load_examples("RTE", "dev")
    message = str(error.value)
    cache = hub.cache_folder()
    assert message.startswith("RTE: no data folder given, so there is nowhere to find RTE/dev.tsv "
                              "but the cache folder, and fetching rte/train-00000-of-00001.parquet "
                              "from the Hugging Face Hub failed (huggingface.co cannot be reached")
    assert (f"download rte/train-00000-of-00001.parquet, rte/validation-00000-of-00001.parquet "
            f"from https://huggingface.co/datasets/nyu-mll/glue into {cache / 'rte'}") in message
    assert "Set $GLUE_DIR, or give --data-dir" in message and "\n" not in message
    assert not (cache / "rte").exists() or not any((cache / "rte").iterdir())


def test_without_huggingface_hub_it_says_what_to_install(monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(FileNotFoundError, match=r"fetching it from the Hugging Face Hub "
                                                r"\(nyu-mll/glue\) needs huggingface_hub and "
                                                r"pyarrow: pip install 'minibert\[hub\]'"):
        load_examples("SST-2", "dev")


def test_the_command_line_without_data_or_network_exits_2_in_one_line(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    assert main(["train", "--task", "CoLA", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minibert train: error: --data-dir: CoLA: no data folder given")
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- the same run
@pytest.mark.slow
@pytest.mark.parametrize("name", ["CoLA", "RTE"])
def test_a_run_from_the_hub_layout_is_the_run_from_the_tsvs(both_layouts, tiny_model, tmp_path,
                                                            name):
    results = []
    for layout, folder in zip(("tsv", "hub"), both_layouts):
        out = tmp_path / layout
        assert main(["train", "--task", name, "--model", str(tiny_model), "--data-dir",
                     str(folder), "--epochs", "2", "--batch-size", "8", "--adapter-size", "4",
                     "--max-seq-length", "16", "--out", str(out)]) == 0
        results.append(without_timings(json.loads((out / "results.json").read_text()),
                                       also=("data_dir",)))
        results[-1]["settings"].pop("data_dir")
    assert results[0] == results[1]                       # metrics and losses, bit for bit
    assert results[0]["history"][-1]["train_loss"] > 0
