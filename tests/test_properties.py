"""Property-based: random small configs, batch shapes and masks never break forward or backward,
everything stays finite, and the gradients still check out."""
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minibert
from minibert import gradcheck
from minibert.gradcheck import assert_gradients, random_projection


@st.composite
def model_and_batch(draw):
    H = draw(st.integers(1, 3))
    D = draw(st.integers(1, 4))
    L = draw(st.integers(1, 2))
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, 6))
    config = minibert.BertConfig(vocab_size=draw(st.integers(2, 12)), hidden_size=H * D,
                                 num_hidden_layers=L, num_attention_heads=H,
                                 intermediate_size=draw(st.integers(1, 8)),
                                 max_position_embeddings=T + draw(st.integers(0, 3)),
                                 type_vocab_size=draw(st.integers(1, 2)), initializer_range=0.3,
                                 hidden_act=draw(st.sampled_from(["gelu", "gelu_new"])))
    ids = st.integers(0, config.vocab_size - 1)
    input_ids = np.array(draw(st.lists(st.lists(ids, min_size=T, max_size=T), min_size=B,
                                       max_size=B)), dtype=np.int64)
    types = np.array(draw(st.lists(st.lists(st.integers(0, config.type_vocab_size - 1),
                                            min_size=T, max_size=T), min_size=B, max_size=B)))
    mask = np.array(draw(st.lists(st.lists(st.integers(0, 1), min_size=T, max_size=T),
                                  min_size=B, max_size=B)))      # any mask, even all padding
    adapter_size = draw(st.sampled_from([None, 1, 3]))
    return config, adapter_size, {"input_ids": input_ids, "token_type_ids": types,
                                  "attention_mask": mask}


@settings(max_examples=25, deadline=None, derandomize=True,   # the same cases in every CI run
          suppress_health_check=[HealthCheck.too_slow])
@given(model_and_batch(), st.integers(0, 2 ** 16))
def test_forward_backward_are_finite_and_gradients_check(case, seed):
    config, adapter_size, batch = case
    model = minibert.BertModel(config, dtype="float64", seed=seed)
    if adapter_size:
        minibert.add_adapters(model, size=adapter_size, init_std=0.3, seed=seed)
    seq, pooled = model.forward(**batch)
    assert np.isfinite(seq).all() and np.isfinite(pooled).all()
    R1 = random_projection(seq.shape, seed, np)
    R2 = random_projection(pooled.shape, seed + 1, np)
    model.zero_grad()
    model.backward(R1, R2)
    assert all(np.isfinite(g).all() for g in model.grads.values())
    def loss():                   # one forward gives both outputs
        seq, pooled = model.forward(**batch, keep_cache=False)
        return float((seq * R1).sum() + (pooled * R2).sum())
    # a fully padded row attends uniformly to padding, and the padding row of the word table
    # gets no gradient (as in PyTorch): compare the rest, on the positions that attend
    checked = {n: p for n, p in model.params.items() if n != "embeddings.word_embeddings.weight"}
    # Every tensor along two random directions u, small ones too (test_model checks fixed
    # configs element by element): a wrong entry anywhere in a tensor changes <grad, u> for
    # all u but a set of probability zero, and each tensor keeps its own relative error, so a
    # wrong gradient in any single tensor still fails, at 9 evaluations a tensor, not 4 a number
    # (tried: one entry off by 1e-4 of its tensor's norm fails in every tensor of all 25 cases).
    with mock.patch.object(gradcheck, "ELEMENTWISE_MAX_SIZE", 0):
        assert_gradients(loss, checked, model.grads, tol=1e-6, directions=2)
