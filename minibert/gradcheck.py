"""Numerical gradient checks in float64, shared by the tests and the notebooks.

`check_gradients(loss, tensors, grads)` compares hand-written gradients with the five-point
central difference (8 (f(x + h u) - f(x - h u)) - (f(x + 2h u) - f(x - 2h u))) / (12 h), whose
truncation error is O(h^4): h can be 1e-4, and round-off (|f| 1e-16 / h) stays near 1e-12:
  - small tensors element by element (u runs over the unit vectors),
  - large tensors along a few random directions u, which costs four evaluations per direction
    and still catches any wrong entry with probability one (Chainer's directional check).
The tensors are perturbed in place and restored, so `loss` just reads them.

A gradient that is truly zero (BERT's key bias: adding the same number to every score of a
softmax row changes nothing) has no meaningful relative error: its numeric estimate is
round-off, about |loss| * 1e-16 / h. Such a tensor is reported with `zero=True` when both
norms stay below ZERO_TOL * max(1, |loss|), 100 times that round-off, and its error is 0.
"""
from typing import NamedTuple

import numpy as np

from .backend import get_array_module, host_generator

ELEMENTWISE_MAX_SIZE = 64
ZERO_TOL = 1e-10


class Check(NamedTuple):
    error: float          # ||numeric - analytic|| / max(||numeric||, ||analytic||)
    numeric_norm: float
    analytic_norm: float
    zero: bool            # both vanish within round-off


def compare(numeric, analytic, loss_value):
    xp = get_array_module(numeric)
    n, a = float(xp.linalg.norm(numeric)), float(xp.linalg.norm(analytic))
    if max(n, a) <= ZERO_TOL * max(1.0, abs(loss_value)):
        return Check(0.0, n, a, True)
    return Check(float(xp.linalg.norm(numeric - analytic)) / max(n, a), n, a, False)


def numeric_directional(loss, x, direction, eps):
    """The derivative of loss() along `direction` at x, by the five-point stencil with step
    eps; x is restored."""
    original = x.copy()
    values = {}
    for k in (1, -1, 2, -2):
        x[...] = original + (k * eps) * direction
        values[k] = float(loss())
    x[...] = original
    return (8.0 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12.0 * eps)


def check_tensor(loss, x, grad, eps=1e-4, directions=4, seed=0):
    """Compare `grad` with central differences of `loss` in `x` (float64 only) -> Check."""
    xp = get_array_module(x)
    if x.dtype != xp.float64:
        raise ValueError(f"gradient checks need float64 tensors, found {x.dtype}")
    if grad is None:
        grad = xp.zeros_like(x)       # a tensor the loss does not depend on
    if grad.shape != x.shape:
        raise ValueError(f"gradient shape {tuple(grad.shape)} differs from tensor shape "
                         f"{tuple(x.shape)}")
    if x.size <= ELEMENTWISE_MAX_SIZE:
        numeric = xp.zeros_like(x)
        flat = numeric.reshape(-1)
        for i in range(x.size):
            unit = xp.zeros_like(x)
            unit.reshape(-1)[i] = 1.0
            flat[i] = numeric_directional(loss, x, unit, eps)
        return compare(numeric, grad, float(loss()))
    rng = host_generator(seed)
    numeric, analytic = [], []
    for _ in range(directions):
        u = xp.asarray(rng.standard_normal(x.shape))
        numeric.append(numeric_directional(loss, x, u, eps))
        analytic.append(float((grad * u).sum()))
    return compare(xp.asarray(numeric), xp.asarray(analytic), float(loss()))


def check_gradients(loss, tensors, grads, eps=1e-4, directions=4, seed=0):
    """{name: Check} for every tensor in `tensors` ({name: array}); `grads` holds the
    analytic gradients by the same names (a missing name means an expected gradient of zero)."""
    return {name: check_tensor(loss, x, grads.get(name), eps, directions, seed)
            for name, x in tensors.items()}


def assert_gradients(loss, tensors, grads, tol=1e-6, **kwargs):
    """Raise AssertionError naming every tensor whose relative error exceeds tol; else return
    the checks."""
    checks = check_gradients(loss, tensors, grads, **kwargs)
    bad = {name: c.error for name, c in checks.items() if not c.error <= tol}
    if bad:
        raise AssertionError("gradient check failed (relative error > %g): %s" % (
            tol, ", ".join(f"{n}: {e:.2e}" for n, e in bad.items())))
    return checks


def random_projection(shape, seed, xp):
    """A fixed random tensor R: the test loss sum(out * R) has gradient R w.r.t. out."""
    return xp.asarray(host_generator(seed).standard_normal(shape))


def whole_model_check(device=None, layers=2, hidden_size=16, heads=2, seed=0):
    """check_gradients on every parameter of a small random float64 BERT and classification
    head, on a batch of three lengths (padding included) -> (model, head, batch shape (B, T),
    {name: Check})."""
    from .config import BertConfig
    from .heads import SequenceClassificationHead
    from .model import BertModel
    config = BertConfig(vocab_size=50, hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden_size,
                        max_position_embeddings=32, initializer_range=0.3)
    model = BertModel(config, device=device, dtype="float64", seed=seed)
    head = SequenceClassificationHead(config.hidden_size, 3, initializer_range=0.3,
                                      device=device, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    B, T = 3, 7
    positions = np.arange(T)[None, :]
    mask = (positions < np.array([[T], [T - 2], [T - 4]])).astype(np.int64)   # three lengths
    batch = {"input_ids": np.where(mask == 1, rng.integers(1, config.vocab_size, (B, T)),
                                   config.pad_token_id),
             "token_type_ids": np.broadcast_to(positions >= 3, (B, T)).astype(np.int64),
             "attention_mask": mask}
    labels = rng.integers(0, 3, B)

    def loss():
        return float(head.forward(model.forward(**batch)[1], labels)[1])
    loss()
    model.backward(None, head.backward())
    return model, head, (B, T), check_gradients(loss, {**model.params, **head.params},
                                                {**model.grads, **head.grads})
