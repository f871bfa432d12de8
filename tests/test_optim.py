"""AdamW, the warmup/decay schedule and global-norm clipping."""
import numpy as np
import pytest

import minibert
from minibert.optim import AdamW, clip_global_norm, linear_warmup_decay, no_weight_decay

from closeness import assert_close
from conftest import tiny_config


def test_weight_decay_spares_layernorm_and_biases():
    assert no_weight_decay("encoder.layer.0.output.LayerNorm.weight")
    assert no_weight_decay("classifier.bias")
    assert not no_weight_decay("encoder.layer.0.output.dense.weight")


def test_schedule_warms_up_then_decays_to_zero():
    values = [linear_warmup_decay(s, 100, 0.1) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[55] == pytest.approx(0.5)
    assert values[100] == 0.0
    assert all(a <= b for a, b in zip(values[:10], values[1:10]))


def test_clipping_scales_to_max_norm_and_leaves_small_gradients():
    grads = [np.full(4, 3.0), np.full(9, 4.0)]               # norm sqrt(36 + 144)
    norm = clip_global_norm(grads, 1.0)
    assert float(norm) == pytest.approx(np.sqrt(180.0))
    assert np.sqrt(sum((g ** 2).sum() for g in grads)) == pytest.approx(1.0, rel=1e-5)
    small = [np.full(3, 0.1)]
    clip_global_norm(small, 1.0)
    np.testing.assert_allclose(small[0], 0.1)


def test_adamw_matches_the_formula_and_keeps_state_only_for_trained_parameters():
    model = minibert.BertModel(tiny_config(), dtype="float64", seed=0)
    model.freeze()
    model.unfreeze(["pooler.dense.weight", "pooler.dense.bias"])
    before = {n: p.copy() for n, p in model.params.items()}
    rng = np.random.default_rng(0)
    g = {n: rng.standard_normal(model.params[n].shape) for n in model.trainable_names()}
    opt = AdamW([model], lr=0.1, weight_decay=0.01, eps=1e-6)
    for step in (1, 2):
        model.grads = {n: v.copy() for n, v in g.items()}
        opt.step()
    assert {name for _, name in opt.state} == {"pooler.dense.weight", "pooler.dense.bias"}
    for name, p0 in before.items():
        if name not in g:
            np.testing.assert_array_equal(model.params[name], p0)      # frozen: untouched
            continue
        p, m, v = p0.copy(), 0.0, 0.0
        for t in (1, 2):                                            # torch.optim.AdamW, by hand
            if not name.endswith("bias"):
                p = p * (1 - 0.1 * 0.01)
            m = 0.9 * m + 0.1 * g[name]
            v = 0.999 * v + 0.001 * g[name] ** 2
            p = p - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-6)
        # float64, the same formula grouped differently: ~10 roundings of 1.1e-16 per step
        assert_close(model.params[name], p, tol=1e-14, name=name)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    model = minibert.BertModel(tiny_config(num_hidden_layers=1), dtype="float64", seed=0)
    names = ["encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.LayerNorm.bias"]
    model.freeze()
    model.unfreeze(names)
    reference = {n: torch.tensor(model.params[n].copy(), requires_grad=True) for n in names}
    opt_torch = torch.optim.AdamW([{"params": [reference[names[0]]], "weight_decay": 0.01},
                                   {"params": [reference[names[1]]], "weight_decay": 0.0}],
                                  lr=0.05, eps=1e-6)
    opt = AdamW([model], lr=0.05, eps=1e-6, weight_decay=0.01)
    for _ in range(3):
        grads = {n: rng.standard_normal(model.params[n].shape) for n in names}
        model.grads = {n: g.copy() for n, g in grads.items()}
        opt.step()
        for n in names:
            reference[n].grad = torch.tensor(grads[n])
        opt_torch.step()
    for n in names:
        # float64, torch's grouping of the formula: ~10 roundings of 1.1e-16 per step
        assert_close(model.params[n], reference[n].detach().numpy(), tol=1e-14, name=n)
