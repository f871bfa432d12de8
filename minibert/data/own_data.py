"""Your own data: labelled texts in CSV, TSV or JSON Lines files become a task.

One column holds the text (and another, optionally, a second text: a sentence pair), one the
label. The labels are the training file's distinct values, sorted (as numbers when they all are
numbers); dev and test labels must be among them. With `regression` the label column holds
numbers and the task is scored as STS-B is (Spearman, Pearson beside it).

Every bad row is refused with the file, the line and the column: a missing column, an empty
text, a text that is not a string, a label of another kind than the file's first (a word among
numbers, a JSON string among JSON numbers), a dev or test label the training file never had. A
file with no data rows, and a training file with one label only, are refused too.
"""
import dataclasses
import math

from .formats import format_of, read_rows
from .tasks import Example, Task


@dataclasses.dataclass(frozen=True)
class Columns:
    """Which columns of the files hold what (label None: files to predict, without labels)."""
    text: str = "text"
    label: str | None = "label"
    text_pair: str | None = None

    @property
    def texts(self):
        return (self.text,) if self.text_pair is None else (self.text, self.text_pair)

    def by_setting(self):
        """{setting: column}, as the settings and options name them (text_column, ...)."""
        return {"text_column": self.text, "text_pair_column": self.text_pair,
                "label_column": self.label}


def make_task(name, labels, columns, eval_split="dev"):
    """The Task of your data: labels (sorted label strings), or None for regression."""
    regression = labels is None
    return Task(name, None, None if regression else tuple(labels), (), columns.texts,
                columns.label, metrics=("spearman", "pearson") if regression else ("accuracy",),
                score="spearman" if regression else "accuracy", eval_split=eval_split)


def load_training_data(files, columns, regression=False, file_format=None):
    """(Task, {split: examples}) from files {"train": path, "dev": path, "test": path (or
    absent)}: labels from the training file, the others checked against them."""
    train = read_labelled(files["train"], file_format, columns, regression)
    labels = None if regression else sorted_labels(train, files["train"], columns)
    task = make_task(str(files["train"]), labels, columns)
    examples = {"train": label_ids(train, labels)}
    for split in [s for s in files if s != "train"]:
        rows = read_labelled(files[split], file_format, columns, regression)
        examples[split] = label_ids(rows, labels, files[split], files["train"], columns)
    return task, examples


def read_labelled(path, file_format, columns, regression):
    """Examples of a file whose label is still as written (a string, or a number with
    regression); at least one."""
    examples, first_kind = [], None
    file_format = format_of(path, file_format)
    for line, row in read_rows(path, file_format):
        texts = [_text(row, path, line, column) for column in columns.texts]
        value = _cell(row, path, line, columns.label)
        if regression:
            label = _number(value, path, line, columns.label)
        else:
            label, kind = _label(value, file_format == "jsonl")
            first_kind = first_kind or (kind, line, label)
            if kind != first_kind[0]:
                raise ValueError(f"{path}, line {line}, column {columns.label!r}: label {label!r} "
                                 f"is {kind}, but line {first_kind[1]}'s label "
                                 f"{first_kind[2]!r} is {first_kind[0]}: one kind of label per "
                                 "file")
        examples.append(Example(texts[0], texts[1] if len(texts) == 2 else None, label, line))
    if not examples:
        raise ValueError(f"{path}: no examples (the file has no data rows)")
    if not regression:
        check_labels(examples, path, columns)
    return examples


def check_labels(examples, path, columns):
    """Labels mean what their writer meant: none empty, none with spaces around it (that would
    be another class), no two that differ only in case. The first problem is named, with its
    lines."""
    where = f"column {columns.label!r}"
    empty = [e.line for e in examples if e.label == ""]
    if empty:
        raise ValueError(f"{path}, {_lines(empty)}, {where}: the label is empty; give every "
                         "row a label (a text holding the separator must be quoted)")
    padded = [e for e in examples if e.label != e.label.strip()]
    if padded and len(padded) == len(examples) and all(e.label[0] == " " for e in padded):
        raise ValueError(f"{path}, {where}: every label begins with a space (line "
                         f"{padded[0].line}: {padded[0].label!r}), as in a file written "
                         "'text, label'; write the separator without a space after it")
    if padded:
        e = padded[0]
        raise ValueError(f"{path}, {_lines([e.line for e in padded])}, {where}: label "
                         f"{e.label!r} has spaces around it (labels are matched exactly: "
                         f"{e.label!r} is not {e.label.strip()!r}); remove them")
    first = {}
    for e in examples:
        other = first.setdefault(e.label.casefold(), e)
        if other.label != e.label:
            raise ValueError(f"{path}, {where}: labels {other.label!r} (line {other.line}) and "
                             f"{e.label!r} (line {e.line}) differ only in case and would be two "
                             "classes; write them one way")


def _lines(lines, shown=5):
    """"line 4", or "lines 4, 9, 12 (and 3 more)"."""
    if len(lines) == 1:
        return f"line {lines[0]}"
    more = f" (and {len(lines) - shown} more)" if len(lines) > shown else ""
    return f"lines {', '.join(map(str, lines[:shown]))}{more}"


def read_unlabelled(path, file_format, columns):
    """Examples of a file to predict (label None); at least one."""
    examples = []
    for line, row in read_rows(path, format_of(path, file_format)):
        texts = [_text(row, path, line, column) for column in columns.texts]
        examples.append(Example(texts[0], texts[1] if len(texts) == 2 else None, None, line))
    if not examples:
        raise ValueError(f"{path}: no examples (the file has no data rows)")
    return examples


def sorted_labels(examples, path, columns):
    """The distinct labels of a training file, sorted (numerically when they are numbers); two
    at least."""
    labels = {e.label for e in examples}
    if len(labels) < 2:
        raise ValueError(f"{path}, column {columns.label!r}: every example has the label "
                         f"{labels.pop()!r}; a classifier needs two labels at least (for numbers "
                         f"to predict, use --regression)")
    numeric = all(_is_number(label) for label in labels)
    return sorted(labels, key=float if numeric else None)


def label_ids(examples, labels, path=None, train_path=None, columns=None):
    """The examples with each label replaced by its id in `labels` (None: regression, as is)."""
    if labels is None:
        return examples
    ids = {label: i for i, label in enumerate(labels)}
    for e in examples:
        if e.label not in ids:
            raise ValueError(f"{path}, line {e.line}, column {columns.label!r}: label {e.label!r} "
                             f"is not among the labels of the training file {train_path} "
                             f"({', '.join(map(repr, labels))})")
    return [dataclasses.replace(e, label=ids[e.label]) for e in examples]


def _cell(row, path, line, column):
    if column not in row:
        raise ValueError(f"{path}, line {line}: no column {column!r} (the row has "
                         f"{', '.join(map(repr, row))})")
    return row[column]


def _text(row, path, line, column):
    value = _cell(row, path, line, column)
    if not isinstance(value, str):
        raise ValueError(f"{path}, line {line}, column {column!r}: expected a text (a string), "
                         f"found {_json_kind(value)} {value!r}")
    if not value.strip():
        raise ValueError(f"{path}, line {line}, column {column!r}: empty text")
    return value


def _label(value, from_json):
    """(the label as a string, its kind): CSV and TSV cells are numbers or words; JSON values
    keep their JSON type."""
    if isinstance(value, str) and not from_json:
        return value, "a number" if _is_number(value) else "a word"
    if isinstance(value, (dict, list)) or value is None:
        return repr(value), _json_kind(value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text, _json_kind(value)


def _json_kind(value):
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    return {str: "a JSON string", dict: "a JSON object", list: "a JSON list"}.get(
        type(value), "JSON null")


def _is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number(value, path, line, column):
    if isinstance(value, str) and _is_number(value):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{path}, line {line}, column {column!r}: expected a number (--regression), "
                     f"found {value!r}")
