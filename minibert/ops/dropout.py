"""Inverted dropout: keep each element with probability 1 - p and scale it by 1 / (1 - p)."""


def dropout_forward(x, p, rng):
    # x (...) -> y (...). rng None (eval mode) or p == 0 -> identity, nothing cached.
    if rng is None or p == 0.0:
        return x, None
    scaled_mask = (rng.random(x.shape, dtype=x.dtype) >= p) * (1.0 / (1.0 - p))
    scaled_mask = scaled_mask.astype(x.dtype, copy=False)
    return x * scaled_mask, scaled_mask


def dropout_backward(dy, scaled_mask):
    return dy if scaled_mask is None else dy * scaled_mask
