"""LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias."""
from ..backend import get_array_module
from .row_wise import row_wise


@row_wise("x")
def layernorm_forward(x, weight, bias, eps):
    # x (..., C), weight (C,), bias (C,) -> y (..., C)
    xp = get_array_module(x)
    centred = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)   # (..., 1)
    xhat = centred * rstd
    return xhat * weight + bias, {"xhat": xhat, "rstd": rstd, "weight": weight}


@row_wise("dy", "cache.xhat", "cache.rstd", sums=(1, 2))
def layernorm_backward(dy, cache, weight_grad=True, bias_grad=True):
    # dy (..., C) -> dx (..., C), dweight (C,) or None, dbias (C,) or None
    xhat, rstd, weight = cache["xhat"], cache["rstd"], cache["weight"]
    C = dy.shape[-1]
    dweight = (dy * xhat).reshape(-1, C).sum(axis=0) if weight_grad else None
    dbias = dy.reshape(-1, C).sum(axis=0) if bias_grad else None
    # d/dx of (x - mean) * rstd: remove from dxhat its mean and its projection on xhat
    dxhat = dy * weight
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) * rstd
    return dx, dweight, dbias
