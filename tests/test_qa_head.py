"""The extractive QA head: its span logits and loss against their definitions, its gradients
and the whole model's with it by float64 finite differences, the tokens it shuts out, and bad
input."""
import numpy as np
import pytest

import minibert
from minibert.gradcheck import assert_gradients
from minibert.heads import QuestionAnsweringHead
from minibert.ops.span import SHUT_OUT, span_logits_backward, span_logits_forward
from minibert.train import configure

from conftest import tiny_config

TOL = 1e-6


@pytest.fixture
def qa_batch(batch):
    """The shared two-sequence batch with its QA fields: candidates are [CLS] and the token
    type 1 tokens (the context) minus the final [SEP] (position 4 and 3); the second answer
    points at [CLS]."""
    candidates = np.array([[1, 0, 0, 1, 0, 0], [1, 0, 1, 0, 0, 0]], dtype=bool)
    return {**batch, "candidates": candidates, "labels": np.array([[3, 3], [0, 0]])}


def qa_head(dtype="float64"):
    return QuestionAnsweringHead(8, initializer_range=0.3, dtype=dtype, seed=2)


def test_span_logits_and_loss_follow_their_definitions(qa_batch):
    head = qa_head()
    seq = np.random.default_rng(0).standard_normal((2, 6, 8))
    (start, end), loss = head.forward(seq, qa_batch["candidates"], qa_batch["labels"])
    W, b = head.params["qa_outputs.weight"], head.params["qa_outputs.bias"]
    scores = seq @ W.T + b                                               # (B, T, 2)
    keep = qa_batch["candidates"]
    np.testing.assert_array_equal(start[keep], scores[..., 0][keep])
    np.testing.assert_array_equal(end[keep], scores[..., 1][keep])
    assert np.all(start[~keep] == SHUT_OUT) and np.all(end[~keep] == SHUT_OUT)

    def cross_entropy(logits, positions):      # over the candidates only
        return np.mean([np.log(np.exp(row[k]).sum()) - row[p]
                        for row, k, p in zip(logits, keep, positions)])
    expected = (cross_entropy(scores[..., 0], [3, 0]) + cross_entropy(scores[..., 1], [3, 0])) / 2
    # the same float64 sums in another order: a few roundings of 1.1e-16
    assert abs(float(loss) - expected) <= 1e-14 * abs(expected)


def test_span_logits_gradients():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((2, 5, 2))
    candidates = rng.random((2, 5)) < 0.6
    R1, R2 = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))

    def loss():
        start, end = span_logits_forward(scores, candidates)[0]
        return float((start * R1).sum() + (end * R2).sum())
    _, cache = span_logits_forward(scores, candidates)
    dscores = span_logits_backward(R1, R2, cache)
    assert np.all(dscores[~candidates] == 0.0)
    assert_gradients(loss, {"scores": scores}, {"scores": dscores}, tol=TOL)


def test_head_gradients(qa_batch):
    head = qa_head()
    seq = np.random.default_rng(3).standard_normal((2, 6, 8))

    def loss():
        return float(head.forward(seq, qa_batch["candidates"], qa_batch["labels"])[1])
    loss()
    head.zero_grad()
    dseq = head.backward()
    # the question and padding get no gradient: the head never reads them
    assert np.all(dseq[~qa_batch["candidates"]] == 0.0)
    checks = assert_gradients(loss, {"seq": seq, **head.params}, {"seq": dseq, **head.grads},
                              tol=TOL)
    # a constant added to every start (or end) logit changes no softmax: the bias's gradient is
    # exactly zero, as the attention key bias's is
    assert {n for n, c in checks.items() if c.zero} == {"qa_outputs.bias"}


@pytest.mark.parametrize("method", ["full", "adapters"])
def test_whole_model_with_the_qa_head_gradients(qa_batch, method):
    model = minibert.BertModel(tiny_config(), dtype="float64", seed=1)
    if method == "adapters":
        minibert.add_adapters(model, size=3, init_std=0.3, seed=5)
    head = qa_head()
    configure(model, head, method)

    def loss():
        seq, pooled = model.forward(qa_batch["input_ids"], token_type_ids=qa_batch["token_type_ids"],
                                    attention_mask=qa_batch["attention_mask"])
        return float(head.forward_batch(seq, pooled, qa_batch)[1])
    model.zero_grad()
    head.zero_grad()
    loss()
    model.backward(*head.backward_batch())
    # the pooler is unused by this head, so it does not learn
    assert not any(n.startswith("pooler.") for n in model.trainable_names())
    trainable = {n: model.params[n] for n in model.trainable_names()}
    assert set(model.grads) == set(trainable)
    assert_gradients(loss, {**trainable, **head.params}, {**model.grads, **head.grads}, tol=TOL)


@pytest.mark.parametrize("candidates, positions, message", [
    (np.ones((2, 5), bool), [[0, 0], [0, 0]],
     r"candidates: expected a boolean mask of shape \(2, 6\)"),
    (np.ones((2, 6), int), [[0, 0], [0, 0]], "candidates: expected a boolean mask"),
    (np.array([[1, 0, 0, 0, 0, 0], [0] * 6], bool), [[0, 0], [0, 0]], "at least one candidate"),
    (np.ones((2, 6), bool), [0, 0],
     r"positions: expected integer \(start, end\) pairs of shape \(2, 2\)"),
    (np.ones((2, 6), bool), [[0, 6], [0, 0]], r"positions: expected token positions in \[0, 5\]"),
    (np.array([[1, 0, 0, 1, 0, 0]] * 2, bool), [[1, 3], [0, 0]], "must be a candidate token"),
])
def test_head_refuses_bad_input(candidates, positions, message):
    head = qa_head("float32")
    with pytest.raises(ValueError, match=message):
        head.forward(np.zeros((2, 6, 8), np.float32), candidates, np.array(positions))


def test_backward_needs_a_loss(qa_batch):
    head = qa_head()
    head.forward(np.zeros((2, 6, 8)), qa_batch["candidates"])
    with pytest.raises(RuntimeError, match="no positions"):
        head.backward()
