"""Tables in files: CSV, TSV and JSON Lines, read row by row as {column: value} with the line each
row starts on, every problem reported with the file and the line.

CSV and TSV files begin with a header line naming the columns; fields may be quoted as Python's
csv module (and Excel) write them. A JSON Lines file holds one JSON object per line; its keys are
the columns, and blank lines are skipped. Files are UTF-8 (a BOM is dropped).
"""
import csv
import json
from pathlib import Path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def format_of(path, given=None, option=None):
    """The file's format: `given` (csv, tsv or jsonl), else from its extension; the error
    names `option`, the one that gives it (default: the format of the files read, in full)."""
    if given is not None:
        return given
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        option = option or f"the format (--file-format {'|'.join(sorted(set(FORMATS.values())))})"
        raise ValueError(f"{path}: cannot tell the format from the extension {suffix or '(none)'}"
                         f"; expected {', '.join(FORMATS)}, or give {option}")
    return FORMATS[suffix]


def decoded_lines(raw_lines, path, encoding="utf-8"):
    """Each line as text, the line number in the error when it is not UTF-8 (or `encoding`). A
    BOM on the first line (the MRPC header has one) is dropped."""
    for number, raw in enumerate(raw_lines, 1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 and encoding == "utf-8" else encoding)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}, line {number}: not valid UTF-8 ({e.reason}: "
                             f"{raw[e.start:e.end]!r} at byte {e.start} of the line)") from None


def columns_of(path, file_format):
    """The column names of a CSV/TSV file (its header), or of a JSON Lines file (the keys of its
    first object). An empty file is refused."""
    for _, row in read_rows(path, file_format, header_only=True):
        return list(row)
    raise ValueError(f"{path}: empty file (expected {_what_comes_first(file_format)})")


def read_rows(path, file_format, header_only=False):
    """(line, {column: value}) for each data row of the file. With header_only, the first item
    is ({column: None}) of the header alone (CSV/TSV) or the first object (JSON Lines)."""
    with open(path, "rb") as f:
        lines = decoded_lines(f, path)
        if file_format == "jsonl":
            yield from _json_rows(lines, path)
        else:
            yield from _table_rows(lines, path, "\t" if file_format == "tsv" else ",", header_only)


def _what_comes_first(file_format):
    if file_format == "jsonl":
        return "one JSON object per line"
    return "a header line naming the columns"


def _table_rows(lines, path, delimiter, header_only):
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        if header_only:
            yield 1, dict.fromkeys(header)
            return
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:                       # a blank line
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}, line {start}: expected {len(header)} fields, as the "
                                 f"header names ({', '.join(map(repr, header))}), found {len(row)}")
            yield start, dict(zip(header, row))
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: not readable as "
                         f"{'TSV' if delimiter == chr(9) else 'CSV'} ({e})") from None


def _json_rows(lines, path):
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.rstrip("\r\n"))     # a column past the end, not line 2's
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {number}, column {e.colno}: not valid JSON "
                             f"({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object ({{\"column\": "
                             f"value, ...}}), found {type(row).__name__} {line.strip()[:40]}")
        yield number, row
