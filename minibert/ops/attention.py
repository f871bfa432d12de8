"""Softmax and multi-head scaled dot-product self-attention, all heads in one batched matmul."""
import math

from ..backend import by_rows, get_array_module
from .dropout import dropout_backward, dropout_forward
from .matmul import matmul


def softmax_forward(x):
    # x (..., N) -> probs (..., N) over the last axis
    xp = get_array_module(x)
    probs = xp.empty_like(x)

    def rows(x, probs):                            # in place in probs: the largest arrays
        xp.subtract(x, x.max(axis=-1, keepdims=True), out=probs)
        xp.exp(probs, out=probs)
        probs /= probs.sum(axis=-1, keepdims=True)
    by_rows(rows, x, probs)
    return probs, probs


def softmax_backward(dprobs, probs):
    # d/dx_j of p_i = p_i (delta_ij - p_j)  ->  dx = p * (dp - sum(dp * p))
    xp = get_array_module(dprobs)
    dx = xp.empty_like(dprobs)

    def rows(dprobs, probs, dx):
        xp.multiply(dprobs, probs, out=dx)
        xp.subtract(dprobs, dx.sum(axis=-1, keepdims=True), out=dx)
        dx *= probs
    by_rows(rows, dprobs, probs, dx)
    return dx


def mask_to_bias(attention_mask, dtype):
    # attention_mask (B, T) of 1 (attend) / 0 (padding) -> additive bias (B, 1, 1, T):
    # 0 where attended, the dtype's most negative number where padded, as Hugging Face BERT does.
    xp = get_array_module(attention_mask)
    keep = attention_mask.astype(dtype)
    return ((1.0 - keep) * xp.finfo(dtype).min)[:, None, None, :]


def split_heads(x, H):
    # (B, T, C) -> (B, H, T, D)
    B, T, C = x.shape
    return x.reshape(B, T, H, C // H).transpose(0, 2, 1, 3)


def merge_heads(x):
    # (B, H, T, D) -> (B, T, C)
    B, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)


def attention_forward(q, k, v, mask_bias, H, dropout_p=0.0, rng=None):
    # q, k, v (B, T, C), mask_bias (B, 1, 1, T) -> context (B, T, C)
    qh, kh, vh = split_heads(q, H), split_heads(k, H), split_heads(v, H)   # (B, H, T, D)
    scale = 1.0 / math.sqrt(qh.shape[-1])
    scores = matmul(qh * scale, kh.transpose(0, 1, 3, 2))                  # (B, H, T, T)
    scores += mask_bias
    probs, softmax_cache = softmax_forward(scores)
    probs_dropped, dropout_cache = dropout_forward(probs, dropout_p, rng)
    context = merge_heads(matmul(probs_dropped, vh))                       # (B, T, C)
    xp = get_array_module(scores)
    # d scores -> d(q k^T): times the scale where the key is attended; 0 where it is padding
    # (a padded score + the most negative number rounds to that number: a constant, whose
    # gradient is 0 -- this matters for a row whose keys are all padding; elsewhere the
    # probability, and so the gradient, is exactly 0 anyway)
    key_scale = xp.where(mask_bias != 0, 0.0, scale).astype(scores.dtype)  # (B, 1, 1, T)
    cache = {"qh": qh, "kh": kh, "vh": vh, "key_scale": key_scale, "probs": softmax_cache,
             "dropout": dropout_cache}
    return context, cache


def attention_backward(dcontext, cache):
    # dcontext (B, T, C) -> dq, dk, dv (B, T, C)
    H = cache["qh"].shape[1]
    dctx = split_heads(dcontext, H)                                         # (B, H, T, D)
    # the dropped probs, recomputed from probs and the mask rather than kept: (B, H, T, T) less
    probs_dropped = dropout_backward(cache["probs"], cache["dropout"])
    dvh = matmul(probs_dropped.transpose(0, 1, 3, 2), dctx)
    dprobs = dropout_backward(matmul(dctx, cache["vh"].transpose(0, 1, 3, 2)),
                              cache["dropout"])
    dscores = softmax_backward(dprobs, cache["probs"])                    # (B, H, T, T)
    dscores *= cache["key_scale"]
    dqh = matmul(dscores, cache["kh"])
    dkh = matmul(dscores.transpose(0, 1, 3, 2), cache["qh"])
    return merge_heads(dqh), merge_heads(dkh), merge_heads(dvh)
