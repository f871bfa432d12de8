"""A small GLUE-shaped data folder, for the tests that run GLUE tasks where the real files are
not at hand; and GLUE's TSVs rewritten as the Hugging Face Hub holds them (nyu-mll/glue's
parquet files), for the tests of that layout.

The fixture's files have the official download script's names, headers and columns (CoLA with
none, MRPC with its byte-order mark), and sentences whose label follows from their words, so that
a run has something to learn. They are made from a seed: the same files every time.
"""
import csv
import random
from pathlib import Path

GOOD = ["good", "fine", "great", "warm", "bright", "clever", "kind", "happy"]
BAD = ["bad", "dull", "poor", "cold", "grim", "tired", "sad", "weak"]
NOUNS = ["film", "story", "actor", "plot", "song", "scene", "book", "team", "city", "dog"]
TASKS = ("SST-2", "CoLA", "MRPC", "RTE", "STS-B")
SIZES = {"train": 64, "dev": 40}


def _sentence(rng, words):
    return f"the {rng.choice(NOUNS)} was {rng.choice(words)} and {rng.choice(words)} ."


def _rows(task, split, rng):
    """(header or None, rows) of one file."""
    rows = []
    for i in range(SIZES[split]):
        label = rng.randrange(2)
        words = GOOD if label else BAD
        a, b = _sentence(rng, words), _sentence(rng, words if rng.random() < 0.8 else GOOD + BAD)
        if task == "SST-2":
            rows.append([a + " ", str(label)])
        elif task == "CoLA":
            scrambled = " ".join(rng.sample(a.split()[:-1], 6)) + " ."     # unacceptable: word salad
            rows.append(["gj04", str(label), "" if label else "*", a if label else scrambled])
        elif task == "MRPC":
            rows.append([str(label), str(1000 + i), str(2000 + i), a, b])
        elif task == "RTE":
            rows.append([str(i), a, b, "entailment" if label else "not_entailment"])
        elif task == "STS-B":
            score = f"{rng.randrange(0, 5001) / 1000:.3f}"
            rows.append([str(i), "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none",
                         a, b, score])
    header = {"SST-2": ["sentence", "label"], "CoLA": None,
              "MRPC": ["\ufeffQuality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
              "RTE": ["index", "sentence1", "sentence2", "label"],
              "STS-B": ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                        "sentence1", "sentence2", "score"]}[task]
    return header, rows


def write_glue(folder):
    """SST-2, CoLA, MRPC, RTE and STS-B, train.tsv and dev.tsv each, under folder; -> folder."""
    folder = Path(folder)
    rng = random.Random(0)
    for task in TASKS:
        (folder / task).mkdir(parents=True, exist_ok=True)
        for split in SIZES:
            header, rows = _rows(task, split, rng)
            lines = ([header] if header else []) + rows
            (folder / task / f"{split}.tsv").write_text(
                "".join("\t".join(row) + "\n" for row in lines), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------- the Hub's layout
# task: (its folder on the Hub, TSV column -> Hub column, the label's TSV column, label -> id)
HUB = {
    "SST-2": ("sst2", {"sentence": "sentence"}, "label", {"0": 0, "1": 1}),
    "CoLA": ("cola", {3: "sentence"}, 1, {"0": 0, "1": 1}),
    "MRPC": ("mrpc", {"#1 String": "sentence1", "#2 String": "sentence2"}, "Quality",
             {"0": 0, "1": 1}),
    "RTE": ("rte", {"sentence1": "sentence1", "sentence2": "sentence2"}, "label",
            {"entailment": 0, "not_entailment": 1}),
    "STS-B": ("stsb", {"sentence1": "sentence1", "sentence2": "sentence2"}, "score", float),
}


def _read_tsv(path, has_header):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not has_header:
        return [dict(enumerate(row)) for row in rows]
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def write_hub_layout(tsv_folder, folder, tasks=TASKS):
    """The tasks' train.tsv and dev.tsv under tsv_folder written as nyu-mll/glue's parquet files
    under folder (a folder per task; train, validation and a test file whose labels are -1, as
    the Hub's are), with the Hub's columns and types; -> folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = Path(folder)
    for task in tasks:
        name, texts, label_column, label_of = HUB[task]
        (folder / name).mkdir(parents=True, exist_ok=True)
        for split, hub_split in (("train", "train"), ("dev", "validation"), ("dev", "test")):
            rows = _read_tsv(Path(tsv_folder) / task / f"{split}.tsv", task != "CoLA")
            columns = {hub: pa.array([row[tsv] for row in rows], pa.string())
                       for tsv, hub in texts.items()}
            if hub_split == "test":
                labels = [-1 if label_of is not float else -1.0] * len(rows)
            elif label_of is float:
                labels = [float(row[label_column]) for row in rows]
            else:
                labels = [label_of[row[label_column]] for row in rows]
            columns["label"] = pa.array(labels, pa.float32() if label_of is float else pa.int64())
            columns["idx"] = pa.array(range(len(rows)), pa.int32())
            pq.write_table(pa.table(columns), folder / name / f"{hub_split}-00000-of-00001.parquet")
    return folder
