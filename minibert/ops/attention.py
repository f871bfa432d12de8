"""Softmax and multi-head scaled dot-product self-attention, all heads in one batched product."""
import math

from ..backend import get_array_module
from .dropout import dropout_apply, dropout_backward
from .row_wise import row_wise


@row_wise("x")
def softmax_forward(x):
    # x (..., N) -> probs (..., N) over the last axis; the max is subtracted first so exp
    # cannot overflow
    e = get_array_module(x).exp(x - x.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)
    return probs, {"probs": probs}


@row_wise("dprobs", "cache.probs")
def softmax_backward(dprobs, cache):
    # d/dx_j of p_i = p_i (delta_ij - p_j)  ->  dx = p * (dp - sum(dp * p))
    probs = cache["probs"]
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))


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


@row_wise("q", "k", "v", "mask_bias", "keep")
def attention_forward(q, k, v, mask_bias, H, keep=None, dropout_p=0.0):
    # q, k, v (B, T, C), mask_bias (B, 1, 1, T), keep (B, H, T, T) dropout mask or None
    # -> context (B, T, C)
    qh, kh, vh = split_heads(q, H), split_heads(k, H), split_heads(v, H)   # (B, H, T, D)
    scale = 1.0 / math.sqrt(qh.shape[-1])
    scores = (qh * scale) @ kh.transpose(0, 1, 3, 2) + mask_bias            # (B, H, T, T)
    probs, _ = softmax_forward(scores)
    dropped, dropout_cache = dropout_apply(probs, keep, dropout_p)
    context = merge_heads(dropped @ vh)                                     # (B, T, C)
    # d scores -> d(q k^T): times the scale where the key is attended; 0 where it is padding
    # (a padded score + the most negative number rounds to that number: a constant, whose
    # gradient is 0 -- this matters for a row whose keys are all padding; elsewhere the
    # probability, and so the gradient, is exactly 0 anyway)
    xp = get_array_module(scores)
    key_scale = xp.where(mask_bias != 0, 0.0, scale).astype(scores.dtype)  # (B, 1, 1, T)
    cache = {"q": q, "k": k, "v": v, "key_scale": key_scale, "probs": probs,
             "dropout": dropout_cache}
    return context, cache


@row_wise("dcontext", "cache.q", "cache.k", "cache.v", "cache.key_scale", "cache.probs",
          "cache.dropout.keep")
def attention_backward(dcontext, cache):
    # dcontext (B, T, C) -> dq, dk, dv (B, T, C)
    H = cache["probs"].shape[1]
    qh, kh, vh = split_heads(cache["q"], H), split_heads(cache["k"], H), split_heads(cache["v"], H)
    dctx = split_heads(dcontext, H)                                         # (B, H, T, D)
    # the dropped probs, recomputed from probs and the mask rather than kept: (B, H, T, T) less
    dropped = dropout_backward(cache["probs"], cache["dropout"])
    dvh = dropped.transpose(0, 1, 3, 2) @ dctx
    dprobs = dropout_backward(dctx @ vh.transpose(0, 1, 3, 2), cache["dropout"])
    dscores = softmax_backward(dprobs, cache) * cache["key_scale"]         # (B, H, T, T)
    dqh = dscores @ kh
    dkh = dscores.transpose(0, 1, 3, 2) @ qh
    return merge_heads(dqh), merge_heads(dkh), merge_heads(dvh)
