"""`minibert predict`: a trained adapter file (or another method's trained file) labels new
texts.

The input is a CSV, TSV or JSON Lines file read as own_data reads training files (the columns
the adapter file records, unless others are named); a label column is not needed. The output,
in the format given or else the one its extension names, holds one row per input row: every
column of the input as it was, then the predicted label and the probability of every label
(regression: the predicted value), under names that none of the input's columns has.
"""
import csv
import json
import os

import numpy as np

from .. import checks
from ..atomic import write_atomically
from ..named_models import DEFAULT_MODEL
from ..data import formats, own_data
from .evaluation import check, example_outputs, prepare, trained_data
from .settings import check_own_files, trained_file


def run_predict(adapters, input_file, output, model_name=DEFAULT_MODEL, columns=None,
                file_format=None, batch_size=32, max_seq_length=None, device=None,
                output_format=None):
    """Label every row of input_file with the base model + adapter file; write `output`
    atomically (max_seq_length None: the adapter file's, else 128; output_format None: from
    the output's extension). Returns {"output", "examples", "labels"}."""
    adapters = trained_file("adapters", adapters)
    columns = {setting: name for setting, name in (columns or {}).items()
               if setting != "label_column"}                  # no labels needed
    check_own_files({"input": input_file}, file_format, columns)     # the columns named now
    output = checks.output_file("output", output)
    if output.exists() and os.path.samefile(output, input_file):    # also through a link
        raise checks.BadValue("output", f"expected a file other than the input, found "
                                        f"{output}, which is {input_file}; choose another "
                                        "--output (predict never writes over its input)")
    output_format = check_output_format(output, output_format)
    max_seq_length, _ = check(None, None, model_name, adapters, None, batch_size, max_seq_length,
                              device)
    _, labels, columns = trained_data(adapters, columns)
    check_own_files({"input": input_file}, file_format,
                    {"text_column": columns.text, "text_pair_column": columns.text_pair})
    examples = own_data.read_unlabelled(input_file, file_format, columns)
    inputs = [row for _, row in formats.read_rows(input_file,
                                                  formats.format_of(input_file, file_format))]
    trained = prepare(model_name, adapters, device)
    outputs = example_outputs(trained.model, trained.head, trained.tokenizer, examples,
                              batch_size, max_seq_length)
    names = OutputNames(inputs, labels)
    rows = [names.row(row, out) for row, out in zip(inputs, outputs)]
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, lambda tmp: _write(tmp, rows, output_format, names))
    return {"output": str(output), "examples": len(rows), "labels": labels}


def check_output_format(output, output_format):
    """The output's format: the one given, else the one its extension names."""
    if output_format is not None:
        return checks.choice("output_format", output_format, sorted(set(formats.FORMATS.values())))
    try:
        return formats.format_of(output, option="--output-format")
    except ValueError as e:
        raise checks.BadValue("output", str(e)) from None


class OutputNames:
    """The names of what predict adds to each input row: "predicted_label" (regression:
    "predicted_value") and "probabilities" or, in a table, "p(LABEL)" per label; a name an
    input column already has gets "_" in front until it has none."""

    def __init__(self, inputs, labels):
        self.taken = {name for row in inputs for name in row}
        self.labels = labels
        self.prediction = self._free("predicted_value" if labels is None else "predicted_label")
        self.probabilities = self._free("probabilities")
        self.columns = {label: self._free(f"p({label})") for label in labels or ()}

    def _free(self, name):
        while name in self.taken:
            name = "_" + name
        return name

    def row(self, row, output):
        """The input row, then the prediction (and the probabilities, as a dict)."""
        if self.labels is None:
            return {**row, self.prediction: float(output)}
        probabilities = np.exp(output - output.max())
        probabilities /= probabilities.sum()
        return {**row, self.prediction: self.labels[int(np.argmax(output))],
                self.probabilities: {label: float(p)
                                     for label, p in zip(self.labels, probabilities)}}

    def flat(self, row):
        """A row for a table: the probabilities as a column per label."""
        if self.labels is None:
            return row
        return {**{k: v for k, v in row.items() if k != self.probabilities},
                **{self.columns[label]: p for label, p in row[self.probabilities].items()}}


def _write(path, rows, output_format, names):
    with open(path, "w", encoding="utf-8", newline="") as f:
        if output_format == "jsonl":
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            return
        flat = [names.flat(row) for row in rows]
        writer = csv.DictWriter(f, fieldnames=list(flat[0]),
                                delimiter="\t" if output_format == "tsv" else ",")
        writer.writeheader()
        writer.writerows(flat)
