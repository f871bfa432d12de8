"""Sharing work out over the cores: chunks of rows on threads must give the plain ops' numbers,
and everything that is not worth cutting, or not NumPy, must get the plain op."""
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from minibert import adapters, speed
from minibert.ops import activations, attention, dropout, layernorm, linear, row_wise
from minibert.ops.attention import mask_to_bias
from minibert.ops.dropout import dropout_mask
from minibert.speed import parallel

from closeness import assert_close
from conftest import adapter_step, training_step
from strict_device import StrictArray, strict

# float32 results of products and sums computed in other blocks differ by the order BLAS and
# NumPy add their terms in: a few roundings of eps = 1.2e-7 per sum, carried through two layers
# and a softmax. 1e-5 of the tensor's largest value is ~100 eps; a row left out or computed
# twice is off by the tensor's own scale.
TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def shared_out():
    """The speed layer on, as the commands switch it on: every row-wise op's call goes through
    its executor."""
    speed.enable()
    yield
    speed.disable()


@pytest.fixture
def in_chunks(monkeypatch):
    """Every op cut, however small, into chunks of a few rows, on two threads."""
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)


@pytest.fixture
def whole(monkeypatch):
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 1 << 62)


def test_a_training_step_in_chunks_equals_the_plain_step(config, batch, monkeypatch):
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 1 << 62)
    plain = training_step(config, batch, "numpy")
    cut = []
    original = parallel._chunks
    monkeypatch.setattr(parallel, "_chunks", lambda *a: cut.append(original(*a)) or cut[-1])
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    chunked = training_step(config, batch, "numpy")
    assert [(0, 1), (1, 2)] in cut             # the batch of 2 sequences, one per chunk
    assert_close(chunked[0], plain[0], TOL, "sequence output")
    assert chunked[1] == pytest.approx(plain[1], rel=TOL)
    assert chunked[2].keys() == plain[2].keys() and chunked[3].keys() == plain[3].keys()
    for name in plain[2]:
        if name.endswith("attention.self.key.bias"):
            # exactly zero in exact arithmetic (a constant added to a softmax row changes
            # nothing): what is left is round-off of a sum of terms as large as the key
            # weight's gradient, so that is its scale
            error = np.abs(chunked[2][name] - plain[2][name]).max()
            scale = np.abs(plain[2][name.replace("bias", "weight")]).max()
            assert error <= TOL * scale, (name, error, scale)
        else:
            assert_close(chunked[2][name], plain[2][name], TOL, name)


@pytest.mark.parametrize("variant", [{}, {"placement": "pfeiffer"}, {"placement": "parallel"},
                                     {"ln_before": True, "ln_after": True, "scaling": 2.0}])
def test_an_adapters_block_end_in_chunks_equals_the_plain_one(config, batch, variant,
                                                             monkeypatch):
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 1 << 62)
    plain_seq, plain_grads = adapter_step(config, batch, variant)
    cut = []
    block_end = adapters.block_end_backward
    monkeypatch.setattr(parallel, "_run_in_chunks", lambda op, *a: cut.append(op.__name__)
                        or run_in_chunks(op, *a))
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    seq, grads = adapter_step(config, batch, variant)
    assert {"block_end_forward", "block_end_backward"} <= set(cut)
    assert block_end is adapters.block_end_backward and hasattr(block_end, "__wrapped__")
    assert_close(seq, plain_seq, TOL, "sequence output")
    assert grads.keys() == plain_grads.keys()
    for name in plain_grads:            # each gradient once: chunks' sums added, none twice
        assert_close(grads[name], plain_grads[name], TOL, name)


run_in_chunks = parallel._run_in_chunks


def float32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def elementwise_ops():
    x, dy = float32(5, 7, 16, seed=1), float32(5, 7, 16, seed=2)
    w, b = np.linspace(0.5, 1.5, 16, dtype=np.float32), np.linspace(-1, 1, 16, dtype=np.float32)
    keep = dropout_mask(x.shape, 0.3, np.random.default_rng(0), np.float32)
    return {
        "gelu erf": lambda: activations.gelu_forward(x, "erf"),
        "gelu tanh": lambda: activations.gelu_forward(x, "tanh"),
        "gelu erf dx": lambda: activations.gelu_backward(dy, activations.gelu_forward(x, "erf")[1]),
        "gelu tanh dx": lambda: activations.gelu_backward(dy, activations.gelu_forward(x, "tanh")[1]),
        "softmax": lambda: attention.softmax_forward(x),
        "softmax dx": lambda: attention.softmax_backward(dy, attention.softmax_forward(x)[1]),
        "layernorm": lambda: layernorm.layernorm_forward(x, w, b, 1e-12),
        "layernorm dx": lambda: layernorm.layernorm_backward(dy, layernorm.layernorm_forward(x, w, b, 1e-12)[1])[0],
        "dropout": lambda: dropout.dropout_apply(x, keep, 0.3),
        "dropout dx": lambda: dropout.dropout_backward(dy, dropout.dropout_apply(x, keep, 0.3)[1]),
    }


def leaves(result):
    if isinstance(result, (tuple, list)):
        return [leaf for r in result for leaf in leaves(r)]
    if isinstance(result, dict):
        return [leaf for r in result.values() for leaf in leaves(r)]
    return [result]


def test_elementwise_ops_in_chunks_give_the_same_bits(monkeypatch):
    # every row is computed by the same NumPy calls whatever chunk it is in
    ops = elementwise_ops()
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 1 << 62)
    plain = {name: op() for name, op in ops.items()}
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    for name, op in ops.items():
        chunked = op()
        assert len(leaves(chunked)) == len(leaves(plain[name])), name
        for got, expected in zip(leaves(chunked), leaves(plain[name])):
            if isinstance(expected, np.ndarray):
                np.testing.assert_array_equal(got, expected, err_msg=name)
            else:
                assert got == expected, name


def test_results_that_are_sums_are_added_up(in_chunks):
    x, dy = float32(6, 3, 8, seed=3), float32(6, 3, 8, seed=4)
    w, b = float32(8, seed=5), float32(8, seed=6)
    _, dweight, dbias = layernorm.layernorm_backward(dy, layernorm.layernorm_forward(x, w, b, 1e-12)[1])
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    assert_close(dweight, (dy * xhat).sum((0, 1)), TOL, "dweight")
    assert_close(dbias, dy.sum((0, 1)), TOL, "dbias")
    W = float32(5, 8, seed=7)
    _, dW, _ = linear.linear_backward(float32(6, 3, 5, seed=8), {"x": x, "weight": W})
    assert_close(dW, np.einsum("bto,bti->oi", float32(6, 3, 5, seed=8), x), TOL, "dW")


def test_inputs_kept_in_a_cache_are_the_inputs_themselves(in_chunks):
    # no copy of x for the backward: the cache holds the caller's array
    x, W, b = float32(4, 3, 8), float32(5, 8, seed=1), float32(5, seed=2)
    assert activations.gelu_forward(x)[1]["x"] is x
    y, cache = linear.linear_forward(x, W, b)
    assert cache["x"] is x and cache["weight"] is W
    assert_close(y, np.einsum("bti,oi->bto", x, W) + b, TOL, "y")


def test_attention_in_chunks_matches_the_plain_op(monkeypatch):
    B, T, C, H = 4, 5, 8, 2
    q, k, v, dcontext = (float32(B, T, C, seed=s) for s in (10, 11, 12, 13))
    bias = mask_to_bias(np.array([[1] * 5, [1, 1, 1, 0, 0], [1] * 5, [0] * 5]), np.float32)
    keep = dropout_mask((B, H, T, T), 0.2, np.random.default_rng(1), np.float32)

    def both():
        context, cache = attention.attention_forward(q, k, v, bias, H, keep, 0.2)
        return (context, cache["probs"]) + attention.attention_backward(dcontext, cache)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 1 << 62)
    plain = both()
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    for name, got, expected in zip(("context", "probs", "dq", "dk", "dv"), both(), plain):
        assert_close(got, expected, TOL, name)


@pytest.mark.parametrize("failing_row", [0, 7])     # the caller's first chunk, the pool's last
def test_a_chunk_that_raises_raises_in_the_caller(in_chunks, failing_row):
    def fails(x):
        if x[0, 0] == failing_row:
            raise FloatingPointError(f"chunk at row {failing_row}")
        return x * 2
    shared = parallel.over_rows(fails, row_wise.RowWise(("x",)))
    x = np.arange(8, dtype=np.float32).reshape(8, 1)
    with pytest.raises(FloatingPointError, match=f"chunk at row {failing_row}"):
        shared(x)
    np.testing.assert_array_equal(shared(x + 10), (x + 10) * 2)     # and the pool still works


def test_rows_that_disagree_are_named(in_chunks):
    shared = parallel.over_rows(lambda x, y: x + y, row_wise.RowWise(("x", "y")))
    with pytest.raises(ValueError, match="y has 3 rows, expected 4"):
        shared(float32(4, 2), float32(3, 2))


def test_blas_is_held_on_one_thread_from_the_first_shared_out_call(in_chunks, monkeypatch):
    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    seen = []

    def spy(x):
        seen.append(blas_threads())
        return x
    with threadpool_limits(2, user_api="blas"):       # as a fresh process on two cores has it
        monkeypatch.setattr(parallel, "_blas_held", False)
        before = blas_threads()
        parallel.over_rows(spy, row_wise.RowWise(("x",)))(float32(4, 2))
        after = blas_threads()
    assert before and all(threads == 2 for threads in before)
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert after == [1] * len(before)


def test_other_devices_get_the_plain_op(in_chunks):
    x = strict.asarray(float32(4, 3, 8))
    y, cache = activations.gelu_forward(x)                     # no NumPy call on a device array
    assert isinstance(y, StrictArray) and cache["x"] is x


def test_dropout_without_a_mask_is_not_cut(in_chunks, monkeypatch):
    calls = []
    monkeypatch.setattr(parallel, "_run_in_chunks", lambda *a: calls.append(a))
    x = float32(8, 4)
    y, cache = dropout.dropout_apply(x, None, 0.1)              # eval mode: x as it is, whole
    assert y is x and cache is None
    dropout.dropout_apply(x, x > 0, 0.1)
    assert len(calls) == 1


def test_small_arrays_are_not_cut(monkeypatch):
    calls = []
    monkeypatch.setattr(parallel, "_run_in_chunks", lambda *a: calls.append(a))
    activations.gelu_forward(float32(32, 16))                  # 2 KiB, far below min_bytes
    assert calls == []


def test_cores_without_sched_getaffinity():
    # macOS and Windows have no os.sched_getaffinity: minibert imports and counts os.cpu_count()
    code = ("import os; del os.sched_getaffinity; import minibert, minibert.speed.parallel as p; "
            "print(p.SETTINGS.threads == (os.cpu_count() or 1))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_omp_num_threads_sets_the_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert parallel.available_cores() == 3
