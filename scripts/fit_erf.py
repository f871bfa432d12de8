"""Fit the coefficients of minibert's float32 erf (`minibert.backend.numpy_erf`) and print them
with the error they give.

The form is Numerical Recipes' erfcc: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0,
erf(z) = 1 - erfc(z), P a polynomial in t. Numerical Recipes fits P (degree 9) for the relative
error of erfc, which matters where erfc is tiny; GELU needs the absolute error of erf, and an
error d in P moves erf by about erfc(z) d. So P is fitted here for the largest of erfc(z) times
its error on z in [0, 6] (a linear program: minimise e with |erfc(z) (P(t) - g(t))| <= e on a
grid, g(t) = log(erfc(z) / t) + z^2), which a lower degree meets.

    .venv/bin/python scripts/fit_erf.py [DEGREE]      (default 6)

Each degree prints the fit's own error and the float32 erf's largest error against SciPy's
float64 erf on every 1e-4 from -6 to 6 (what tests/test_backend.py checks, below 5e-7): at
degree 6 and up that error is float32's own rounding near erf's zero, the same as at degree 9.
"""
import sys

import numpy as np
import scipy.optimize
import scipy.special

from minibert import backend


def fit(degree, points=4000):
    """P's coefficients, t^0 first, and the largest weighted error on the grid."""
    z = np.linspace(0.0, 6.0, points)
    t = 1.0 / (1.0 + z / 2.0)
    g = np.log(scipy.special.erfc(z) / t) + z * z
    weight = scipy.special.erfc(z)
    A = weight[:, None] * np.vander(t, degree + 1, increasing=True)
    n = degree + 1
    ones = np.ones((points, 1))
    # variables: the n coefficients, then e; minimise e
    objective = np.zeros(n + 1)
    objective[-1] = 1.0
    bounds = np.vstack([np.hstack([A, -ones]), np.hstack([-A, -ones])])
    limits = np.concatenate([weight * g, -weight * g])
    solved = scipy.optimize.linprog(objective, A_ub=bounds, b_ub=limits,
                                    bounds=[(None, None)] * n + [(0, None)], method="highs")
    if not solved.success:
        raise RuntimeError(f"degree {degree}: {solved.message}")
    return solved.x[:n], solved.x[-1]


def float32_error(coefficients):
    """The largest |erf(x) - SciPy's erf(x)| of minibert's float32 erf with these coefficients,
    x every 1e-4 in [-6, 6)."""
    x = np.arange(-6, 6, 1e-4).astype(np.float32)
    kept = backend._ERFC_FIT
    backend._ERFC_FIT = tuple(coefficients)
    try:
        erf = backend.numpy_erf(x)
    finally:
        backend._ERFC_FIT = kept
    return float(np.abs(erf - scipy.special.erf(x.astype(np.float64))).max())


def main(degree):
    coefficients, error = fit(degree)
    rounded = [float(f"{c:.8f}") for c in coefficients]
    print(f"degree {degree}: fit's error {error:.2e}, float32 erf's largest error "
          f"{float32_error(rounded):.2e}")
    print("coefficients, t^0 first:", ", ".join(f"{c:.8f}" for c in rounded))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
