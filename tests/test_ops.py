"""Every op: forward against its definition, backward against float64 central differences
for every input and parameter (relative error <= 1e-6)."""
import math

import numpy as np
import pytest
import scipy.special

from minibert.gradcheck import assert_gradients, random_projection
from minibert.ops.activations import (gelu_backward, gelu_forward, swish_backward, swish_forward,
                                      tanh_backward, tanh_forward)
from minibert.ops.attention import (attention_backward, attention_forward, mask_to_bias,
                                    softmax_backward, softmax_forward)
from minibert.ops.dropout import dropout_backward, dropout_forward, dropout_mask
from minibert.ops.embedding import embedding_backward, embedding_forward
from minibert.ops.layernorm import layernorm_backward, layernorm_forward
from minibert.ops.linear import linear_backward, linear_forward
from minibert.ops.pooling import mean_pool_backward, mean_pool_forward
from minibert.ops.losses import (cross_entropy_backward, cross_entropy_forward, mse_backward,
                                 mse_forward)

TOL = 1e-6


def rand(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def projected(forward, shape_seed=99):
    """loss = sum(forward() * R) for a fixed random R: returns (loss, R)."""
    R = {}

    def loss():
        out = forward()
        if "R" not in R:
            R["R"] = random_projection(out.shape, shape_seed, np)
        return float((out * R["R"]).sum())
    loss()
    return loss, R["R"]


def test_linear_forward_matches_definition_and_gradients():
    x, W, b = rand(2, 3, 4, seed=1), rand(5, 4, seed=2), rand(5, seed=3)
    y, _ = linear_forward(x, W, b)
    np.testing.assert_allclose(y, np.einsum("bti,oi->bto", x, W) + b, rtol=1e-12)
    loss, R = projected(lambda: linear_forward(x, W, b)[0])
    dx, dW, db = linear_backward(R, linear_forward(x, W, b)[1])
    assert_gradients(loss, {"x": x, "W": W, "b": b}, {"x": dx, "W": dW, "b": db}, tol=TOL)


def test_linear_backward_skips_what_is_not_asked_for():
    x, W, b = rand(3, 4), rand(2, 4), rand(2)
    y, cache = linear_forward(x, W, b)
    assert linear_backward(y, cache, weight_grad=False, bias_grad=False, input_grad=False) == (
        None, None, None)


def test_layernorm_forward_normalises_and_gradients():
    x, w, b = rand(2, 3, 6, seed=1, scale=3.0) + 2.0, rand(6, seed=2), rand(6, seed=3)
    y, cache = layernorm_forward(x, np.ones(6), np.zeros(6), 1e-12)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-9)
    loss, R = projected(lambda: layernorm_forward(x, w, b, 1e-12)[0])
    dx, dw, db = layernorm_backward(R, layernorm_forward(x, w, b, 1e-12)[1])
    assert_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db},
                     tol=TOL)


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_gelu_forms(form):
    x = rand(3, 7, seed=4, scale=2.0)
    y, _ = gelu_forward(x, form)
    if form == "erf":
        expected = x * 0.5 * (1 + scipy.special.erf(x / math.sqrt(2)))
    else:
        expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    loss, R = projected(lambda: gelu_forward(x, form)[0])
    assert_gradients(loss, {"x": x}, {"x": gelu_backward(R, gelu_forward(x, form)[1])}, tol=TOL)


def test_gelu_tanh_form_differs_from_erf_form():
    x = np.linspace(-4, 4, 801)
    gap = np.abs(gelu_forward(x, "erf")[0] - gelu_forward(x, "tanh")[0]).max()
    assert 1e-4 < gap < 1e-3      # small but real: checkpoints saying "gelu" need the erf form


def test_mean_pool_averages_the_tokens_and_gradients():
    x = rand(3, 5, 4, seed=6)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    pooled, _ = mean_pool_forward(x, mask)
    for b, n in enumerate(mask.sum(axis=1)):
        np.testing.assert_allclose(pooled[b], x[b, :n].mean(axis=0), rtol=1e-12)
    loss, R = projected(lambda: mean_pool_forward(x, mask)[0])
    dx = mean_pool_backward(R, mean_pool_forward(x, mask)[1])
    assert_gradients(loss, {"x": x}, {"x": dx}, tol=TOL)
    assert not dx[1, 2:].any() and not dx[2, 1:].any()        # padding gets no gradient


def test_tanh_gradients():
    x = rand(4, 5, seed=5)
    loss, R = projected(lambda: tanh_forward(x)[0])
    assert_gradients(loss, {"x": x}, {"x": tanh_backward(R, tanh_forward(x)[1])}, tol=TOL)


def test_swish_is_x_times_sigmoid_and_gradients():
    x = rand(4, 5, seed=6, scale=3.0)
    # float64: the tanh form of the sigmoid against 1 / (1 + e^-x), a few roundings apart
    np.testing.assert_allclose(swish_forward(x)[0], x / (1.0 + np.exp(-x)), rtol=1e-14,
                               atol=1e-15)
    far = np.array([-1000.0, 1000.0], dtype=np.float32)       # no overflow where e^-x would
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(swish_forward(far)[0], [0.0, 1000.0])
    loss, R = projected(lambda: swish_forward(x)[0])
    assert_gradients(loss, {"x": x}, {"x": swish_backward(R, swish_forward(x)[1])}, tol=TOL)


def test_dropout_train_and_eval():
    x = rand(200, 50, seed=6)
    y, cache = dropout_forward(x, 0.1, np.random.default_rng(0))
    kept = cache["keep"]
    assert kept.dtype == bool and cache["scale"] == 1 / 0.9
    assert abs(kept.mean() - 0.9) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / 0.9, rtol=1e-12)
    assert not y[~kept].any()
    assert dropout_forward(x, 0.1, None) == (x, None)       # eval mode: identity
    small = rand(4, 6, seed=7)
    loss, R = projected(lambda: dropout_forward(small, 0.3, np.random.default_rng(1))[0])
    dx = dropout_backward(R, dropout_forward(small, 0.3, np.random.default_rng(1))[1])
    assert_gradients(loss, {"x": small}, {"x": dx}, tol=TOL)


def test_softmax_forward_and_gradients():
    x = rand(3, 4, 5, seed=8, scale=3.0)
    p, _ = softmax_forward(x)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, scipy.special.softmax(x, axis=-1), rtol=1e-12)
    loss, R = projected(lambda: softmax_forward(x)[0])
    assert_gradients(loss, {"x": x}, {"x": softmax_backward(R, softmax_forward(x)[1])}, tol=TOL)


def test_attention_masks_padding_and_matches_a_per_head_loop():
    B, T, C, H = 2, 5, 8, 2
    q, k, v = rand(B, T, C, seed=9), rand(B, T, C, seed=10), rand(B, T, C, seed=11)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    bias = mask_to_bias(mask, "float64")
    out, cache = attention_forward(q, k, v, bias, H)
    assert np.all(cache["probs"][1, :, :, 3:] == 0.0)          # padded keys get no attention
    D = C // H
    for b in range(B):                                        # the textbook loop, head by head
        for h in range(H):
            s = slice(h * D, (h + 1) * D)
            scores = q[b, :, s] @ k[b, :, s].T / math.sqrt(D) + np.where(mask[b], 0.0, -np.inf)
            np.testing.assert_allclose(out[b, :, s], scipy.special.softmax(scores, -1) @ v[b, :, s],
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dropout_p, second_row", [(0.0, [1, 1, 0, 0]), (0.2, [1, 1, 0, 0]),
                                                   (0.0, [0, 0, 0, 0])])   # all padding
def test_attention_gradients(dropout_p, second_row):
    B, T, C, H = 2, 4, 6, 3
    q, k, v = rand(B, T, C, seed=12), rand(B, T, C, seed=13), rand(B, T, C, seed=14)
    bias = mask_to_bias(np.array([[1, 1, 1, 1], second_row]), "float64")

    keep = dropout_mask((B, H, T, T), dropout_p, np.random.default_rng(3), np.float64)

    def forward():
        return attention_forward(q, k, v, bias, H, keep, dropout_p)
    loss, R = projected(lambda: forward()[0])
    dq, dk, dv = attention_backward(R, forward()[1])
    assert_gradients(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv}, tol=TOL)


def test_embedding_gradients_sum_repeated_ids_and_skip_padding_row():
    table = rand(7, 3, seed=15)
    ids = np.array([[1, 2, 2], [6, 1, 0]])
    out, cache = embedding_forward(ids, table)
    np.testing.assert_array_equal(out[1, 0], table[6])
    loss, R = projected(lambda: embedding_forward(ids, table)[0])
    assert_gradients(loss, {"table": table}, {"table": embedding_backward(R, cache)}, tol=TOL)
    no_pad = embedding_backward(R, cache, padding_idx=0)
    assert np.all(no_pad[0] == 0.0)
    np.testing.assert_array_equal(no_pad[1:], embedding_backward(R, cache)[1:])


def test_cross_entropy_value_and_gradients():
    logits, labels = rand(4, 3, seed=16), np.array([0, 2, 1, 2])
    loss_value, cache = cross_entropy_forward(logits, labels)
    log_p = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    assert float(loss_value) == pytest.approx(-log_p[np.arange(4), labels].mean(), rel=1e-12)
    loss = lambda: float(cross_entropy_forward(logits, labels)[0])
    assert_gradients(loss, {"logits": logits}, {"logits": cross_entropy_backward(1.0, cache)},
                     tol=TOL)


def test_mse_value_and_gradients():
    pred, target = rand(5, seed=17), rand(5, seed=18)
    loss_value, cache = mse_forward(pred, target)
    assert float(loss_value) == pytest.approx(((pred - target) ** 2).mean(), rel=1e-12)
    loss = lambda: float(mse_forward(pred, target)[0])
    assert_gradients(loss, {"pred": pred}, {"pred": mse_backward(1.0, cache)}, tol=TOL)
