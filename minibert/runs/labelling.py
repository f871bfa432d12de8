"""`minibert predict`: a trained adapter file (or another method's trained file) labels new
texts.

The input is a CSV, TSV or JSON Lines file read as own_data reads training files (the columns
the adapter file records, unless others are named); a label column is not needed. The output,
in the format its extension names, holds one row per input row: the input's line, the text(s),
the predicted label and the probability of every label (regression: the predicted value).
"""
import csv
import json

import numpy as np

from .. import checks
from ..atomic import write_atomically
from ..named_models import DEFAULT_MODEL
from ..data import formats, own_data
from .evaluation import check, example_outputs, prepare, trained_data
from .settings import check_own_files


def run_predict(adapters, input_file, output, model_name=DEFAULT_MODEL, columns=None,
                file_format=None, batch_size=32, max_seq_length=None, device=None):
    """Label every row of input_file with the base model + adapter file; write `output`
    atomically (max_seq_length None: 128). Returns {"output", "examples", "labels"}."""
    columns = {setting: name for setting, name in (columns or {}).items()
               if setting != "label_column"}                  # no labels needed
    check_own_files({"input": input_file}, file_format, columns)     # the columns named now
    output = checks.output_file("output", output)
    try:
        output_format = formats.format_of(output)
    except ValueError as e:
        raise checks.BadValue("output", str(e).partition(" (--file-format")[0]) from None
    max_seq_length, _ = check(None, None, model_name, adapters, None, batch_size, max_seq_length,
                              device)
    _, labels, columns = trained_data(adapters, columns)
    check_own_files({"input": input_file}, file_format,
                    {"text_column": columns.text, "text_pair_column": columns.text_pair})
    examples = own_data.read_unlabelled(input_file, file_format, columns)
    trained = prepare(model_name, adapters, device)
    outputs = example_outputs(trained.model, trained.head, trained.tokenizer, examples,
                              batch_size, max_seq_length)
    rows = [_row(e, columns, labels, out) for e, out in zip(examples, outputs)]
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, lambda tmp: _write(tmp, rows, output_format))
    return {"output": str(output), "examples": len(rows), "labels": labels}


def _row(example, columns, labels, output):
    """One output row: line, text(s), then the label and its probabilities (or the value)."""
    row = {"line": example.line, columns.text: example.text_a}
    if columns.text_pair is not None:
        row[columns.text_pair] = example.text_b
    if labels is None:
        return {**row, "value": float(output)}
    probabilities = np.exp(output - output.max())
    probabilities /= probabilities.sum()
    return {**row, "label": labels[int(np.argmax(output))],
            "probabilities": {label: float(p) for label, p in zip(labels, probabilities)}}


def _write(path, rows, output_format):
    with open(path, "w", encoding="utf-8", newline="") as f:
        if output_format == "jsonl":
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            return
        flat = [{**{k: v for k, v in row.items() if k != "probabilities"},
                 **{f"p({label})": p for label, p in row.get("probabilities", {}).items()}}
                for row in rows]
        writer = csv.DictWriter(f, fieldnames=list(flat[0]),
                                delimiter="\t" if output_format == "tsv" else ",")
        writer.writeheader()
        writer.writerows(flat)
