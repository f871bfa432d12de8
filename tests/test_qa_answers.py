"""From logits to answer texts, on hand-made windows: the best span over all windows, end >=
start, the length limit, the n-best cut, the max-context rule and text cut by offsets."""
import numpy as np
import pytest

from minibert.qa.answers import best_answers
from minibert.qa.windows import Window
from minibert.qa.squad import Answer, Question

CONTEXT = "Denver Broncos beat the Carolina Panthers."
# the context's tokens and their character spans
SPANS = [(0, 6), (7, 14), (15, 19), (20, 23), (24, 32), (33, 41), (41, 42)]
QUESTION = Question("q", "Who won?", CONTEXT, (Answer("Denver Broncos", 0),))


def window(spans=SPANS, max_context=None, question=0):
    """[CLS] Q [SEP] context tokens [SEP]: positions 0-2, then the context from 3."""
    offsets = np.array([(-1, -1)] * 3 + list(spans) + [(-1, -1)])
    T = len(offsets)
    keep = np.zeros(T, bool)
    keep[3:3 + len(spans)] = True if max_context is None else max_context
    return Window(question, np.zeros(T, np.int64), np.zeros(T, np.int64), offsets, keep, 0, 0)


def logits(T, high):
    """Logits of -100 everywhere but {position: value}: only the spans of those count."""
    out = np.full(T, -100.0)
    for position, value in high.items():
        out[position] = value
    return out


def test_the_best_valid_span_and_its_text_from_the_offsets():
    w = window()
    T = len(w.input_ids)
    # the best start is [CLS] and the best end is the question: neither counts; then start 3
    # (Denver) and end 4 (Broncos)
    start = logits(T, {0: 9.0, 1: 8.0, 3: 5.0, 7: 4.0})
    end = logits(T, {0: 9.0, 2: 8.0, 4: 5.0, 8: 1.0})
    assert best_answers([QUESTION], [w], [start], [end]) == {"q": "Denver Broncos"}
    # end before start does not count: (7, 4) would score 12; (3, 4) 7 beats (7, 8) 6.5
    start = logits(T, {7: 6.0, 3: 1.0})
    end = logits(T, {4: 6.0, 8: 0.5})
    assert best_answers([QUESTION], [w], [start], [end]) == {"q": "Denver Broncos"}
    # and (7, 8) 8 beats (3, 4) 7
    start = logits(T, {7: 6.0, 3: 1.0})
    end = logits(T, {4: 6.0, 8: 2.0})
    assert best_answers([QUESTION], [w], [start], [end]) == {"q": "Carolina Panthers"}


def test_length_limit_and_n_best():
    w = window()
    T = len(w.input_ids)
    start, end = logits(T, {3: 5.0}), logits(T, {9: 5.0, 4: 1.0})
    # tokens 3..9 are 7 long: allowed at 7, not at 6 (then 3..4 wins)
    assert best_answers([QUESTION], [w], [start], [end], max_answer_length=7) == {
        "q": "Denver Broncos beat the Carolina Panthers."}
    assert best_answers([QUESTION], [w], [start], [end], max_answer_length=6) == {
        "q": "Denver Broncos"}
    # with n_best 1 only the single best end (9) is tried, and with length 6 nothing is left
    assert best_answers([QUESTION], [w], [start], [end], n_best=1, max_answer_length=6) == {
        "q": ""}


def test_the_best_over_all_windows_and_the_max_context_rule():
    first = window(SPANS[:4], max_context=[True, True, True, False])
    second = window(SPANS[3:], max_context=[True, True, True, True])
    T1, T2 = len(first.input_ids), len(second.input_ids)
    # "the" (token 3 of the context) has its max context in the second window: a start there in
    # the first window does not count, even though it scores higher
    start1, end1 = logits(T1, {6: 9.0}), logits(T1, {6: 9.0})
    start2, end2 = logits(T2, {4: 3.0}), logits(T2, {5: 3.0})
    assert best_answers([QUESTION], [first, second], [start1, start2], [end1, end2]) == {
        "q": "Carolina Panthers"}
    # padding beyond a window's tokens is ignored
    padded = [np.concatenate([s, [50.0, 50.0]]) for s in (start1, start2)]
    assert best_answers([QUESTION], [first, second], padded, [end1, end2]) == {
        "q": "Carolina Panthers"}


def test_mismatched_logits_are_refused():
    with pytest.raises(ValueError, match="expected logits for each of the 1 windows"):
        best_answers([QUESTION], [window()], [], [])
