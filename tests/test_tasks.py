"""Task readers on the real GLUE files and the TREC-6 wheel, every bad-input error on small
files written here, and the metrics against values worked out by hand."""
import collections
import dataclasses
import math
import zipfile

import numpy as np
import pytest
from scipy import stats

from minibert.data import tasks, wheels
from minibert.data.tasks import Example, compute_metrics, get_task, load_examples

from conftest import GLUE_DIR, needs_glue


def write(folder, relative_path, content):
    """A small data file under folder; text is written as UTF-8, bytes as they are."""
    path = folder / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------------------- specs
def test_specs():
    assert list(tasks.TASKS) == ["SST-2", "CoLA", "MRPC", "RTE", "STS-B", "QNLI", "QQP", "MNLI",
                                 "TREC-6", "SMS-spam", "CF-disasters", "CF-airline"]
    for task in tasks.TASKS.values():
        assert task.score in task.metrics and set(task.metrics) <= set(tasks.METRICS)
        assert task.eval_split in task.splits
        for split in task.splits:
            columns = task.columns_of(split)
            assert {task.label_column, *task.text_columns} <= set(columns)
    glue = ["SST-2", "CoLA", "MRPC", "RTE", "STS-B"]
    assert [get_task(name).num_columns for name in glue] == [2, 4, 5, 4, 10]
    assert get_task("MNLI").files["dev"] == "dev_matched.tsv"
    assert len(get_task("MNLI").columns_of("train")) == 12
    assert len(get_task("MNLI").columns_of("dev")) == 16
    assert get_task("STS-B").labels is None
    assert get_task("TREC-6").labels == ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
    assert get_task("TREC-6").eval_split == "test"
    assert {name: get_task(name).score for name in tasks.TASKS} == {
        "SST-2": "accuracy", "CoLA": "mcc", "MRPC": "f1", "RTE": "accuracy", "STS-B": "spearman",
        "QNLI": "accuracy", "QQP": "f1", "MNLI": "accuracy", "TREC-6": "accuracy",
        "SMS-spam": "accuracy", "CF-disasters": "accuracy", "CF-airline": "accuracy"}
    assert get_task(get_task("RTE")) is get_task("RTE")


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'sst2'; known tasks: SST-2, CoLA, MRPC, "
                                         "RTE, STS-B, QNLI, QQP, MNLI, TREC-6, SMS-spam, "
                                         "CF-disasters, CF-airline"):
        get_task("sst2")
    with pytest.raises(ValueError, match="unknown task"):
        load_examples("SST-5", "dev", data_dir=GLUE_DIR)


def test_unknown_split_lists_the_splits():
    with pytest.raises(ValueError, match="SST-2 has no split 'test'; its splits: train, dev"):
        load_examples("SST-2", "test", data_dir=GLUE_DIR)


# ---------------------------------------------------------------------------- real GLUE files
# sizes and label counts as published for GLUE (see shared/data/README.md)
GLUE_SPLITS = [
    ("SST-2", "train", 67349, {"1": 37569, "0": 29780}),
    ("SST-2", "dev", 872, {"1": 444, "0": 428}),
    ("CoLA", "train", 8551, {"1": 6023, "0": 2528}),
    ("CoLA", "dev", 1043, {"1": 721, "0": 322}),
    ("MRPC", "train", 3668, {"1": 2474, "0": 1194}),
    ("MRPC", "dev", 408, {"1": 279, "0": 129}),
    ("RTE", "train", 2490, {"entailment": 1249, "not_entailment": 1241}),
    ("RTE", "dev", 277, {"entailment": 146, "not_entailment": 131}),
    ("STS-B", "train", 5749, None),
    ("STS-B", "dev", 1500, None),
]


@needs_glue
@pytest.mark.parametrize("name, split, size, label_counts", GLUE_SPLITS)
def test_glue_sizes_and_labels(name, split, size, label_counts):
    task = get_task(name)
    examples = load_examples(name, split, data_dir=GLUE_DIR)
    assert len(examples) == size
    if label_counts is None:                                  # STS-B: scores from 0 to 5
        scores = [e.label for e in examples]
        assert all(isinstance(s, float) for s in scores) and min(scores) == 0 and max(scores) == 5
    else:
        assert collections.Counter(task.labels[e.label] for e in examples) == label_counts
    pairs = len(task.text_columns) == 2
    assert all(e.text_a and (e.text_b is not None) == pairs for e in examples)


@needs_glue
@pytest.mark.parametrize("name, first", [
    # text kept as written: SST-2's trailing space, MRPC's unmatched literal quote
    ("SST-2", Example("it 's a charming and often affecting journey . ", None, 1, 2)),
    ("CoLA", Example("The sailors rode the breeze clear of the rocks.", None, 1, 1)),   # no header
    ("MRPC", Example("He said the foodservice pie business doesn't fit the company's long-term "
                     "growth strategy.",
                     '"The foodservice pie business does not fit our long-term growth strategy.',
                     1, 2)),
    ("RTE", Example("Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer "
                    "at age 44, according to the Christopher Reeve Foundation.",
                    "Christopher Reeve had an accident.", 1, 2)),        # 1: not_entailment
    ("STS-B", Example("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.",
                      5.0, 2)),
])
def test_glue_dev_first_rows(name, first):
    assert load_examples(name, "dev", data_dir=GLUE_DIR, max_examples=1) == [first]


@needs_glue
def test_glue_dir_from_the_environment_and_max_examples(monkeypatch):
    monkeypatch.setenv("GLUE_DIR", GLUE_DIR)
    examples = load_examples("CoLA", "dev")
    assert len(examples) == 1043
    assert load_examples("CoLA", "dev", max_examples=5) == examples[:5]      # file order
    assert load_examples("CoLA", "dev", max_examples=0) == []


# ---------------------------------------------------------------------------- other GLUE layouts
def test_qnli_qqp_mnli_standard_files(tmp_path):
    write(tmp_path, "QNLI/dev.tsv", "index\tquestion\tsentence\tlabel\n"
          "0\tWhat came into force?\tThe new constitution came into force.\tentailment\n")
    write(tmp_path, "QQP/train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
          '7\t15\t16\tHow do I "read" faster?\tHow can I read faster?\t1\n')
    parse = "\t( ( a ) b )\t( ( c ) d )\t(ROOT (S a b))\t(ROOT (S c d))\t"
    write(tmp_path, "MNLI/train.tsv", "\t".join(tasks._MNLI_COLUMNS) + "\tlabel1\tgold_label\n"
          f"0\t31193\t31193n\tgovernment{parse}a b\tc d\tneutral\tneutral\n")
    write(tmp_path, "MNLI/dev_matched.tsv", "\t".join(tasks._MNLI_DEV_COLUMNS) + "\n"
          f"0\t63735\t63735n\tslate{parse}The new rights are nice enough\tEveryone really likes "
          "the newest benefits\tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n")
    assert load_examples("QNLI", "dev", data_dir=tmp_path) == [
        Example("What came into force?", "The new constitution came into force.", 0, 2)]
    assert load_examples("QQP", "train", data_dir=tmp_path) == [
        Example('How do I "read" faster?', "How can I read faster?", 1, 2)]
    assert load_examples("MNLI", "train", data_dir=tmp_path) == [Example("a b", "c d", 2, 2)]
    assert load_examples("MNLI", "dev", data_dir=tmp_path) == [
        Example("The new rights are nice enough", "Everyone really likes the newest benefits",
                2, 2)]


# ---------------------------------------------------------------------------- bad input
def test_missing_data_folder_says_where_and_how(tmp_path):
    missing = tmp_path / "glue"
    with pytest.raises(FileNotFoundError) as error:
        load_examples("SST-2", "dev", data_dir=missing)
    message = str(error.value)
    assert str(missing / "SST-2" / "dev.tsv") in message
    assert "$GLUE_DIR" in message and "--data-dir" in message and "GLUE download script" in message


def test_missing_file_in_glue_dir(tmp_path, monkeypatch):
    write(tmp_path, "MNLI/train.tsv", "")
    monkeypatch.setenv("GLUE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"dev_matched\.tsv: no such file.*\$GLUE_DIR"):
        load_examples("MNLI", "dev")


def test_no_data_folder_at_all(monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=r"RTE: no data folder given.*RTE/dev\.tsv.*"
                                                r"\$GLUE_DIR, or give --data-dir"):
        load_examples("RTE", "dev")


def test_row_with_too_few_columns(tmp_path):
    path = write(tmp_path, "RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n"
                 "0\tA man sleeps.\tA man rests.\tentailment\n"
                 "1\tA dog barks.\tnot_entailment\n")
    with pytest.raises(ValueError) as error:
        load_examples("RTE", "dev", data_dir=tmp_path)
    assert str(error.value).startswith(f"{path}, line 3: expected 4 columns")
    assert str(error.value).endswith("found 3")


def test_label_outside_the_label_set(tmp_path):
    path = write(tmp_path, "SST-2/dev.tsv", "sentence\tlabel\ngood film\t1\nfine film\t2\n")
    with pytest.raises(ValueError) as error:
        load_examples("SST-2", "dev", data_dir=tmp_path)
    assert str(error.value) == f"{path}, line 3: label '2' is not one of ['0', '1']"


def test_similarity_score_that_is_not_a_number(tmp_path):
    header = "\t".join(get_task("STS-B").columns)
    path = write(tmp_path, "STS-B/dev.tsv", f"{header}\n0\tg\tf\ty\t0\tn\tn\tA.\tB.\tfive\n")
    with pytest.raises(ValueError, match=f"{path}, line 2: expected a similarity score .*'five'"):
        load_examples("STS-B", "dev", data_dir=tmp_path)


def test_wrong_header(tmp_path):
    path = write(tmp_path, "SST-2/train.tsv", "text\tlabel\ngood film\t1\n")
    with pytest.raises(ValueError) as error:
        load_examples("SST-2", "train", data_dir=tmp_path)
    assert str(error.value) == (f"{path}, line 1: expected the SST-2 header ['sentence', 'label'], "
                                f"found ['text', 'label']")


def test_mrpc_header_with_and_without_bom(tmp_path):
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    row = "1\t1\t2\tA.\tB.\n"
    write(tmp_path, "MRPC/train.tsv", "\ufeff" + header + row)
    write(tmp_path, "MRPC/dev.tsv", header + row)
    assert load_examples("MRPC", "train", data_dir=tmp_path) == [Example("A.", "B.", 1, 2)]
    assert load_examples("MRPC", "dev", data_dir=tmp_path) == [Example("A.", "B.", 1, 2)]


def test_invalid_utf8(tmp_path):
    path = write(tmp_path, "CoLA/dev.tsv", b"gj04\t1\t\tFine.\ngj04\t1\t\tCaf\xe9 au lait.\n")
    with pytest.raises(ValueError, match=f"{path}, line 2: not valid UTF-8"):
        load_examples("CoLA", "dev", data_dir=tmp_path)


def test_empty_file(tmp_path):
    write(tmp_path, "CoLA/dev.tsv", "")
    write(tmp_path, "SST-2/dev.tsv", "")
    with pytest.raises(ValueError, match="no examples"):
        load_examples("CoLA", "dev", data_dir=tmp_path)
    with pytest.raises(ValueError, match="header .* found an empty file"):
        load_examples("SST-2", "dev", data_dir=tmp_path)


# ---------------------------------------------------------------------------- TREC-6
def test_trec6_official_split():
    """Reads the real wheel (downloaded once into the cache folder on a fresh machine)."""
    names = get_task("TREC-6").labels
    train, test = load_examples("TREC-6", "train"), load_examples("TREC-6", "test")
    # Li & Roth (2002): 5,452 / 500 questions; class sizes as published
    assert collections.Counter(names[e.label] for e in train) == {
        "ENTY": 1250, "HUM": 1223, "DESC": 1162, "NUM": 896, "LOC": 835, "ABBR": 86}
    assert collections.Counter(names[e.label] for e in test) == {
        "DESC": 138, "NUM": 113, "ENTY": 94, "LOC": 81, "HUM": 65, "ABBR": 9}
    assert train[0] == Example("How did serfdom develop in and then leave Russia ?", None, 0, 2)
    assert test[0] == Example("How far is it from Denver to Aspen ?", None, 4, 5454)   # NUM
    assert test[-1] == Example("What is e-coli ?", None, 0, 5953)                       # DESC
    assert load_examples("TREC-6", "test", max_examples=3) == test[:3]


def fake_wheel(folder, monkeypatch, name, csv_text):
    """A wheel in the cache folder (folder) holding csv_text where task `name` reads its CSV,
    with the task told to expect this wheel's checksum. Returns how messages name the CSV."""
    monkeypatch.setenv("MINIBERT_CACHE", str(folder))
    task = get_task(name)
    path = folder / task.source.wheel.filename
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(task.source.member, csv_text)
    wheel = dataclasses.replace(task.source.wheel, sha256=wheels.sha256_of(path))
    monkeypatch.setitem(tasks.TASKS, name, dataclasses.replace(
        task, source=dataclasses.replace(task.source, wheel=wheel)))
    return f"{path}/{task.source.member}"


def trec_csv(rows):
    """trec.csv's text with the given (coarse id, text) rows."""
    return ",label-coarse,label-fine,text\n" + "".join(
        f"{i},{label},0,{text}\n" for i, (label, text) in enumerate(rows))


def test_trec6_checks_counts_and_label_ids(tmp_path, monkeypatch):
    path = fake_wheel(tmp_path, monkeypatch, "TREC-6",
                      trec_csv([(0, "What is a fake ?"), (4, "How many ?")]))
    with pytest.raises(ValueError) as error:
        load_examples("TREC-6", "train")
    assert str(error.value) == f"{path}: expected 5952 rows, found 2"
    path = fake_wheel(tmp_path, monkeypatch, "TREC-6",
                      trec_csv([(0, "What is a fake ?"), (7, "Who is seven ?")]))
    with pytest.raises(ValueError) as error:
        load_examples("TREC-6", "test")
    assert str(error.value) == (f"{path}, line 3: label '7' is not one of "
                                f"['0', '1', '2', '3', '4', '5']")


# ---------------------------------------------------------------------------- Table 2 tasks
# Houlsby et al. (2019), Table 2; sizes and class counts as the wheels hold them
TABLE2 = [
    ("SMS-spam", {"ham": 4199, "spam": 638}),
    ("CF-disasters", {"not-disaster": 4342, "disaster": 3271}),
    ("CF-airline", {"negative": 9178, "neutral": 3099, "positive": 2363}),
]


@pytest.mark.parametrize("name, class_counts", TABLE2)
def test_table2_tasks_are_split_80_10_10_by_class(name, class_counts):
    """Reads the real wheels (downloaded once into the cache folder on a fresh machine)."""
    task = get_task(name)
    parts = {split: load_examples(name, split) for split in ("train", "dev", "test")}
    everything = [e for part in parts.values() for e in part]
    assert len({e.line for e in everything}) == len(everything) == sum(class_counts.values())
    assert collections.Counter(task.labels[e.label] for e in everything) == class_counts
    for split, share in (("dev", 0.1), ("test", 0.1)):
        assert collections.Counter(task.labels[e.label] for e in parts[split]) == {
            label: round(count * share) for label, count in class_counts.items()}
    assert task.eval_split == "test" and task.score == "accuracy"
    assert load_examples(name, "train", max_examples=100) == parts["train"][:100]


def test_table2_first_rows_of_the_split():
    assert load_examples("SMS-spam", "test", max_examples=1) == [Example(
        "Are you unique enough? Find out from 30th August. www.areyouunique.co.uk", None, 1, 193)]
    assert load_examples("CF-airline", "dev", max_examples=1) == [Example(
        "@VirginAmerica Thank you for the follow", None, 2, 31711)]


def test_a_wheel_task_counts_its_rows_after_keeping_those_it_keeps(tmp_path, monkeypatch):
    path = fake_wheel(tmp_path, monkeypatch, "CF-airline",
                      "sentiment,confidence,text\r\n"
                      "negative,1.0,@united lost my bag\r\n"
                      "positive,0.9,self-driving cars are great\r\n")
    with pytest.raises(ValueError) as error:
        load_examples("CF-airline", "train")
    assert str(error.value) == (f"{path}: expected 14640 rows whose text matches "
                                f"{tasks.AIRLINE_HANDLES!r}, found 1")


# ---------------------------------------------------------------------------- metrics
# a 2x2 confusion worked out by hand: TP 3, FN 1, FP 2, TN 4
LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
PREDICTIONS = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]


def test_accuracy_f1_mcc_by_hand():
    assert compute_metrics("SST-2", PREDICTIONS, LABELS) == {"accuracy": 0.7, "score": 0.7}
    f1 = 2 * 3 / (2 * 3 + 2 + 1)                                        # 2TP / (2TP + FP + FN)
    assert compute_metrics("MRPC", PREDICTIONS, LABELS) == pytest.approx(
        {"f1": f1, "accuracy": 0.7, "score": f1})
    mcc = (3 * 4 - 2 * 1) / math.sqrt((3 + 2) * (3 + 1) * (4 + 2) * (4 + 1))   # = 10 / sqrt(600)
    assert compute_metrics("CoLA", PREDICTIONS, LABELS) == pytest.approx({"mcc": mcc, "score": mcc})
    assert mcc == pytest.approx(0.4082482904638631)


def test_metric_edge_cases():
    labels = np.array(LABELS)
    assert tasks.matthews_corrcoef(labels, labels) == 1.0
    assert tasks.matthews_corrcoef(1 - labels, labels) == -1.0
    assert tasks.matthews_corrcoef(np.ones(10), labels) == 0.0            # majority-class collapse
    assert tasks.f1(np.zeros(10), labels) == 0.0                          # positive never predicted
    assert compute_metrics("TREC-6", [0, 5, 3, 3], [0, 5, 2, 3])["score"] == 0.75


def test_pearson_spearman_by_hand():
    # x - mean = (-1, 0, 1), y - mean = (-1, 1, 0): r = 1 / sqrt(2 * 2); ranks equal the values
    assert compute_metrics("STS-B", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(
        {"spearman": 0.5, "pearson": 0.5, "score": 0.5})
    # monotone but not linear: Spearman 1, Pearson 25 / sqrt(5 * 129)
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0]
    assert tasks.spearman(np.array(x), np.array(y)) == pytest.approx(1.0)
    assert tasks.pearson(np.array(x), np.array(y)) == pytest.approx(25 / math.sqrt(645))
    assert tasks.pearson(np.full(3, 2.5), np.array([1.0, 2.0, 4.0])) == 0.0   # constant prediction


def test_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    predictions = rng.normal(size=50).round(1)                             # rounding makes ties
    labels = rng.integers(0, 6, size=50).astype(float)
    metrics = compute_metrics("STS-B", predictions, labels)
    assert metrics["pearson"] == pytest.approx(stats.pearsonr(predictions, labels)[0])
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(predictions, labels)[0])


def test_metrics_need_one_prediction_per_label():
    with pytest.raises(ValueError, match=r"SST-2: expected one prediction per label, found "
                                         r"predictions of shape \(3,\) and labels of shape \(4,\)"):
        compute_metrics("SST-2", [0, 1, 1], [0, 1, 1, 0])
    with pytest.raises(ValueError, match="one prediction per label"):
        compute_metrics("SST-2", [[0.2, 0.8]], [1])                        # logits, not class ids


def test_a_wheel_task_is_read_once_per_process_and_again_when_its_wheel_changes(tmp_path,
                                                                                 monkeypatch):
    rows = [(i % 6, f"Question {i} ?") for i in range(5952)]
    fake_wheel(tmp_path, monkeypatch, "TREC-6", trec_csv(rows))
    fetched = []
    fetch = wheels.fetch
    monkeypatch.setattr(wheels, "fetch", lambda *a: fetched.append(a) or fetch(*a))
    first = load_examples("TREC-6", "test")
    assert load_examples("TREC-6", "train")[0] == Example("Question 0 ?", None, 0, 2)
    assert load_examples("TREC-6", "test") == first and len(fetched) == 1   # checked and parsed once
    fake_wheel(tmp_path, monkeypatch, "TREC-6", trec_csv([(5, "Changed ?")] + rows[1:]))
    assert load_examples("TREC-6", "train")[0] == Example("Changed ?", None, 5, 2)
    assert len(fetched) == 2
