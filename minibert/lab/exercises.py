"""Checks for the notebooks' exercises that have a definite answer.

Each check takes the learner's answer, says right or wrong (with a hint when wrong) and returns
True or False. None stores or prints the answer: each works it out from minibert itself, by
running the code the exercise is about, so reading a check shows how to find the answer, not
what it is. `tests/exercise_answers.json` holds the answers; the tests prove that every check
accepts its answer and refuses a wrong one. For example::

    from minibert.lab import exercises
    exercises.adapter_size_for_bert_large(64)
"""
import numpy as np

from ..accounting import parameter_table
from ..adapters import adapter_backward, adapter_forward, add_adapters
from ..config import BertConfig
from ..heads import SequenceClassificationHead
from ..model import BertModel
from ..named_models import config_of
from ..param_names import layer_of
from ..ops.attention import attention_backward, attention_forward, mask_to_bias
from ..ops.layernorm import layernorm_backward, layernorm_forward
from ..train import configure

ADAPTER_TENSORS = ("W_d", "b_d", "W_u", "b_u")
LAYERNORM_FACTS = ("sums to zero", "orthogonal to xhat")


def verdict(right, hint):
    """Print the verdict, with the hint when wrong; return it."""
    print("Right." if right else f"Not yet. Hint: {hint}")
    return right


def _gradients_from_zero_up_weight(steps):
    """The gradients of one adapter (C = 8, M = 3, float64) whose W_u starts at zero, after
    `steps` plain SGD steps on L = sum(y * R) -> {"W_d": ..., ...}."""
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    model = BertModel(config, dtype="float64")
    add_adapters(model, size=3, init_std=0.5, seed=1)
    name = "encoder.layer.0.output.adapter"
    tensors = dict(zip(ADAPTER_TENSORS, (name + p for p in
                                         (".down.weight", ".down.bias", ".up.weight", ".up.bias"))))
    model.params[tensors["W_u"]][...] = 0
    rng = np.random.default_rng(0)
    x, R = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 8))
    for step in range(steps + 1):
        model.zero_grad()
        _, cache = adapter_forward(model, name, x, "gelu")
        adapter_backward(model, name, R, cache, "gelu")
        if step < steps:
            for t in tensors.values():
                model.params[t] -= 0.1 * model.grads[t]
    return {short: model.grads[t] for short, t in tensors.items()}


def adapter_zero_up_projection(zero_at_first_step, zero_after_one_step):
    """Notebook 1, exercise 2: W_u starts at zero, W_d random. Which of "W_d", "b_d", "W_u",
    "b_u" have an all-zero gradient at the first step, and which after one optimizer step?"""
    def zero(gradients):
        return {t for t, g in gradients.items() if not np.any(g)}
    first, later = (zero(_gradients_from_zero_up_weight(steps)) for steps in (0, 1))
    if set(zero_at_first_step) != first:
        return verdict(False, "at the first step, follow dy backwards through y = x + W_u a + b_u: "
                              "what multiplies it before it reaches the down-projection?")
    return verdict(set(zero_after_one_step) == later,
                   "after one step W_u is no longer zero; which gradients was that the only "
                   "thing stopping?")


def adapter_size_for_bert_large(M):
    """Notebook 1, exercise 4: the adapter size M at which BERT-large's trained parameters
    (adapters, LayerNorms, head) are 3.6% of the base model, rounded to one decimal."""
    percent = parameter_table(config_of("bert-large-uncased"), adapter_size=M)["trained_percent_of_base"]
    direction = "larger" if percent < 3.6 else "smaller"
    return verdict(round(percent, 1) == 3.6,
                   f"M = {M} trains {percent:.2f}% of BERT-large; try a {direction} M "
                   "(each unit of M adds 2L adapters' 2C + 1 parameters)")


def layernorm_with_large_eps(surviving_fact):
    """Notebook 2, exercise 2: with eps = 1.0, which fact about LayerNorm's input gradient
    survives: "sums to zero" or "orthogonal to xhat"?"""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6)) * 3 + 1
    _, cache = layernorm_forward(x, rng.standard_normal(6), rng.standard_normal(6), eps=1.0)
    dx, _, _ = layernorm_backward(rng.standard_normal(x.shape), cache)
    holds = {"sums to zero": np.allclose(dx.sum(axis=-1), 0, atol=1e-12),
             "orthogonal to xhat": np.allclose((dx * cache["xhat"]).sum(axis=-1), 0, atol=1e-10)}
    surviving = {fact for fact, true in holds.items() if true}
    return verdict({surviving_fact} == surviving,
                   f"answer one of {LAYERNORM_FACTS}. A large eps keeps the output from "
                   "ignoring one of the two changes of x, a shift or a rescaling: which one?")


def attention_key_scale_factor(factor):
    """Notebook 2, exercise 4: with cache["key_scale"] set to ones, by what factor is the
    query gradient too large (wrong / right) in the notebook's setting, C = 8, H = 2?"""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 6, 8)) for _ in range(3))
    mask_bias = mask_to_bias(np.ones((2, 6), dtype=np.int64), "float64")
    context, cache = attention_forward(q, k, v, mask_bias, 2)
    dcontext = rng.standard_normal(context.shape)
    dq_right = attention_backward(dcontext, cache)[0]
    dq_wrong = attention_backward(dcontext, {**cache, "key_scale": np.ones_like(cache["key_scale"])})[0]
    measured = np.abs(dq_wrong).max() / np.abs(dq_right).max()
    return verdict(bool(np.isclose(factor, measured, rtol=1e-9)),
                   "the forward divides the scores by a number that depends on the head size "
                   "D = C / H; the backward must divide dS by it too")


def top_k_backward_stops(lowest_layer):
    """Notebook 6, exercise 2: with the method "top-k" and top_k=2 on the 6-layer MiniLM, which
    is the lowest layer (0 to 5) whose backward pass still runs?"""
    config = config_of("minilm-l6")
    model = BertModel(config)
    configure(model, SequenceClassificationHead(config.hidden_size, 2), "top-k", top_k=2)
    trained = {layer_of(n) for n in model.trainable_names()} - {None}
    return verdict(lowest_layer == min(trained),
                   "the backward pass stops below the lowest layer that has a weight to learn; "
                   "which layers does top-k with k = 2 unfreeze?")
