"""Start and end logits of an answer span from per-token scores, with the tokens an answer may
not use (the question, [SEP], padding) shut out: their logits are set to -10000, the number
BERT's reference code adds to masked attention scores, so that softmax gives them exactly zero
probability (exp(-10000) underflows to 0 even in float64) and they get no gradient."""
from ..backend import get_array_module

SHUT_OUT = -10000.0


def span_logits_forward(scores, candidates):
    # scores (B, T, 2), candidates (B, T) bool -> (start (B, T), end (B, T)), cache
    xp = get_array_module(scores)
    start = xp.where(candidates, scores[..., 0], SHUT_OUT).astype(scores.dtype)
    end = xp.where(candidates, scores[..., 1], SHUT_OUT).astype(scores.dtype)
    return (start, end), {"candidates": candidates}


def span_logits_backward(dstart, dend, cache):
    # dstart (B, T), dend (B, T) -> dscores (B, T, 2), zero on the shut-out tokens
    xp = get_array_module(dstart)
    keep = cache["candidates"]
    return xp.stack([xp.where(keep, dstart, 0.0), xp.where(keep, dend, 0.0)],
                    axis=-1).astype(dstart.dtype)
