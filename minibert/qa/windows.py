"""Extractive QA inputs as BERT's reference pipeline (run_squad.py) makes them: a question and a
window of its context as a pair, long contexts cut into overlapping windows.

    [CLS] question tokens (at most max_query_length) [SEP] context window [SEP]

A window holds at most max_seq_length - len(question) - 3 context tokens; the next one starts
doc_stride tokens further on, so a token can sit in several windows. The answer's character
span becomes a token span through the character offsets `tokenizers` gives every context
token; a window that does not hold the whole answer points at [CLS] (start = end = 0).
Training uses the first answer of a question, as the reference does.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Window:
    question: int               # index of the question in the list the windows were made from
    input_ids: np.ndarray       # (T,) int64
    token_type_ids: np.ndarray  # (T,) 0 for [CLS] question [SEP], 1 for the context and its [SEP]
    offsets: np.ndarray         # (T, 2) each context token's character span in the context;
                                # (-1, -1) for [CLS], the question and the [SEP]s
    max_context: np.ndarray     # (T,) bool: the token has more context here than in any other
                                # window (an answer may start only there), as in run_squad.py
    start: int                  # the answer's first and last token; 0 ([CLS]) when the window
    end: int                    # does not hold it

    @property
    def candidates(self):
        """(T,) bool: the positions a start or end may take: [CLS] and the context tokens."""
        mask = self.offsets[:, 0] >= 0
        mask[0] = True
        return mask


def make_windows(tokenizer, questions, max_seq_length=384, doc_stride=128,
                 max_query_length=64):
    """The windows of every question, in question order."""
    if max_seq_length - min(max_query_length, max_seq_length) - 3 < 1:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for context tokens "
                         f"after a question of up to {max_query_length} tokens, [CLS] and two "
                         f"[SEP]s; raise it or lower max_query_length")
    backend = tokenizer.backend
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    question_ids = [e.ids[:max_query_length] for e in backend.encode_batch(
        [q.question for q in questions], add_special_tokens=False)]
    contexts = list(dict.fromkeys(q.context for q in questions))     # each context once
    encoded = dict(zip(contexts, backend.encode_batch(contexts, add_special_tokens=False)))
    windows = []
    for index, (question, query) in enumerate(zip(questions, question_ids)):
        context = encoded[question.context]
        offsets = np.array(context.offsets, dtype=np.int64).reshape(-1, 2)
        answer = _token_span(offsets, question.answers[0])
        spans = _window_spans(len(context.ids), max_seq_length - len(query) - 3, doc_stride)
        for doc_start, length in spans:
            ids = [cls_id, *query, sep_id, *context.ids[doc_start:doc_start + length], sep_id]
            first = len(query) + 2                      # where the context starts in the window
            T = len(ids)
            window_offsets = np.full((T, 2), -1, dtype=np.int64)
            window_offsets[first:first + length] = offsets[doc_start:doc_start + length]
            max_context = np.zeros(T, dtype=bool)
            max_context[first:first + length] = [
                _is_max_context(spans, (doc_start, length), i)
                for i in range(doc_start, doc_start + length)]
            start = end = 0
            if answer is not None and doc_start <= answer[0] and answer[1] < doc_start + length:
                start, end = answer[0] - doc_start + first, answer[1] - doc_start + first
            windows.append(Window(index, np.array(ids, dtype=np.int64),
                                  np.array([0] * first + [1] * (length + 1), dtype=np.int64),
                                  window_offsets, max_context, start, end))
    return windows


def _token_span(offsets, answer):
    """(first, last) context token covering the answer's characters; None when no token does
    (the tokenizer dropped every character of it)."""
    begin, finish = answer.start, answer.start + len(answer.text)
    inside = np.flatnonzero((offsets[:, 1] > begin) & (offsets[:, 0] < finish))
    return (int(inside[0]), int(inside[-1])) if inside.size else None


def _window_spans(num_tokens, max_tokens, doc_stride):
    """(start, length) of each window over num_tokens context tokens, as run_squad.py: each
    window as long as it may be, the next starting doc_stride tokens on."""
    spans, start = [], 0
    while True:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length >= num_tokens:
            return spans
        start += min(length, doc_stride)


def _is_max_context(spans, span, position):
    """Whether context token `position` has its most context (the fewer tokens on its shorter
    side, the less) in `span` of all the windows holding it; ties go to the longer window."""
    def score(start, length):
        return min(position - start, start + length - 1 - position) + 0.01 * length
    holding = [s for s in spans if s[0] <= position < s[0] + s[1]]
    return max(holding, key=lambda s: score(*s)) == span


def window_batches(windows, batch_size, pad_token_id):
    """Batch dicts of consecutive windows, each padded to its own longest window: input_ids,
    token_type_ids, attention_mask (B, T); candidates
    (B, T) bool; labels (B, 2) the start and end positions."""
    for begin in range(0, len(windows), batch_size):
        chunk = windows[begin:begin + batch_size]
        B, T = len(chunk), max(len(w.input_ids) for w in chunk)
        batch = {"input_ids": np.full((B, T), pad_token_id, dtype=np.int64),
                 "token_type_ids": np.zeros((B, T), dtype=np.int64),
                 "attention_mask": np.zeros((B, T), dtype=np.int64),
                 "candidates": np.zeros((B, T), dtype=bool),
                 "labels": np.array([(w.start, w.end) for w in chunk], dtype=np.int64)}
        for b, w in enumerate(chunk):
            n = len(w.input_ids)
            batch["input_ids"][b, :n] = w.input_ids
            batch["token_type_ids"][b, :n] = w.token_type_ids
            batch["attention_mask"][b, :n] = 1
            batch["candidates"][b, :n] = w.candidates
        yield batch
