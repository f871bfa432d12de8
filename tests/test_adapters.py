"""Houlsby adapters: placement, near-identity init, gradients for every method, frozen weights
untouched, parameter accounting, several tasks on one base, learning."""
import numpy as np
import pytest

import minibert
from minibert import ops
from minibert.accounting import parameter_table
from minibert.adapters import (adapter_backward, adapter_forward, adapter_parameter_count,
                               add_adapters, set_active_adapters, truncated_normal)
from minibert.config import BertConfig
from minibert.gradcheck import assert_gradients, random_projection
from minibert.model import parameter_shapes
from minibert.named_models import config_of
from minibert.train import METHODS, TrainSettings, configure, training_loop

from closeness import assert_close
from conftest import head_loss_with_gradients, tiny_config

TOL = 1e-6


def test_adapter_op_is_x_plus_bottleneck_and_its_gradients():
    module = minibert.BertModel(tiny_config(), dtype="float64")
    add_adapters(module, size=3, init_std=0.5, seed=1)
    name = "encoder.layer.0.output.adapter"
    x = np.random.default_rng(0).standard_normal((2, 4, 8))
    y, cache = adapter_forward(module, name, x, "gelu")
    p = {k: module.params[f"{name}.{k}"] for k in ("down.weight", "down.bias", "up.weight", "up.bias")}
    h = x @ p["down.weight"].T + p["down.bias"]
    h = 0.5 * h * (1 + __import__("scipy").special.erf(h / np.sqrt(2)))
    # float64, products summed in another order: a dozen roundings of 1.1e-16 (measured 1.1e-16)
    assert_close(y, x + h @ p["up.weight"].T + p["up.bias"], tol=1e-14)
    for activation in ("gelu", "gelu_new", "relu", "tanh"):
        R = random_projection(x.shape, 4, np)
        loss = lambda: float((adapter_forward(module, name, x, activation)[0] * R).sum())
        module.zero_grad()
        dx = adapter_backward(module, name, R, adapter_forward(module, name, x, activation)[1],
                              activation)
        tensors = {"x": x, **{f"{name}.{k}": v for k, v in p.items()}}
        assert_gradients(loss, tensors, {"x": dx, **module.grads}, tol=TOL)


def test_two_adapters_per_layer_in_the_right_places(batch):
    model = minibert.BertModel(tiny_config(num_hidden_layers=3), dtype="float64")
    names = add_adapters(model, size=4, leave_out=[1])
    adapters = sorted({n.rsplit(".", 2)[0] for n in names if ".adapter." in n})
    assert adapters == [f"encoder.layer.{l}.{site}.adapter" for l in (0, 2)
                        for site in ("attention.output", "output")]
    assert model.params["encoder.layer.0.output.adapter.down.weight"].shape == (4, 8)
    assert model.params["encoder.layer.0.output.adapter.up.weight"].shape == (8, 4)


def test_placement_before_residual_and_layernorm(batch):
    """An adapter whose up-projection adds a constant vector b to the attention sub-layer's
    output must act exactly like adding b to attention.output.dense.bias (no adapter): both
    sit after the output projection, before the residual add and the LayerNorm."""
    model = minibert.BertModel(tiny_config(), dtype="float64", seed=3)
    reference = minibert.BertModel(tiny_config(), dtype="float64", seed=3)
    add_adapters(model, size=2, init_std=0.0)
    b = np.linspace(-1, 1, 8)
    model.params["encoder.layer.1.attention.output.adapter.up.bias"][:] = b
    reference.params["encoder.layer.1.attention.output.dense.bias"] += b
    # float64: b added in another place may round differently, 1.1e-16 a time over two layers
    assert_close(model.forward(**batch)[0], reference.forward(**batch)[0], tol=1e-14)


def test_zero_init_is_the_base_model_bit_for_bit_and_default_init_is_close(batch):
    base = minibert.BertModel(tiny_config(initializer_range=0.02), seed=0)
    seq0, pooled0 = base.forward(**batch)
    add_adapters(base, size=4, init_std=0.0, name="zero")
    seq, pooled = base.forward(**batch)
    np.testing.assert_array_equal(seq, seq0)
    np.testing.assert_array_equal(pooled, pooled0)
    add_adapters(base, size=4, init_std=1e-3, name="default")
    seq, _ = base.forward(**batch)
    # each adapter adds up(gelu(down x)) with |entries| <= 2e-3: O(M C (2e-3)^2 |x|) ~ 1e-4
    assert 0 < np.abs(seq - seq0).max() < 1e-4


def test_truncated_normal_stays_within_two_std():
    x = truncated_normal(np.random.default_rng(0), (200, 300), 0.01)
    assert np.abs(x).max() <= 0.02 and 0.007 < x.std() < 0.0095


@pytest.mark.parametrize("method", METHODS)
def test_gradients_of_every_trainable_tensor_for_each_method(batch, method):
    model = minibert.BertModel(tiny_config(num_hidden_layers=3), dtype="float64", seed=1)
    if method == "adapters":
        add_adapters(model, size=3, init_std=0.3, seed=2)
    head = minibert.SequenceClassificationHead(8, 3, initializer_range=0.3, dtype="float64", seed=2)
    configure(model, head, method, top_k=2)
    labels = np.array([2, 0])
    loss = head_loss_with_gradients(model, head, batch, labels)
    trainable = {n: model.params[n] for n in model.trainable_names()}
    assert set(model.grads) == set(trainable)
    expected = {"adapters": 3 * 2 * 4 + 14, "full": len(parameter_shapes(model.config)),
                "top-k": 2 * 16 + 2, "layernorm": 14, "head": 0}[method]
    assert len(trainable) == expected
    assert_gradients(loss, {**trainable, **head.params}, {**model.grads, **head.grads}, tol=TOL)


def tiny_task(n=64, seed=0):
    """Label = whether token 3 occurs in the sequence: learnable from the [CLS] output."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, 20, (n, 6))
    labels = rng.integers(0, 2, n)
    ids[labels == 1, rng.integers(1, 6, int(labels.sum()))] = 3
    ids[:, 0] = 1
    mask = np.ones_like(ids)
    return [{"input_ids": ids[i:i + 16], "token_type_ids": np.zeros_like(ids[i:i + 16]),
             "attention_mask": mask[i:i + 16], "labels": labels[i:i + 16]} for i in range(0, n, 16)]


def mean_loss(model, head, batches):
    model.eval()
    head.eval()
    return np.mean([float(head.forward_batch(*model.forward(
        b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"]),
        b)[1]) for b in batches])


@pytest.mark.parametrize("method", METHODS)
def test_training_lowers_the_loss_and_leaves_frozen_weights_untouched(method, monkeypatch):
    model = minibert.BertModel(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                               seed=0)
    if method == "adapters":
        add_adapters(model, size=4, init_std=1e-2)
    head = minibert.SequenceClassificationHead(8, 2, dropout_prob=0.0, seed=1)
    configure(model, head, method, top_k=1)
    frozen = {n: model.params[n].copy() for n in model.frozen}
    weight_grads = []
    original = ops.linear.linear_weight_grad
    monkeypatch.setattr(ops.linear, "linear_weight_grad",
                        lambda dy, x: weight_grads.append(dy.shape[-1]) or original(dy, x))
    batches = tiny_task()
    before = mean_loss(model, head, batches)
    progress = training_loop(model, head, lambda epoch, start: batches[start:],
                     TrainSettings(lr=3e-2, epochs=15), steps_per_epoch=len(batches))
    after = mean_loss(model, head, batches)
    # from ~ln 2 on a balanced binary task; the head alone on random features learns least
    assert after < before - 0.05, (before, after)
    for name, value in frozen.items():
        np.testing.assert_array_equal(model.params[name], value, err_msg=name)
    trained_linear_weights = [n for n in model.trainable_names()
                              if n.endswith(".weight") and "LayerNorm" not in n
                              and not n.startswith("embeddings.")] + ["classifier.weight"]
    assert len(weight_grads) == progress.step * len(trained_linear_weights)


def test_two_task_adapters_on_one_base(batch):
    model = minibert.BertModel(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    base_seq = model.forward(**batch)[0]
    add_adapters(model, size=4, init_std=1e-2, name="task_a")
    head_a = minibert.SequenceClassificationHead(8, 2, seed=1)
    configure(model, head_a, "adapters")
    batches = tiny_task()
    training_loop(model, head_a, lambda e, start: batches[start:], TrainSettings(lr=1e-2, epochs=2),
          len(batches))
    a_seq = model.forward(**batch)[0]

    add_adapters(model, size=8, init_std=1e-2, name="task_b")
    head_b = minibert.SequenceClassificationHead(8, 2, seed=2)
    configure(model, head_b, "adapters")
    training_loop(model, head_b, lambda e, start: tiny_task(seed=1)[start:], TrainSettings(lr=1e-2, epochs=2),
          4)
    b_seq = model.forward(**batch)[0]
    assert not np.allclose(a_seq, b_seq)

    set_active_adapters(model, "task_a")
    np.testing.assert_array_equal(model.forward(**batch)[0], a_seq)     # B did not touch A
    set_active_adapters(model, None)
    np.testing.assert_array_equal(model.forward(**batch)[0], base_seq)  # nor the base
    set_active_adapters(model, "task_b")
    np.testing.assert_array_equal(model.forward(**batch)[0], b_seq)


def test_adapted_model_moves_devices_and_dtypes(batch):
    model = minibert.BertModel(tiny_config())
    add_adapters(model, size=4, init_std=0.1, name="a")
    expected = model.forward(**batch)[0]
    model.to("strict").astype("float64")
    from minibert.backend import to_host
    # float32 against float64: the ~16 float32 roundings of 1.2e-7 each value passes through in
    # two layers (measured 1.5e-7)
    assert_close(to_host(model.forward(**batch)[0]), expected, tol=2e-6)
    set_active_adapters(model, None)
    assert all(type(p).__name__ == "StrictArray" and p.dtype == np.float64
               for p in model.params.values())


@pytest.mark.parametrize("name, per_adapter, all_adapters", [
    ("bert-base-uncased", 99_136, 2_379_264),
    ("bert-large-uncased", 2 * 1024 * 64 + 1024 + 64, 48 * (2 * 1024 * 64 + 1024 + 64)),
])
def test_parameter_counts_of_bert_base_and_large(name, per_adapter, all_adapters):
    config = config_of(name)
    table = parameter_table(config, adapter_size=64)
    assert table["per_adapter"] == per_adapter == adapter_parameter_count(config.hidden_size, 64)
    assert table["adapters"] == all_adapters
    assert sum(r["parameters"] for r in table["rows"]) == table["total"]
    base = sum(int(np.prod(s)) for s in parameter_shapes(config).values())
    assert table["base_total"] == base
    expected_base = {"bert-base-uncased": 109_482_240, "bert-large-uncased": 335_141_888}[name]
    assert base == expected_base           # the published sizes of BertModel


@pytest.mark.parametrize("config", [tiny_config(), BertConfig(hidden_size=384, num_hidden_layers=6,
                                                              intermediate_size=1536)])
def test_parameter_table_matches_a_real_adapted_model(config):
    model = minibert.BertModel(config)
    head = minibert.SequenceClassificationHead(config.hidden_size, 2)
    add_adapters(model, size=16, leave_out=[0])
    configure(model, head, "adapters")
    table = parameter_table(config, adapter_size=16, leave_out=[0])
    assert table["total"] == model.num_params() + head.num_params()
    assert table["trained"] == model.num_params(model.trainable_names()) + head.num_params()
    adapters = [n for n in model.params if ".adapter." in n]
    assert model.num_params(adapters) == table["adapters"] == 2 * (config.num_hidden_layers - 1) * (
        2 * config.hidden_size * 16 + config.hidden_size + 16)


def test_bad_adapter_settings_are_named():
    model = minibert.BertModel(tiny_config())
    with pytest.raises(ValueError, match="adapter size: expected a positive integer, found 0"):
        add_adapters(model, size=0)
    with pytest.raises(ValueError, match=r"leave_out: expected layer indices in \[0, 1\], found \[5\]"):
        add_adapters(model, size=2, leave_out=[5])
    with pytest.raises(ValueError, match="has no active adapters"):
        configure(model, minibert.SequenceClassificationHead(8, 2), "adapters")
    with pytest.raises(ValueError, match="method: expected one of"):
        configure(model, minibert.SequenceClassificationHead(8, 2), "lora")


def test_disabling_adapter_layers_and_restoring_them(batch):
    model = minibert.BertModel(tiny_config(num_hidden_layers=3), seed=0)
    base = model.forward(**batch)[0]
    add_adapters(model, size=4, init_std=0.2, name="a")
    adapted = model.forward(**batch)[0]
    from minibert.adapters import disable_adapter_layers
    disable_adapter_layers(model, [0, 1, 2])
    # every adapter out, but the set's own LayerNorms (copies of the base ones here) stay
    np.testing.assert_array_equal(model.forward(**batch)[0], base)
    set_active_adapters(model, "a")
    disable_adapter_layers(model, [1])
    partial = model.forward(**batch)[0]
    assert not np.array_equal(partial, adapted) and not np.array_equal(partial, base)
    assert not any(n.startswith("encoder.layer.1.") and ".adapter." in n for n in model.params)
    set_active_adapters(model, "a")
    np.testing.assert_array_equal(model.forward(**batch)[0], adapted)
