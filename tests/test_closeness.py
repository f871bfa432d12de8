"""The scale-relative comparison the float32 tests use."""
import numpy as np
import pytest

from closeness import assert_close


def test_an_element_near_zero_is_allowed_the_round_off_of_the_largest():
    # the case that fails element by element: two summation orders, one tiny element
    expected = np.array([3.0, -2.0, 1.0766696e-4], dtype=np.float32)
    actual = np.array([3.0, -2.0, 1.0766426e-4], dtype=np.float32)
    assert_close(actual, expected, tol=1e-6)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_an_error_beyond_tol_times_the_scale_fails_and_says_so():
    expected = np.array([[2.0, -4.0], [0.5, 0.0]])
    assert_close(expected + 3.9e-6, expected, tol=1e-6)            # 3.9e-6 <= 1e-6 * 4
    with pytest.raises(AssertionError, match=r"^dense.weight: max \|actual - expected\| = 4.1e-06 "
                                             r"exceeds tol \* max \|expected\| = 1e-06 \* 4 = 4e-06"):
        assert_close(expected + 4.1e-6, expected, tol=1e-6, name="dense.weight")


@pytest.mark.parametrize("actual, expected", [
    (np.zeros(3), np.zeros(4)),                  # shapes differ
    (np.array([1.0, np.nan]), np.ones(2)),       # NaN in the result
    (np.array([1e-30]), np.zeros(1)),            # all-zero expected: only exact zeros match
])
def test_shapes_nans_and_zero_scale_are_refused(actual, expected):
    with pytest.raises(AssertionError):
        assert_close(actual, expected, tol=1e-3)
