"""Tables in CSV, TSV and JSON Lines files, read row by row with their lines, and every problem
of a file named with the file and the line, on small files written here."""
import pytest

from minibert.data.formats import columns_of, format_of, read_rows


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_the_three_formats_give_the_same_rows(tmp_path):
    csv_file = write(tmp_path, "a.csv", 'text,label\n"good, really",pos\n\nbad,neg\n')
    tsv_file = write(tmp_path, "a.tsv", "text\tlabel\ngood, really\tpos\n\nbad\tneg\n")
    jsonl_file = write(tmp_path, "a.jsonl", '{"text": "good, really", "label": "pos"}\n\n'
                                            '{"text": "bad", "label": "neg"}\n')
    rows = [{"text": "good, really", "label": "pos"}, {"text": "bad", "label": "neg"}]
    # the lines rows start on: after a header line in CSV and TSV, without one in JSON Lines
    for path, lines in ((csv_file, [2, 4]), (tsv_file, [2, 4]), (jsonl_file, [1, 3])):
        assert list(read_rows(path, format_of(path))) == list(zip(lines, rows))
        assert columns_of(path, format_of(path)) == ["text", "label"]


def test_a_quoted_field_over_two_lines_is_one_row_named_by_its_first_line(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"two\nlines",pos\nnext,neg\n')
    assert list(read_rows(path, "csv")) == [(2, {"text": "two\nlines", "label": "pos"}),
                                            (4, {"text": "next", "label": "neg"})]


def test_format_from_the_extension_or_as_given(tmp_path):
    assert [format_of(tmp_path / n) for n in ("a.CSV", "b.tsv", "c.jsonl", "d.ndjson")] == [
        "csv", "tsv", "jsonl", "jsonl"]
    assert format_of(tmp_path / "data.txt", "tsv") == "tsv"
    with pytest.raises(ValueError) as error:
        format_of(tmp_path / "data.txt")
    assert str(error.value) == (f"{tmp_path / 'data.txt'}: cannot tell the format from the "
                                "extension .txt; expected .csv, .tsv, .jsonl, .ndjson, or give "
                                "the format (--file-format csv|jsonl|tsv)")


@pytest.mark.parametrize("name, content, message", [
    ("a.csv", "text,label\ngood,pos\nbad,neg,extra\n",
     "line 3: expected 2 fields, as the header names ('text', 'label'), found 3"),
    ("a.tsv", "text\tlabel\ngood\n", "line 2: expected 2 fields, as the header names ('text', "
                                     "'label'), found 1"),
    ("a.csv", b"text,label\ngood,pos\ncaf\xe9,neg\n",
     "line 3: not valid UTF-8 (invalid continuation byte: b'\\xe9' at byte 3 of the line)"),
    ("a.jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad", "label": neg}\n',
     "line 2, column 26: not valid JSON (Expecting value)"),
    ("a.jsonl", '{"text": "good", "label": "pos"}\n["bad", "neg"]\n',
     'line 2: expected a JSON object ({"column": value, ...}), found list ["bad", "neg"]'),
    ("a.csv", 'text,label\n"good,pos\n', "line 2: not readable as CSV (unexpected end of data)"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(ValueError) as error:
        list(read_rows(path, format_of(path)))
    assert str(error.value) == f"{path}, {message}"


def test_an_empty_file_is_refused(tmp_path):
    for name, expected in (("a.csv", "a header line naming the columns"),
                           ("a.jsonl", "one JSON object per line")):
        path = write(tmp_path, name, "")
        with pytest.raises(ValueError) as error:
            columns_of(path, format_of(path))
        assert str(error.value) == f"{path}: empty file (expected {expected})"


def test_a_bom_is_dropped(tmp_path):
    path = write(tmp_path, "a.csv", "\ufefftext,label\ngood,pos\n")
    assert columns_of(path, "csv") == ["text", "label"]


def test_a_tsv_saved_as_csv_is_named_as_one(tmp_path, capsys):
    from minibert.cli import main
    (tmp_path / "t.csv").write_text("review\tsentiment\ngood\tpos\nbad\tneg\n")
    assert main(["train", "--train", str(tmp_path / "t.csv"), "--dev", str(tmp_path / "t.csv"),
                 "--text-column", "review", "--label-column", "sentiment"]) == 2
    assert capsys.readouterr().err.endswith(
        "its columns: 'review\\tsentiment'; its header holds tabs: a TSV file? give "
        "--file-format tsv\n")


def test_a_broken_json_line_is_named_at_its_column(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"\n')
    # 30 characters, then the "}" it lacks: column 31, not column 1 of a line after the newline
    with pytest.raises(ValueError, match=r"t.jsonl, line 2, column 31: not valid JSON"):
        list(read_rows(path, "jsonl"))
