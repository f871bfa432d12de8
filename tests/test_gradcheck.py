"""The checker itself: it passes right gradients and names wrong ones, on both of its paths."""
import numpy as np
import pytest

from minibert.gradcheck import ELEMENTWISE_MAX_SIZE, assert_gradients, check_tensor


@pytest.mark.parametrize("size", [5, ELEMENTWISE_MAX_SIZE + 36])   # elementwise, directional
def test_right_gradient_passes_and_wrong_one_is_named(size):
    x = np.random.default_rng(0).standard_normal(size)
    loss = lambda: float((np.sin(x) * x).sum())
    right = np.cos(x) * x + np.sin(x)
    assert check_tensor(loss, x, right).error < 1e-8
    wrong = right.copy()
    wrong[size // 2] += 1e-3                       # one entry off, as a sign or index slip would be
    with pytest.raises(AssertionError, match="x: "):
        assert_gradients(loss, {"x": x}, {"x": wrong})


def test_tensor_is_restored_after_the_check():
    x = np.random.default_rng(1).standard_normal(100)
    before = x.copy()
    check_tensor(lambda: float((x ** 3).sum()), x, 3 * x ** 2)
    np.testing.assert_array_equal(x, before)


def test_zero_gradient_is_recognised_but_a_missing_nonzero_one_fails():
    x = np.random.default_rng(2).standard_normal(10)
    constant = lambda: float(((x - x.mean()) ** 2).sum() * 0 + 3.0)
    assert check_tensor(constant, x, None).zero
    with pytest.raises(AssertionError):
        assert_gradients(lambda: float((x ** 2).sum()), {"x": x}, {})


def test_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        check_tensor(lambda: 0.0, np.zeros(3, dtype=np.float32), None)
