"""Inverted dropout: keep each element with probability 1 - p and scale it by 1 / (1 - p)."""
from ..backend import by_rows, get_array_module


def dropout_forward(x, p, rng):
    # x (...) -> y (...). rng None (eval mode) or p == 0 -> identity, nothing cached.
    if rng is None or p == 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= p    # kept as bools: a quarter of float32 mask
    return _apply(x, keep, 1.0 / (1.0 - p)), (keep, 1.0 / (1.0 - p))


def dropout_backward(dy, cache):
    return dy if cache is None else _apply(dy, *cache)


def _apply(x, keep, scale):
    xp = get_array_module(x)
    y = xp.empty_like(x)

    def rows(x, keep, y):
        xp.multiply(x, keep, out=y)
        y *= scale                                      # in place: stays in x's dtype
    by_rows(rows, x, keep, y)
    return y
