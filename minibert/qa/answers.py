"""From start and end logits to answer texts, as BERT's run_squad.py writes its predictions.

For each question, over all of its windows: the n_best highest start logits and the n_best
highest end logits of each window give the candidate spans; a span counts when both ends are
context tokens, its start has its most context in that window, end >= start, and it is at most
max_answer_length tokens long. The best span by start + end logit wins, and its text is cut
from the original context by the tokens' character offsets (so spacing and case are the
context's own). A question left with no valid span answers "".

The answers are written as the official format's predictions file, {question id: answer text},
which the official evaluation script reads.
"""
import json
from pathlib import Path

import numpy as np

from ..atomic import write_atomically


def best_answers(questions, windows, start_logits, end_logits, n_best=20, max_answer_length=30):
    """{question id: answer text} from the windows' logits, start_logits[i] and end_logits[i]
    (at least as long as window i; padding beyond it is ignored) for windows[i]."""
    if not (len(windows) == len(start_logits) == len(end_logits)):
        raise ValueError(f"expected logits for each of the {len(windows)} windows, found "
                         f"{len(start_logits)} start and {len(end_logits)} end")
    best = {}                                   # question index -> (score, text)
    for window, starts, ends in zip(windows, start_logits, end_logits):
        T = len(window.input_ids)
        starts, ends = np.asarray(starts[:T], np.float64), np.asarray(ends[:T], np.float64)
        context = window.offsets[:, 0] >= 0
        for s in _top(starts, n_best):
            if not (context[s] and window.max_context[s]):
                continue
            for e in _top(ends, n_best):
                if not context[e] or e < s or e - s + 1 > max_answer_length:
                    continue
                score = starts[s] + ends[e]
                if window.question not in best or score > best[window.question][0]:
                    text = questions[window.question].context[window.offsets[s, 0]:
                                                              window.offsets[e, 1]]
                    best[window.question] = (score, text)
    return {q.id: best[i][1] if i in best else "" for i, q in enumerate(questions)}


def _top(logits, n):
    """Indices of the n largest logits, largest first (ties: the earlier position)."""
    return np.argsort(-logits, kind="stable")[:n]


def write_answers(path, answers):
    """answers ({question id: answer text}) as the official predictions JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(
        json.dumps(answers, ensure_ascii=False, indent=1) + "\n", "utf-8"))
