"""LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias."""
from ..backend import by_rows, get_array_module


def layernorm_forward(x, weight, bias, eps):
    # x (..., C), weight (C,), bias (C,) -> y (..., C); each row on its own (see backend.by_rows)
    xp = get_array_module(x)
    xhat, y = xp.empty_like(x), xp.empty_like(x)
    rstd = xp.empty(x.shape[:-1] + (1,), dtype=x.dtype)

    def rows(x, xhat, rstd, y):
        xp.subtract(x, x.mean(axis=-1, keepdims=True), out=xhat)             # centred, for now
        rstd[...] = 1.0 / xp.sqrt((xhat * xhat).mean(axis=-1, keepdims=True) + eps)
        xhat *= rstd
        xp.multiply(xhat, weight, out=y)
        y += bias
    by_rows(rows, x, xhat, rstd, y)
    return y, {"xhat": xhat, "rstd": rstd, "weight": weight}


def layernorm_backward(dy, cache, weight_grad=True, bias_grad=True):
    # dy (..., C) -> dx (..., C), dweight (C,) or None, dbias (C,) or None
    xp = get_array_module(dy)
    xhat, rstd, weight = cache["xhat"], cache["rstd"], cache["weight"]
    C = dy.shape[-1]
    dweight = (dy * xhat).reshape(-1, C).sum(axis=0) if weight_grad else None
    dbias = dy.reshape(-1, C).sum(axis=0) if bias_grad else None
    dx = xp.empty_like(dy)

    def rows(dy, xhat, rstd, dx):
        # d/dx of (x - mean) * rstd: remove the mean of dxhat and its projection on xhat
        dxhat = dy * weight
        xp.subtract(dxhat, dxhat.mean(axis=-1, keepdims=True), out=dx)
        dx -= xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
        dx *= rstd
    by_rows(rows, dy, xhat, rstd, dx)
    return dx, dweight, dbias
