"""GLUE as the Hugging Face Hub holds it: the dataset nyu-mll/glue, a folder per task (``cola/``,
``sst2/``, ``mrpc/``, ``qqp/``, ``stsb/``, ``mnli/``, ``qnli/``, ``rte/``, ``wnli/``) of parquet
files, ``train-00000-of-00001.parquet`` and ``validation-00000-of-00001.parquet`` (MNLI:
``validation_matched-...`` and ``validation_mismatched-...``), with the Hub's column names and
integer labels (test files: -1, never read).

A data folder in this layout is read as one of the official download script's TSVs is
(minibert.data.tasks). With no data folder at all, a task's files are fetched once from the Hub
with huggingface_hub (the ``hub`` extra, with pyarrow) into ``$MINIBERT_CACHE/glue``, a data
folder of this layout, and read from there, offline, ever after.
"""
import dataclasses
import socket
import sys
import urllib.parse
from types import MappingProxyType

import numpy as np

from ..cache import cache_dir

REPO = "nyu-mll/glue"
PAGE = f"https://huggingface.co/datasets/{REPO}"
INSTALL = "pip install 'minibert[hub]'"
LABEL_COLUMN = "label"     # every task's, on the Hub


def shard(split):
    """The file name of a split's one shard, as the Hub names it."""
    return f"{split}-00000-of-00001.parquet"


@dataclasses.dataclass(frozen=True)
class HubLayout:
    """Where a task is in nyu-mll/glue and what its columns are called there."""
    folder: str                        # "cola", "sst2", ...
    text_columns: tuple[str, ...]      # the column of text_a, and of text_b for sentence pairs
    labels: tuple[str, ...] | None = None   # the task's label names in the Hub's id order;
                                            # None: the task's own order (or regression)
    files: MappingProxyType = dataclasses.field(          # split -> file name in the folder
        default_factory=lambda: MappingProxyType({"train": shard("train"),
                                                  "dev": shard("validation")}))


def cache_folder():
    """The data folder that fetched tasks are kept in: $MINIBERT_CACHE/glue."""
    return cache_dir() / "glue"


def read_columns(path, columns):
    """{column: list of values} of a parquet file; ValueError naming the file and the column when
    one is missing, FileNotFoundError saying what to install without pyarrow. A float32 column
    (STS-B's score on the Hub) gives each value as the shortest decimal that rounds to it, the
    number a TSV of the same data holds (3.8, not 3.799999952316284)."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise FileNotFoundError(f"{path}: reading parquet files needs pyarrow: {INSTALL}, or "
                                f"pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except (OSError, pyarrow.ArrowException) as e:
        raise ValueError(f"{path}: not a readable parquet file ({e})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: expected the columns {list(columns)} of {REPO}, found "
                         f"{table.column_names} (no {missing[0]!r})")
    values = {}
    for c in columns:
        values[c] = table.column(c).to_pylist()
        if table.schema.field(c).type == pyarrow.float32():
            values[c] = [v if v is None else float(str(np.float32(v))) for v in values[c]]
    return values


def fetched_file(layout, split, task_name):
    """The path of a split's file in the cache folder; every split of the task is fetched from
    the Hub first when this one is not there."""
    folder = cache_folder()
    path = folder / layout.folder / layout.files[split]
    if not path.is_file():
        _fetch(layout, task_name, folder)
    return path


def _fetch(layout, task_name, folder):
    """Every file of the task from the Hub into folder; FileNotFoundError saying why not (the
    start of a sentence that the caller completes with where else the data can come from)."""
    names = [f"{layout.folder}/{name}" for name in layout.files.values()]
    try:
        import huggingface_hub  # noqa: F401  (only to say what to install when it is absent)
        import pyarrow  # noqa: F401
    except ImportError:
        raise FileNotFoundError(f"fetching it from the Hugging Face Hub ({REPO}) needs "
                                f"huggingface_hub and pyarrow: {INSTALL}") from None
    for name in names:
        try:
            _download(name, folder)
        except Exception as e:        # no network, the Hub down, an offline setting: all alike
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FileNotFoundError(
                f"fetching {name} from the Hugging Face Hub failed ({reason}); with network, "
                f"run again; without, download {', '.join(names)} from {PAGE} into "
                f"{folder / layout.folder}") from None
        print(f"minibert: fetched {name} of {task_name} from the Hugging Face Hub ({REPO})",
              file=sys.stderr)
    print(f"minibert: {task_name} is in {folder / layout.folder}; later runs read it from "
          f"there, offline", file=sys.stderr)


def _download(name, folder):
    """The download call: one file of nyu-mll/glue into folder/name (written whole or not at
    all: huggingface_hub downloads to a temporary file and moves it). The Hub's host is tried
    first, so that a machine without network hears so at once rather than after retries."""
    from huggingface_hub import constants, hf_hub_download
    if constants.HF_HUB_OFFLINE:
        raise ConnectionError("HF_HUB_OFFLINE is set")
    host = urllib.parse.urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((host.hostname, host.port or 443), timeout=10).close()
    except OSError as e:
        raise ConnectionError(f"{host.hostname} cannot be reached: {e}") from None
    hf_hub_download(REPO, name, repo_type="dataset", local_dir=folder)
