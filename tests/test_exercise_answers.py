"""The notebooks' exercises worked through: each answer is found here the way a learner would
find it (from the exercise's reasoning, not by calling the check), must be the answer that
tests/exercise_answers.json holds, and must pass its check in minibert.lab.exercises; the
mistakes a learner is likely to make must fail it. Notebook 2's exercise 5 has no check: its
worked answer is a gradient check of attention with dropout on, which passes with the dropout
mask held fixed and fails with a fresh mask drawn at every evaluation.

Small arrays and formulas only (the top-k check builds an untrained minilm-l6): no data,
no network, a few seconds on one thread."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from minibert.gradcheck import check_gradients, random_projection
from minibert.lab import exercises
from minibert.named_models import config_of
from minibert.ops.activations import gelu_forward
from minibert.ops.attention import attention_backward, attention_forward, mask_to_bias
from minibert.ops.dropout import dropout_mask
from minibert.ops.layernorm import layernorm_forward

ANSWERS = json.loads((Path(__file__).parent / "exercise_answers.json").read_text("utf-8"))


def adapter_zero_up_projection():
    """Notebook 1, exercise 2. y = x + W_u a + b_u with a = f(W_d x + b_d). Backwards,
    dW_u = dy a^T and db_u = sum dy, but da = W_u^T dy: zero while W_u is, and with it the
    gradients of W_d and b_d. One step moves W_u off zero (by -lr dW_u), and all four learn.
    Written out in NumPy (C = 8, M = 3) to watch it happen."""
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    W = {"W_d": rng.standard_normal((3, 8)), "b_d": rng.standard_normal(3),
         "W_u": np.zeros((8, 3)), "b_u": rng.standard_normal(8)}

    def gradients():
        h = x @ W["W_d"].T + W["b_d"]
        a, _ = gelu_forward(h, "erf")
        eps = 1e-6                                  # f'(h) by a central difference is enough
        fprime = (gelu_forward(h + eps, "erf")[0] - gelu_forward(h - eps, "erf")[0]) / (2 * eps)
        da = dy @ W["W_u"]
        dh = da * fprime
        return {"W_u": dy.T @ a, "b_u": dy.sum(0), "W_d": dh.T @ x, "b_d": dh.sum(0)}

    first = gradients()
    for name in W:
        W[name] = W[name] - 0.1 * first[name]
    later = gradients()
    zero = lambda g: sorted(name for name, value in g.items() if not value.any())
    return zero(first), zero(later)


def adapter_size_for_bert_large():
    """Notebook 1, exercise 4. BERT-large's base (embeddings, 24 layers, 2L + 1 LayerNorms,
    pooler) and what adapter tuning trains (the LayerNorms, 2L adapters of 2CM + C + M, a
    2-label head), counted from its config; trained / base = 3.6% solved for M."""
    c = config_of("bert-large-uncased")
    C, F, L = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    linear = lambda n_in, n_out: n_in * n_out + n_out
    layernorms = (2 * L + 1) * 2 * C
    base = ((c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * C
            + L * (4 * linear(C, C) + linear(C, F) + linear(F, C)) + layernorms + linear(C, C))
    head = linear(C, 2)
    # 0.036 base = layernorms + head + 2L (C + M (2C + 1))
    M = (0.036 * base - layernorms - head - 2 * L * C) / (2 * L * (2 * C + 1))
    return round(M)


def layernorm_with_large_eps():
    """Notebook 2, exercise 2. The gradient sums to zero because the output ignores a shift of
    x, and is orthogonal to xhat because it ignores a rescaling. (x - mu) / sqrt(var + eps)
    ignores a shift for any eps, but a rescaling only when eps is negligible next to var:
    try both on LayerNorm with eps = 1."""
    rng = np.random.default_rng(1)
    x, gamma, beta = rng.standard_normal((4, 6)), rng.standard_normal(6), rng.standard_normal(6)
    y = lambda x: layernorm_forward(x, gamma, beta, eps=1.0)[0]
    ignores = {"sums to zero": np.allclose(y(x + 3.0), y(x), atol=1e-12),
               "orthogonal to xhat": np.allclose(y(3.0 * x), y(x), atol=1e-12)}
    (fact,) = [fact for fact, true in ignores.items() if true]
    return fact


def attention_key_scale_factor():
    """Notebook 2, exercise 4. The forward divides the scores by sqrt(D); a backward that
    forgets to divide dS by it makes dQ sqrt(D) times too large, D = C / H = 8 / 2."""
    return math.sqrt(8 // 2)


def top_k_backward_stops():
    """Notebook 6, exercise 2. top-k with k = 2 trains the last two of minilm-l6's layers,
    numbered from 0; below the lowest of them no weight needs a gradient."""
    return config_of("minilm-l6").num_hidden_layers - 2


WORKED = {   # check -> (its worked answer as the check's arguments, mistakes a learner may make)
    "adapter_zero_up_projection": (
        adapter_zero_up_projection(),
        [(["W_u", "b_u"], []), (["W_d", "b_d"], ["W_d", "b_d"]), ([], [])]),
    "adapter_size_for_bert_large": ((adapter_size_for_bert_large(),), [(64,), (256,), (8,)]),
    "layernorm_with_large_eps": ((layernorm_with_large_eps(),), [("orthogonal to xhat",)]),
    "attention_key_scale_factor": ((attention_key_scale_factor(),),
                                   [(0.5,), (math.sqrt(8),), (4.0,), (1.0,)]),
    "top_k_backward_stops": ((top_k_backward_stops(),), [(3,), (5,)]),
}


def test_every_check_is_worked():
    assert sorted(WORKED) == sorted(ANSWERS)


@pytest.mark.parametrize("name", sorted(WORKED))
def test_the_worked_answer_is_the_stored_one(name):
    worked, _ = WORKED[name]
    stored = ANSWERS[name]["right"]
    normal = lambda args: [sorted(a) if isinstance(a, (list, set, tuple)) else a for a in args]
    assert normal(worked) == normal(stored), (worked, stored)


@pytest.mark.parametrize("name", sorted(WORKED))
def test_the_worked_answer_passes_its_check(name, capsys):
    worked, _ = WORKED[name]
    assert getattr(exercises, name)(*worked) is True
    assert capsys.readouterr().out == "Right.\n"


@pytest.mark.parametrize("name", sorted(WORKED))
def test_a_likely_mistake_fails_its_check(name, capsys):
    _, mistakes = WORKED[name]
    for mistake in mistakes:
        assert getattr(exercises, name)(*mistake) is False, mistake
        assert capsys.readouterr().out.startswith("Not yet. Hint: ")


def attention_with_dropout(hold_the_mask_fixed):
    """Notebook 2, exercise 5: a gradient check of attention (B = 2, T = 5, C = 8, H = 2, the
    second sequence padded) with dropout 0.3 -> the largest relative error. The mask `keep` is
    random state: every evaluation of the loss must drop the same probabilities as the
    backward did, so it is drawn once and passed to every forward. A fresh mask per forward
    (the rng drawing on) makes the loss a different function at every evaluation."""
    rng = np.random.default_rng(0)
    B, T, C, H, p = 2, 5, 8, 2, 0.3
    q, k, v = (rng.standard_normal((B, T, C)) for _ in range(3))
    mask_bias = mask_to_bias(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]), "float64")
    draws = np.random.default_rng(1)
    keep = dropout_mask((B, H, T, T), p, draws, np.float64)
    mask = (lambda: keep) if hold_the_mask_fixed else (
        lambda: dropout_mask((B, H, T, T), p, draws, np.float64))
    context, cache = attention_forward(q, k, v, mask_bias, H, keep, p)
    R = random_projection(context.shape, seed=3, xp=np)
    dq, dk, dv = attention_backward(R, cache)
    loss = lambda: float((attention_forward(q, k, v, mask_bias, H, mask(), p)[0] * R).sum())
    checks = check_gradients(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv})
    assert not keep.all() and keep.any()            # dropout really drops, and keeps
    return max(c.error for c in checks.values())


def test_attention_dropout_gradient_check_passes_with_the_mask_held_fixed():
    assert attention_with_dropout(hold_the_mask_fixed=True) < 1e-7


def test_attention_dropout_gradient_check_fails_with_a_fresh_mask_each_time():
    assert attention_with_dropout(hold_the_mask_fixed=False) > 1e-2
