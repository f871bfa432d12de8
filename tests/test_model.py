"""The whole model by hand: one layer, the whole encoder, each head, frozen parameters,
train/eval modes and bad input."""
import weakref

import numpy as np
import pytest

import minibert
from minibert import ops
from minibert.gradcheck import assert_gradients, random_projection
from minibert.model import parameter_shapes
from minibert.ops.attention import mask_to_bias

from closeness import assert_close
from conftest import head_loss_with_gradients, tiny_config

TOL = 1e-6


def model64(config, **kw):
    return minibert.BertModel(config, dtype="float64", seed=1, **kw)


def test_parameter_names_and_shapes_follow_hugging_face(config):
    model = model64(config)
    assert set(model.params) == set(parameter_shapes(config))
    assert len(model.params) == 5 + 16 * config.num_hidden_layers + 2
    assert model.params["encoder.layer.1.intermediate.dense.weight"].shape == (16, 8)
    assert all(p.dtype == np.float64 for p in model.params.values())
    assert minibert.BertModel(config).params["pooler.dense.bias"].dtype == np.float32


def test_one_transformer_layer_gradients(config):
    model = model64(config)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 8))
    bias = mask_to_bias(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]), "float64")
    R = random_projection((2, 5, 8), 3, np)
    loss = lambda: float((model.layer_forward(1, x, bias)[0] * R).sum())
    model.zero_grad()
    dx = model.layer_backward(1, R, model.layer_forward(1, x, bias)[1])
    layer = {n: p for n, p in model.params.items() if n.startswith("encoder.layer.1.")}
    assert set(model.grads) == set(layer)
    checks = assert_gradients(loss, {"x": x, **layer}, {"x": dx, **model.grads}, tol=TOL)
    # the key bias shifts every score of a softmax row equally: its gradient is exactly zero
    assert {n for n, c in checks.items() if c.zero} == {
        "encoder.layer.1.attention.self.key.bias"}


def whole_model_loss(model, batch):
    """loss = sum(seq * R1 * mask) + sum(pooled * R2): padded positions excluded, as any real
    loss does (a padded position's output is not meaningful)."""
    mask = batch["attention_mask"]
    R1 = random_projection(mask.shape + (model.config.hidden_size,), 1, np) * mask[:, :, None]
    R2 = random_projection((mask.shape[0], model.config.hidden_size), 2, np)

    def loss():
        seq, pooled = model.forward(**batch)
        return float((seq * R1).sum() + (pooled * R2).sum())
    return loss, R1, R2


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new"])
def test_whole_model_gradients_with_padding(batch, hidden_act):
    model = model64(tiny_config(hidden_act=hidden_act))
    loss, R1, R2 = whole_model_loss(model, batch)
    model.forward(**batch)
    model.zero_grad()
    model.backward(R1, R2)
    assert set(model.grads) == set(model.params)
    checks = assert_gradients(loss, model.params, model.grads, tol=TOL)
    assert {n for n, c in checks.items() if c.zero} == {
        f"encoder.layer.{l}.attention.self.key.bias" for l in range(2)}


@pytest.mark.parametrize("num_labels", [3, 1])     # classification, regression
def test_whole_model_with_head_gradients(config, batch, num_labels):
    model = model64(config)
    head = minibert.SequenceClassificationHead(8, num_labels, initializer_range=0.3,
                                               dtype="float64", seed=2)
    labels = np.array([2, 0]) if num_labels > 1 else np.array([0.7, -1.2])
    loss = head_loss_with_gradients(model, head, batch, labels)
    tensors = {**model.params, **head.params}
    grads = {**model.grads, **head.grads}
    assert_gradients(loss, tensors, grads, tol=TOL)


@pytest.mark.parametrize("pooling, layers", [("cls_token", 1), ("cls_token", 2), ("cls", 2)])
def test_whole_model_with_a_cls_token_or_two_layer_head_gradients(config, batch, pooling,
                                                                   layers):
    """The [CLS] state itself (no pooler) and AdapterHub's two-layer head (dense, tanh,
    dropout, linear), dropout on: every gradient, the pooler's true zero where it is unused."""
    model = model64(config)
    head = minibert.SequenceClassificationHead(8, 3, initializer_range=0.3, dtype="float64",
                                               seed=2, pooling=pooling, layers=layers)
    labels = np.array([2, 0])
    head.train()

    def loss():
        head.seed(5)                    # the same dropout masks at every evaluation
        seq, pooled = model.forward(**batch)
        return float(head.forward_batch(seq, pooled, {**batch, "labels": labels})[1])
    model.zero_grad()
    head.zero_grad()
    loss()
    model.backward(*head.backward_batch())
    assert ("pre_classifier.weight" in head.grads) == (layers == 2)
    unused = {"pooler.dense.weight", "pooler.dense.bias"} if pooling == "cls_token" else set()
    grads = {**{n: np.zeros_like(model.params[n]) for n in unused}, **model.grads, **head.grads}
    checks = assert_gradients(loss, {**model.params, **head.params}, grads, tol=TOL)
    assert all(checks[n].zero for n in unused)


@pytest.mark.parametrize("num_labels", [3, 1])
def test_whole_model_with_a_mean_pooling_head_gradients(config, batch, num_labels):
    model = model64(config)
    head = minibert.SequenceClassificationHead(8, num_labels, initializer_range=0.3,
                                               dtype="float64", seed=2, pooling="mean")
    labels = np.array([2, 0]) if num_labels > 1 else np.array([0.7, -1.2])

    def loss():
        seq, pooled = model.forward(**batch)
        return float(head.forward_batch(seq, pooled, {**batch, "labels": labels})[1])
    model.zero_grad()
    head.zero_grad()
    loss()
    dseq, dpooled = head.backward_batch()
    assert dpooled is None                              # the pooler is not read
    model.backward(dseq, dpooled)
    # the pooler is checked too: finite differences must find its true gradient zero, which is
    # what a backward that leaves it out (or gives it zeros) claims
    pooler = {"pooler.dense.weight", "pooler.dense.bias"}
    assert not any(model.grads[n].any() for n in pooler if n in model.grads)
    grads = {**{n: np.zeros_like(model.params[n]) for n in pooler}, **model.grads, **head.grads}
    checks = assert_gradients(loss, {**model.params, **head.params}, grads, tol=TOL)
    assert all(checks[n].zero for n in pooler)


def test_frozen_parameters_get_no_gradient_and_others_are_unchanged(config, batch, monkeypatch):
    full = model64(config)
    _, R1, R2 = whole_model_loss(full, batch)
    full.forward(**batch)
    full.backward(R1, R2)

    partial = model64(config)
    frozen = [n for n in partial.params
              if n.startswith("embeddings.word") or ".self." in n or n.endswith("output.dense.weight")]
    partial.freeze(frozen)
    calls = []
    original = ops.linear.linear_weight_grad
    monkeypatch.setattr(ops.linear, "linear_weight_grad",
                        lambda dy, x: calls.append(dy.shape) or original(dy, x))
    partial.forward(**batch)
    partial.backward(R1, R2)
    assert set(partial.grads) == set(partial.params) - set(frozen)
    for name, grad in partial.grads.items():
        np.testing.assert_array_equal(grad, full.grads[name], err_msg=name)
    # dW was computed for the trainable linear weights only: two intermediate.dense + pooler
    assert len(calls) == 3
    # and their forward kept no input for it: unfreezing now is refused, not silently wrong
    partial.unfreeze(["encoder.layer.0.attention.self.query.weight"])
    with pytest.raises(RuntimeError, match="attention.self.query.weight was unfrozen after"):
        partial.backward(R1, R2)


def test_backward_stops_below_the_lowest_trainable_layer(config, batch, monkeypatch):
    model = model64(tiny_config(num_hidden_layers=3))
    model.freeze()
    model.unfreeze([n for n in model.params if n.startswith(("encoder.layer.2.", "pooler."))])
    dx_products = []
    original = ops.linear.linear_backward

    def counting(dy, cache, weight_grad=True, bias_grad=True, input_grad=True):
        dx_products.append(input_grad)
        return original(dy, cache, weight_grad, bias_grad, input_grad)
    monkeypatch.setattr(ops.linear, "linear_backward", counting)
    _, R1, R2 = whole_model_loss(model, batch)
    model.forward(**batch)
    model.backward(R1, R2)
    # pooler + layer 2's six linears, and layer 2's q/k/v skip their input gradient
    assert len(dx_products) == 7 and dx_products.count(False) == 3
    assert all(n.startswith(("encoder.layer.2.", "pooler.")) for n in model.grads)


def test_dropout_is_active_only_in_train_mode(config, batch):
    model = minibert.BertModel(tiny_config(hidden_dropout_prob=0.3), seed=0)
    eval_out = model.forward(**batch)[0]
    np.testing.assert_array_equal(eval_out, model.forward(**batch)[0])
    model.train()
    assert not np.array_equal(eval_out, model.forward(**batch)[0])
    model.eval()
    np.testing.assert_array_equal(eval_out, model.forward(**batch)[0])


def test_same_seed_same_model_and_dropout(config, batch):
    a = minibert.BertModel(config, seed=5).train()
    b = minibert.BertModel(config, seed=5).train()
    np.testing.assert_array_equal(a.forward(**batch)[0], b.forward(**batch)[0])


@pytest.mark.parametrize("change, message", [
    (dict(input_ids=np.array([1, 2, 3])), r"input_ids: expected shape \(B, T\), found shape \(3,\)"),
    (dict(input_ids=np.array([[1.0, 2.0]])), "input_ids: expected an integer array, found dtype float64"),
    (dict(input_ids=np.array([[1, 20]])), r"input_ids: expected values in \[0, 19\], found values in \[1, 20\]"),
    (dict(input_ids=np.array([[-1, 2]])), r"input_ids: expected values in \[0, 19\]"),
    (dict(input_ids=np.ones((1, 13), dtype=int)), "sequence length 13 exceeds max_position_embeddings 12"),
    (dict(token_type_ids=np.array([[0, 2, 0, 0, 0, 0], [0] * 6])), r"token_type_ids: expected values in \[0, 1\]"),
    (dict(attention_mask=np.ones((2, 5), dtype=int)), r"attention_mask: expected shape \(2, 6\) like input_ids, found \(2, 5\)"),
    (dict(token_type_ids=np.zeros((6,), dtype=int)), r"token_type_ids: expected shape \(2, 6\)"),
])
def test_bad_input_is_refused_with_a_clear_message(config, batch, change, message):
    model = minibert.BertModel(config)
    inputs = {**batch, **change}
    if "input_ids" in change:
        inputs = change
    with pytest.raises(ValueError, match=message):
        model.forward(**inputs)


def test_head_refuses_bad_labels(config):
    head = minibert.SequenceClassificationHead(8, 3)
    pooled = np.zeros((2, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 2\], found values in \[0, 3\]"):
        head.forward(pooled, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        head.forward(pooled, np.array([0, 1, 2]))


def test_float32_by_default_and_float64_on_request(config, batch):
    seq32 = minibert.BertModel(config, seed=1).forward(**batch)[0]
    seq64 = model64(config).forward(**batch)[0]
    assert seq32.dtype == np.float32 and seq64.dtype == np.float64
    # the ~16 float32 roundings of 1.2e-7 each value passes through in two layers (measured 2e-7)
    assert_close(seq32, seq64, tol=2e-6)


def test_attention_maps_of_the_last_forward(config, batch):
    model = minibert.BertModel(config)
    model.forward(**batch)
    maps = model.attention_probs()
    assert len(maps) == 2 and maps[0].shape == (2, 2, 6, 6)
    # float32: 6 divisions and 5 additions, each rounding by at most 6e-8 of the sum's scale, 1
    assert_close(maps[1].sum(-1), np.ones((2, 2, 6)), tol=1e-6)
    assert np.all(maps[0][1, :, :, 4:] == 0.0)          # the second sequence's two pads


def test_inference_without_caches_gives_the_same_outputs(config, batch):
    model = minibert.BertModel(config)
    seq, pooled = model.forward(**batch)
    seq_light, pooled_light = model.forward(**batch, keep_cache=False)
    np.testing.assert_array_equal(seq_light, seq)
    np.testing.assert_array_equal(pooled_light, pooled)
    for needs_caches in (model.attention_probs, model.backward):
        with pytest.raises(RuntimeError, match="needs the caches of a forward pass"):
            needs_caches()


def test_the_last_passes_caches_are_freed_before_the_next_pass_makes_its_own(config, batch,
                                                                             monkeypatch):
    # a training step's caches are most of its memory: two steps' at once would double it
    model = minibert.BertModel(config, seed=0).train()
    model.forward(**batch)
    last, alive_when_the_next_pass_began = [], []
    embeddings_forward = model._embeddings_forward
    monkeypatch.setattr(model, "_embeddings_forward", lambda *args: (
        alive_when_the_next_pass_began.append(last[-1]() is not None)
        or embeddings_forward(*args)))
    for keep_cache in (True, False):
        last.append(weakref.ref(model._cache.layers[0].gelu["x"]))
        assert last[-1]() is not None
        model.forward(**batch, keep_cache=keep_cache)
    assert alive_when_the_next_pass_began == [False, False]
    assert model._cache is None          # inference keeps none
