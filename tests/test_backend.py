"""The array-module switch. CI has no GPU, so the whole training step also runs on a strict
array library that refuses NumPy calls and host conversion, as CuPy does; on a machine with a
GPU the same step runs on CuPy (marker `gpu`)."""
import numpy as np
import pytest
import scipy.special

import minibert
from minibert import backend

from conftest import training_step
from strict_device import HostConversionError, StrictArray, strict


def test_strict_arrays_refuse_numpy():
    x = strict.ones((2, 3))
    assert isinstance(x, StrictArray) and isinstance(strict.exp(x), StrictArray)
    for direct_call in (lambda: np.exp(x), lambda: np.asarray(x), lambda: np.ones((2, 3)) + x,
                        lambda: np.concatenate([x, x]), lambda: list(x)):
        with pytest.raises(HostConversionError):
            direct_call()


def test_training_step_on_strict_device_equals_numpy(config, batch):
    seq_n, loss_n, grads_n, params_n = training_step(config, batch, "numpy")
    seq_s, loss_s, grads_s, params_s = training_step(config, batch, "strict")
    np.testing.assert_array_equal(seq_s, seq_n)
    assert loss_s == loss_n
    assert grads_s.keys() == grads_n.keys() and params_s.keys() == params_n.keys()
    for name in grads_n:
        np.testing.assert_array_equal(grads_s[name], grads_n[name], err_msg=name)
    for name in params_n:
        np.testing.assert_array_equal(params_s[name], params_n[name], err_msg=name)


def test_model_moves_between_devices(config, batch):
    model = minibert.BertModel(config, seed=1)
    expected = model.forward(**batch)[1]
    model.to("strict")
    assert isinstance(model.params["pooler.dense.weight"], StrictArray)
    np.testing.assert_array_equal(backend.to_host(model.forward(**batch)[1]), expected)
    model.to("numpy")
    np.testing.assert_array_equal(model.forward(**batch)[1], expected)


def test_default_device_follows_use(config, monkeypatch):
    monkeypatch.setattr(backend, "_default_name", "numpy")
    minibert.use("strict")
    assert isinstance(minibert.BertModel(config).params["pooler.dense.bias"], StrictArray)
    minibert.use("numpy")
    assert isinstance(minibert.BertModel(config).params["pooler.dense.bias"], np.ndarray)


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="device: expected one of .* found 'tpu'"):
        backend.get_device("tpu")


@pytest.mark.gpu
def test_training_step_on_cupy_matches_numpy(config, batch):
    # the devices draw different dropout masks, so compare in eval mode, to float32 round-off
    seq_n, loss_n, grads_n, params_n = training_step(config, batch, "numpy", train=False)
    seq_c, loss_c, grads_c, params_c = training_step(config, batch, "cupy", train=False)
    np.testing.assert_allclose(seq_c, seq_n, atol=1e-5)
    assert loss_c == pytest.approx(loss_n, rel=1e-5)
    for name in grads_n:
        np.testing.assert_allclose(grads_c[name], grads_n[name], rtol=1e-4, atol=1e-6, err_msg=name)
    for name in params_n:
        np.testing.assert_allclose(params_c[name], params_n[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_float32_erf_is_within_5e7_of_the_exact_value():
    # every float32 from -6 to 6 in steps of 1e-4, the tails, the signed zeros and infinities
    x = np.concatenate([np.arange(-6, 6, 1e-4), [-1e30, -9.0, 9.0, 1e30, -0.0, 0.0, -np.inf,
                                                  np.inf]]).astype(np.float32)
    exact = scipy.special.erf(x.astype(np.float64))
    fast = backend.numpy_erf(x)
    assert fast.dtype == np.float32 and fast.shape == x.shape
    assert np.abs(fast - exact).max() < 5e-7
    assert np.array_equal(np.signbit(fast), np.signbit(x))      # odd, zeros included
    assert np.isnan(backend.numpy_erf(np.float32([np.nan]))).all()
    # shapes across the fit's block boundaries come back in place
    y = np.random.default_rng(0).standard_normal((3, 70001)).astype(np.float32)
    np.testing.assert_allclose(backend.numpy_erf(y), scipy.special.erf(y.astype(np.float64)),
                               atol=5e-7, rtol=0)


def test_float64_erf_is_scipys():
    x = np.linspace(-5, 5, 1001)
    assert np.array_equal(backend.numpy_erf(x), scipy.special.erf(x))
