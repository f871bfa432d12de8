"""The array-module switch. CI has no GPU, so the whole training step also runs on a strict
array library that refuses NumPy calls and host conversion, as CuPy does; on a machine with a
GPU the same step runs on CuPy (marker `gpu`)."""
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.special

import minibert
from minibert import backend
from minibert.ops.activations import gelu_forward
from minibert.ops.attention import softmax_backward, softmax_forward
from minibert.ops.layernorm import layernorm_backward, layernorm_forward
from minibert.optim import AdamW, clip_global_norm

from strict_device import HostConversionError, StrictArray, strict


def training_step(config, batch, device, train=True):
    """forward, backward and one clipped AdamW step (dropout on when train) -> host copies of
    (sequence output, loss, every gradient, every updated parameter)."""
    model = minibert.BertModel(config, device=device, seed=3).train(train)
    head = minibert.SequenceClassificationHead(config.hidden_size, 3, device=device, seed=4)
    head.train(train)
    seq, pooled = model.forward(**batch)
    _, loss = head.forward(pooled, np.array([2, 0]))
    model.backward(None, head.backward())
    grads = {**model.grads, **head.grads}
    host_grads = {n: backend.to_host(g).copy() for n, g in grads.items()}
    clip_global_norm(list(grads.values()), max_norm=0.5)
    AdamW([model, head], lr=1e-2).step()
    params = {n: backend.to_host(p) for n, p in {**model.params, **head.params}.items()}
    return backend.to_host(seq), float(loss), host_grads, params


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
    # shapes across block boundaries come back in place
    y = np.random.default_rng(0).standard_normal((3, 70001)).astype(np.float32)
    np.testing.assert_allclose(backend.numpy_erf(y), scipy.special.erf(y.astype(np.float64)),
                               atol=5e-7, rtol=0)


def test_float64_erf_is_scipys():
    x = np.linspace(-5, 5, 1001)
    assert np.array_equal(backend.numpy_erf(x), scipy.special.erf(x))


def test_row_blocks_on_threads_give_the_same_step(config, batch, monkeypatch):
    """On NumPy, by_rows hands each core a block of rows. A training step (dropout on) must give
    the same numbers whether every op is cut into blocks on two threads or runs whole: the same
    bits for elementwise work, and the same to float32 rounding for matrix products, whose terms
    BLAS may add up in another order for a block than for the whole matrix. A block left out or
    computed twice would leave uninitialised or wrong rows, far outside that."""
    whole = training_step(config, batch, "numpy")
    blocks = []
    with ThreadPoolExecutor(2) as pool:
        def submit(fn, *arrays):
            blocks.append(arrays[0].shape)
            return pool.submit(fn, *arrays)
        monkeypatch.setattr(backend, "THREADS", 2)
        monkeypatch.setattr(backend, "_pool", SimpleNamespace(submit=submit))
        monkeypatch.setattr(backend, "_MIN_PARALLEL_SIZE", 1)
        in_blocks = training_step(config, batch, "numpy")
    assert (1, 6, 8) in blocks        # e.g. a (B, T, C) = (2, 6, 8) array, cut into its 2 rows
    close = dict(rtol=1e-5, atol=1e-9)     # float32: eps 1.2e-7, a few dozen roundings apart
    np.testing.assert_allclose(in_blocks[0], whole[0], **close)
    assert in_blocks[1] == pytest.approx(whole[1], rel=1e-6)
    for name in whole[2]:
        np.testing.assert_allclose(in_blocks[2][name], whole[2][name], **close, err_msg=name)


def test_elementwise_row_blocks_give_the_same_bits(monkeypatch):
    x = np.random.default_rng(0).standard_normal((5, 7, 16), dtype=np.float32)
    w = np.linspace(0.5, 1.5, 16, dtype=np.float32)
    ops = {"gelu": lambda: gelu_forward(x)[0], "softmax": lambda: softmax_forward(x)[0],
           "layernorm": lambda: layernorm_forward(x, w, -w, 1e-12)[0],
           "layernorm dx": lambda: layernorm_backward(x, layernorm_forward(x, w, w, 1e-12)[1])[0],
           "softmax dx": lambda: softmax_backward(x, softmax_forward(x)[0])}
    whole = {name: op() for name, op in ops.items()}
    with ThreadPoolExecutor(2) as pool:
        monkeypatch.setattr(backend, "THREADS", 2)
        monkeypatch.setattr(backend, "_pool", pool)
        monkeypatch.setattr(backend, "_MIN_PARALLEL_SIZE", 1)
        for name, op in ops.items():
            np.testing.assert_array_equal(op(), whole[name], err_msg=name)


def test_row_blocks_raise_what_a_block_raised(monkeypatch):
    def fails(x):
        raise FloatingPointError(f"block of {len(x)} rows")
    with ThreadPoolExecutor(2) as pool:
        monkeypatch.setattr(backend, "THREADS", 2)
        monkeypatch.setattr(backend, "_pool", pool)
        with pytest.raises(FloatingPointError, match="block of 4 rows"):
            backend.by_rows(fails, np.zeros((8, 1 << 14), dtype=np.float32))
