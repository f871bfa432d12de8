"""Comparing results that were computed in two different ways, by error relative to their scale.

    from closeness import assert_close
    assert_close(actual, expected, tol, name="encoder.layer.0.output.dense.weight")

passes when max|actual - expected| <= tol * max|expected|. Use it wherever the same numbers come
from two computations whose roundings differ: another summation order in BLAS (blocks against
the whole, another CPU, another thread count), torch against minibert, float32 against float64.
An element-wise relative tolerance (`assert_allclose(rtol=...)`) fails there on elements near
zero, whose relative error is the whole tensor's round-off divided by a tiny number; here every
element is allowed the round-off of the tensor's largest, which is what float arithmetic gives.
Choose tol as the format's unit round-off (float32 1.2e-7, float64 2.2e-16) times the number
of roundings that can pile up, and say so in a comment. Where the two computations are the
same code in the same order, compare bit for bit with `np.testing.assert_array_equal`.
"""
import numpy as np


def assert_close(actual, expected, tol, name=""):
    """Assert max|actual - expected| <= tol * max|expected|; the message names the tensor and
    gives the error, the scale, their ratio and the tolerance. Shapes must match exactly; a NaN
    anywhere fails, and an all-zero expected must be matched exactly."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    label = f"{name}: " if name else ""
    assert actual.shape == expected.shape, (
        f"{label}shape {actual.shape} differs from the expected {expected.shape}")
    error = float(np.abs(actual - expected).max(initial=0.0))
    scale = float(np.abs(expected).max(initial=0.0))
    assert error <= tol * scale, (
        f"{label}max |actual - expected| = {error:.3g} exceeds tol * max |expected| = "
        f"{tol:.3g} * {scale:.3g} = {tol * scale:.3g} (error / scale = "
        f"{error / scale if scale else float('inf'):.3g})")
