"""The official SQuAD v1.1 metric against cases worked out by hand."""
import pytest

from minibert.qa.squad import Answer, Question
from minibert.qa.metric import exact_match, normalize_answer, squad_scores, token_f1


@pytest.mark.parametrize("text, normalised", [
    ("The Denver Broncos", "denver broncos"),               # lower case, article dropped
    ("  an   apple, a pear!  ", "apple pear"),               # punctuation, articles, spaces
    ("Theory of the Leisure Class", "theory of leisure class"),   # "the" only as a word
    ("U.S.-based", "usbased"),                              # punctuation removed, not spaced
    ("A", ""),
])
def test_normalisation(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Broncos.", "Broncos") == 1.0
    assert exact_match("Denver Broncos", "Broncos") == 0.0
    # prediction "denver broncos" (2 tokens), gold "broncos" (1): 1 shared token,
    # precision 1/2, recall 1/1, F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert token_f1("Denver Broncos", "the Broncos") == pytest.approx(2 / 3, abs=1e-15)
    # repeated tokens count with multiplicity: "a b b" vs "b b c" -> "b b" shared
    # (the article "a" is dropped first: prediction "b b"), precision 2/2, recall 2/3 -> 0.8
    assert token_f1("a b b", "b b c") == pytest.approx(0.8, abs=1e-15)
    assert token_f1("Carolina Panthers", "Broncos") == 0.0
    assert token_f1("", "Broncos") == 0.0


def test_scores_take_the_best_gold_answer_and_average_in_percent():
    questions = [
        Question("q1", "Who won?", "", (Answer("Denver Broncos", 0), Answer("Broncos", 7))),
        Question("q2", "Where?", "", (Answer("Levi's Stadium", 0),
                                      Answer("Santa Clara, California", 0))),
        Question("q3", "When?", "", (Answer("February 7, 2016", 0),)),
    ]
    predictions = {"q1": "Broncos!",                   # EM 1 (second gold), F1 1
                   "q2": "Santa Clara",                # EM 0; F1 vs "santa clara california":
                                                       # p 2/2, r 2/3 -> 0.8
                   }                                   # q3 unanswered: 0 and 0
    scores = squad_scores(questions, predictions)
    assert scores["exact_match"] == pytest.approx(100 * 1 / 3, abs=1e-12)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3, abs=1e-12)
    assert scores["score"] == scores["f1"]


def test_no_questions_is_refused():
    with pytest.raises(ValueError, match="no questions"):
        squad_scores([], {})
