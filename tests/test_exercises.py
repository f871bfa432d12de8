"""minibert.lab.exercises: each check accepts the answer in exercise_answers.json and refuses a
wrong one, printing a verdict but never the answer; and every check is offered in a notebook."""
import inspect
import json
from pathlib import Path

import pytest

from minibert.lab import exercises

HERE = Path(__file__).resolve().parent
ANSWERS = json.loads((HERE / "exercise_answers.json").read_text("utf-8"))
CHECKS = sorted(name for name, f in vars(exercises).items()
                if inspect.isfunction(f) and f.__module__ == exercises.__name__
                and not name.startswith("_") and name != "verdict")


def test_every_check_has_its_answers():
    assert sorted(ANSWERS) == CHECKS


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_answer(name, capsys):
    assert getattr(exercises, name)(*ANSWERS[name]["right"]) is True
    assert capsys.readouterr().out == "Right.\n"


@pytest.mark.parametrize("name", CHECKS)
def test_check_refuses_a_wrong_answer_with_a_hint(name, capsys):
    assert getattr(exercises, name)(*ANSWERS[name]["wrong"]) is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet. Hint: ") and len(out) > 40, out
    # a number or a word of the answer is not in the hint (the LayerNorm check may list its
    # two choices: the question offers both)
    right = [str(a) for a in ANSWERS[name]["right"]
             if not isinstance(a, list) and a not in exercises.LAYERNORM_FACTS]
    assert not [a for a in right if a in out], out


@pytest.mark.parametrize("name", CHECKS)
def test_a_notebook_offers_the_check(name):
    notebooks = "".join(p.read_text("utf-8") for p in (HERE.parent / "notebooks").glob("[0-9][0-9]_*.py"))
    assert f"exercises.{name}(" in notebooks
