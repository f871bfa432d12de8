"""Inverted dropout: keep each element with probability 1 - p and scale it by 1 / (1 - p)."""
from .row_wise import row_wise



def dropout_mask(shape, p, rng, dtype):
    # -> keep (shape) of bools, or None when nothing is dropped (eval mode: rng None; or p == 0).
    # Bools: a quarter of a float32 mask's memory.
    if rng is None or p == 0.0:
        return None
    return rng.random(shape, dtype=dtype) >= p


def dropout_forward(x, p, rng):
    # x (...) -> y (...), with a fresh mask from rng
    return dropout_apply(x, dropout_mask(x.shape, p, rng, x.dtype), p)


@row_wise("keep", "x")
def dropout_apply(x, keep, p):
    # x (...), keep (...) or None -> y (...), with a given mask (attention draws its own)
    if keep is None:
        return x, None
    scale = 1.0 / (1.0 - p)
    return x * keep * scale, {"keep": keep, "scale": scale}


@row_wise("cache.keep", "dy")
def dropout_backward(dy, cache):
    return dy if cache is None else dy * cache["keep"] * cache["scale"]
