"""Windows over a context as BERT's run_squad.py cuts them, on the real MiniLM tokenizer: the
pair layout, the stride, the answer's token span from character offsets, [CLS] where a window
lacks the answer, the max-context rule, and padded batches."""
import numpy as np
import pytest

import minibert
from minibert.qa.windows import _window_spans, make_windows, window_batches
from minibert.qa.squad import Answer, Question


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained("minilm-l6")


# 40 words, one token each in the uncased vocabulary; the answer "Zebra Crossing" near the end
WORDS = ("one two three four five six seven eight nine ten " * 3 + "alpha beta gamma delta "
         "epsilon zeta Zebra Crossing eta theta").split()
CONTEXT = " ".join(WORDS)
ANSWER = Answer("Zebra Crossing", CONTEXT.index("Zebra"))
QUESTION = Question("q", "Which crossing?", CONTEXT, (ANSWER,))


def test_window_spans_follow_run_squad():
    # 40 tokens, windows of 16 starting every 10: 0, 10, 20, 30 (the last reaches the end)
    assert _window_spans(40, 16, 10) == [(0, 16), (10, 16), (20, 16), (30, 10)]
    assert _window_spans(10, 16, 10) == [(0, 10)]
    # a stride longer than a window moves by the window: no token is skipped
    assert _window_spans(20, 8, 100) == [(0, 8), (8, 8), (16, 4)]


def test_pair_layout_offsets_and_answer_positions(tokenizer):
    (window,) = make_windows(tokenizer, [QUESTION], max_seq_length=64, max_query_length=16)
    tokens = tokenizer.convert_ids_to_tokens(window.input_ids)
    assert tokens[:6] == ["[CLS]", "which", "crossing", "?", "[SEP]", "one"]
    assert tokens[-1] == "[SEP]" and len(tokens) == 5 + 40 + 1
    assert list(window.token_type_ids) == [0] * 5 + [1] * 41
    # the offsets give back each context token's characters in the original (cased) context
    assert all(CONTEXT[s:e].lower() == t for t, (s, e) in zip(tokens[5:-1], window.offsets[5:-1]))
    assert np.all(window.offsets[:5] == -1) and np.all(window.offsets[-1] == -1)
    assert tokens[window.start:window.end + 1] == ["zebra", "crossing"]
    s, e = window.offsets[window.start][0], window.offsets[window.end][1]
    assert CONTEXT[s:e] == "Zebra Crossing"
    assert list(np.flatnonzero(window.candidates)) == [0] + list(range(5, 45))


def test_long_context_windows_and_cls_where_the_answer_is_missing(tokenizer):
    # 3 question tokens + 3 special: 16 context tokens per window of 22, stride 10
    windows = make_windows(tokenizer, [QUESTION], max_seq_length=22, doc_stride=10,
                           max_query_length=16)
    assert len(windows) == 4 and all(len(w.input_ids) <= 22 for w in windows)
    # the answer is context tokens 36-37: only the last window (30-39) holds it
    starts = [(w.start, w.end) for w in windows]
    assert starts[:3] == [(0, 0), (0, 0), (0, 0)]
    last = windows[3]
    assert tokenizer.convert_ids_to_tokens(last.input_ids[last.start:last.end + 1]) == [
        "zebra", "crossing"]
    # every context token is the start of an answer in exactly one window: the max-context one
    counts = np.zeros(40, int)
    for w, first in zip(windows, (0, 10, 20, 30)):
        counts[first + np.flatnonzero(w.max_context) - 5] += 1
    assert np.all(counts == 1)
    # token 12 sits in windows 0 (0-15) and 1 (10-25): 3 tokens on its short side in window 0
    # (12..15), 2 in window 1 (10..12): window 0 holds its max context
    assert windows[0].max_context[5 + 12] and not windows[1].max_context[5 + 2]


def test_question_is_cut_to_max_query_length(tokenizer):
    question = Question("q", "which crossing is the zebra crossing here", CONTEXT, (ANSWER,))
    (window,) = make_windows(tokenizer, [question], max_seq_length=64, max_query_length=3)
    assert tokenizer.convert_ids_to_tokens(window.input_ids[:5]) == [
        "[CLS]", "which", "crossing", "is", "[SEP]"]


def test_no_room_for_context_is_refused(tokenizer):
    with pytest.raises(ValueError, match="leaves no room for context tokens"):
        make_windows(tokenizer, [QUESTION], max_seq_length=10, max_query_length=7)


def test_batches_pad_each_to_its_longest(tokenizer):
    short = Question("s", "Which?", "Zebra Crossing", (Answer("Zebra", 0),))
    windows = make_windows(tokenizer, [QUESTION, short], max_seq_length=64, max_query_length=16)
    (batch,) = window_batches(windows, 8, tokenizer.pad_token_id)
    assert batch["input_ids"].shape == (2, 46)
    n = len(windows[1].input_ids)
    assert np.all(batch["input_ids"][1, n:] == tokenizer.pad_token_id)
    assert batch["attention_mask"].sum(1).tolist() == [46, n]
    assert not batch["candidates"][1, n:].any()
    assert batch["labels"].tolist() == [[windows[0].start, windows[0].end], [4, 4]]
