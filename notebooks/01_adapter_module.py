# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The adapter module
#
# Fine-tuning BERT on a task changes all of its weights, so every new task costs a whole new
# copy of the model. Houlsby et al. (2019, ["Parameter-Efficient Transfer Learning for
# NLP"](https://arxiv.org/abs/1902.00751)) keep the pretrained network frozen and insert a small
# **adapter** into every layer; only the adapters (plus the LayerNorms and a task head) learn.
#
# An adapter maps a hidden state $x \in \mathbb{R}^C$ to
#
# $$y = x + W_u\, f(W_d\, x + b_d) + b_u,$$
#
# a *bottleneck*: down-projection $W_d \in \mathbb{R}^{M\times C}$ to a small size $M$, a
# nonlinearity $f$ (GELU), up-projection $W_u \in \mathbb{R}^{C\times M}$ back to $C$, and an
# internal skip connection. This notebook takes the module apart:
#
# 1. its forward pass, in minibert;
# 2. its backward pass, derived by hand and checked against finite differences;
# 3. its parameter count, $2CM + C + M$;
# 4. why a *tiny* random initialisation makes it start as the identity.
#
# Shapes use minibert's vocabulary: B batch, T tokens, C hidden size, M adapter size.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibert
from minibert.adapters import adapter_backward, adapter_forward, adapter_parameter_count
from minibert.gradcheck import check_gradients, random_projection
from minibert.lab import exercises, provenance

np.set_printoptions(precision=4, suppress=True)
print("Outputs made with", provenance.describe())

# %% [markdown]
# ## The forward pass
#
# Adapters live inside a `BertModel`: `minibert.add_adapters` gives every layer two of them,
# one on the attention block's output and one on the feed-forward block's output, each placed
# after the block's output projection and before its residual add and LayerNorm (notebook 2
# draws the layer). To look at a
# single adapter closely, we build a tiny random BERT (C = 8) in float64 and add adapters of
# size M = 3. The `init_std` is large here (0.5) so that every number is visibly non-zero;
# the real default is 1e-3 (the last section explains why).

# %%
config = minibert.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=16,
                             max_position_embeddings=16)
tiny = minibert.BertModel(config, dtype="float64")
names = minibert.add_adapters(tiny, size=3, init_std=0.5, seed=1)
for name in names:
    if name.startswith("encoder.layer.0.output.adapter"):
        print(f"{name:48s} {tiny.params[name].shape}")

# %% [markdown]
# An adapter is just four named tensors in `model.params`. `adapter_forward(module, name, x,
# activation)` reads them by name and returns the output and a cache for the backward pass.
# We check it against the formula above, written out in NumPy.

# %%
name = "encoder.layer.0.output.adapter"
Wd, bd = tiny.params[name + ".down.weight"], tiny.params[name + ".down.bias"]   # (M, C), (M,)
Wu, bu = tiny.params[name + ".up.weight"], tiny.params[name + ".up.bias"]       # (C, M), (C,)

x = np.random.default_rng(0).standard_normal((2, 4, config.hidden_size))        # (B, T, C)
y, cache = adapter_forward(tiny, name, x, "gelu")

gelu_erf = lambda h: 0.5 * h * (1.0 + minibert.backend.erf(h / np.sqrt(2.0)))
y_by_formula = x + gelu_erf(x @ Wd.T + bd) @ Wu.T + bu
assert np.allclose(y, y_by_formula, rtol=1e-12, atol=1e-12)
print("output shape", y.shape, "- matches x + W_u f(W_d x + b_d) + b_u")

# %% [markdown]
# ## The backward pass, by hand
#
# Write the forward as four steps, for one position (the batch and token axes just add up):
#
# $$h = W_d x + b_d,\qquad a = f(h),\qquad u = W_u a + b_u,\qquad y = x + u.$$
#
# Given $g = \partial L/\partial y$ (same shape as $y$), walk the steps backwards:
#
# * **Skip connection.** $y = x + u$, so $\partial L/\partial u = g$ and $g$ also flows
#   straight into $\partial L/\partial x$: the skip passes $dy$ through untouched.
# * **Up-projection.** $u = W_u a + b_u$:
#   $\;\partial L/\partial W_u = \sum g\, a^\top,\;\; \partial L/\partial b_u = \sum g,\;\;
#   \partial L/\partial a = W_u^\top g$.
# * **Nonlinearity** (elementwise): $\partial L/\partial h = \partial L/\partial a \odot f'(h)$.
# * **Down-projection.** $h = W_d x + b_d$:
#   $\;\partial L/\partial W_d = \sum \frac{\partial L}{\partial h}\, x^\top,\;\;
#   \partial L/\partial b_d = \sum \frac{\partial L}{\partial h},$
#   and the input gets the bottleneck's share *added to* the skip's:
#
# $$\frac{\partial L}{\partial x} = g + W_d^\top \frac{\partial L}{\partial h}.$$
#
# The sums run over every batch and token position. For the GELU $f(h) = h\,\Phi(h)$ the
# derivative is $f'(h) = \Phi(h) + h\,\varphi(h)$ (notebook 2 derives it).
#
# To test a backward pass we need a scalar loss. $L = \sum_{b,t,c} y_{btc} R_{btc}$ with a fixed
# random $R$ has $\partial L / \partial y = R$ exactly, so we can feed `dy = R` into
# `adapter_backward`.

# %%
R = random_projection(y.shape, seed=2, xp=np)          # dL/dy for L = sum(y * R)
tiny.zero_grad()
dx = adapter_backward(tiny, name, R, cache, "gelu")    # parameter gradients land in tiny.grads
print(sorted(n for n in tiny.grads))

# %% [markdown]
# The derivation above, line by line in NumPy, must give exactly what minibert computed:

# %%
Phi = lambda h: 0.5 * (1.0 + minibert.backend.erf(h / np.sqrt(2.0)))
phi = lambda h: np.exp(-0.5 * h * h) / np.sqrt(2.0 * np.pi)

h = x @ Wd.T + bd                                      # (B, T, M)
a = gelu_erf(h)
g = R                                                  # dL/dy = dL/du
dWu, dbu = np.einsum("btc,btm->cm", g, a), g.sum(axis=(0, 1))
da = g @ Wu                                            # W_u^T g at every position
dh = da * (Phi(h) + h * phi(h))
dWd, dbd = np.einsum("btm,btc->mc", dh, x), dh.sum(axis=(0, 1))
dx_by_hand = g + dh @ Wd                               # skip + bottleneck

for label, mine, theirs in [("x", dx_by_hand, dx), ("up.weight", dWu, tiny.grads[name + ".up.weight"]),
                            ("up.bias", dbu, tiny.grads[name + ".up.bias"]),
                            ("down.weight", dWd, tiny.grads[name + ".down.weight"]),
                            ("down.bias", dbd, tiny.grads[name + ".down.bias"])]:
    assert np.allclose(mine, theirs, rtol=1e-12, atol=1e-12), label
print("hand derivation == minibert's adapter_backward for x and all four parameters")

# %% [markdown]
# ## A numerical gradient check
#
# Agreeing with our own derivation proves nothing if the derivation is wrong. The independent
# test is a finite difference: for a tensor $p$ and a direction $v$,
#
# $$\frac{L(p + \epsilon v) - L(p - \epsilon v)}{2\epsilon} = \nabla_p L \cdot v + O(\epsilon^2).$$
#
# `minibert.gradcheck.check_gradients` does this in float64, element by element for small
# tensors and along random directions for large ones, and reports the relative error
# $\|\text{numeric} - \text{analytic}\| / \max(\|\text{numeric}\|, \|\text{analytic}\|)$.
# It perturbs the tensors in place, so the loss function just reads them.

# %%
def loss():
    out, _ = adapter_forward(tiny, name, x, "gelu")
    return float((out * R).sum())

tensors = {"x": x, **{f"{name}.{p}": tiny.params[f"{name}.{p}"]
                      for p in ("down.weight", "down.bias", "up.weight", "up.bias")}}
checks = check_gradients(loss, tensors, {"x": dx, **tiny.grads})
for tensor_name, check in checks.items():
    print(f"{tensor_name:40s} relative error {check.error:.1e}")
assert all(check.error < 1e-6 for check in checks.values())

# %% [markdown]
# ### Why not initialise at exactly zero?
#
# With $W_d = W_u = 0$ and zero biases, $h = 0$ and $a = f(0) = 0$. Then
# $\partial L/\partial W_u = \sum g\,a^\top = 0$ and $\partial L/\partial h = (W_u^\top g)\odot f'(h) = 0$,
# so $\partial L/\partial W_d = 0$ too: only $b_u$ would learn, and since $a$ stays 0, $W_u$
# never does. The two projections are stuck. A tiny random init breaks this symmetry
# while still starting (almost) at the identity.

# %%
zero = minibert.BertModel(config, dtype="float64")
minibert.add_adapters(zero, size=3, init_std=0.0)
out, zero_cache = adapter_forward(zero, name, x, "gelu")
zero.zero_grad()
dx_zero = adapter_backward(zero, name, R, zero_cache, "gelu")
assert np.array_equal(out, x) and np.array_equal(dx_zero, R)   # identity, and dy passes through
for p in ("down.weight", "down.bias", "up.weight", "up.bias"):
    print(f"|grad {p:11s}| = {np.abs(zero.grads[f'{name}.{p}']).max():.3g}")
assert not zero.grads[name + ".up.weight"].any() and not zero.grads[name + ".down.weight"].any()

# %% [markdown]
# ## How many parameters?
#
# The down-projection has $MC$ weights and $M$ biases, the up-projection $CM$ weights and $C$
# biases: $2CM + C + M$ per adapter. We count the tensors of one adapter of the tiny model and
# compare with `adapter_parameter_count`.

# %%
C, M = config.hidden_size, 3
counted = sum(tiny.params[f"{name}.{p}"].size for p in ("down.weight", "down.bias", "up.weight", "up.bias"))
assert counted == adapter_parameter_count(C, M) == 2 * C * M + C + M
print(f"tiny model: C={C}, M={M}: {counted} parameters per adapter")

# %% [markdown]
# For BERT-base (C = 768, L = 12 layers, two adapters each) with M = 64, the size the paper
# uses most. `minibert.accounting.parameter_table` does the whole bookkeeping from a config
# alone, no weights needed:

# %%
from minibert.accounting import format_table, parameter_table
from minibert.named_models import config_of

per_adapter = adapter_parameter_count(768, 64)
print(f"one BERT-base adapter at M=64: {per_adapter:,d} parameters")
assert per_adapter == 2 * 768 * 64 + 768 + 64 == 99_136

base = config_of("bert-base-uncased")
table = parameter_table(base, adapter_size=64)
assert table["adapters"] == 24 * 99_136
print(format_table(table))

# %% [markdown]
# About 2.4M adapter parameters against 110M in the base model: with its LayerNorms and head,
# each new task adds about 2.2% of the model instead of another full copy.
#
# ## Near-identity initialisation
#
# The adapted network should *start* as the pretrained one, so that training begins from what
# pretraining learned. With weights drawn from a (truncated) normal of standard deviation
# $\sigma$ and zero biases, $h = W_d x$ has entries of size $\sigma\|x\|$, GELU is close to
# $h/2$ near zero, and so
#
# $$\|y - x\| = \|W_u f(W_d x)\| \approx \tfrac12\,\sigma^2 \sqrt{CM}\,\|x\| :$$
#
# the relative change grows like $\sigma^2$ — slope 2 on a log-log plot — until $\sigma$ is
# large enough for the nonlinearity to bend it. We measure it for one adapter of the real
# minilm-l6 size (C = 384, M = 64), and for the whole pretrained minilm-l6 with all twelve
# adapters added, on a real sentence. float64 keeps the tiny changes above round-off.

# %%
model = minibert.BertModel.from_pretrained("minilm-l6", dtype="float64")
tok = minibert.Tokenizer.from_pretrained("minilm-l6")
enc = tok(["Adapters start out as the identity, so the network starts as the pretrained one."])
seq_base, _ = model.forward(**enc)

C = model.config.hidden_size
x_real = seq_base                                      # a real hidden state (1, T, C) as input
stds = np.logspace(-7, 0, 15)
adapter_change, model_change = [], []
for std in stds:
    set_name = f"std={std:.0e}"
    minibert.add_adapters(model, size=64, init_std=float(std), name=set_name, seed=0)
    y_one, _ = adapter_forward(model, "encoder.layer.0.output.adapter", x_real, "gelu")
    adapter_change.append(np.linalg.norm(y_one - x_real) / np.linalg.norm(x_real))
    seq, _ = model.forward(**enc)
    model_change.append(np.linalg.norm(seq - seq_base) / np.linalg.norm(seq_base))
minibert.set_active_adapters(model, None)              # back to the plain pretrained model
adapter_change, model_change = np.array(adapter_change), np.array(model_change)

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(stds, adapter_change, "o-", label="one adapter: ||adapter(x) - x|| / ||x||")
ax.loglog(stds, model_change, "s-", label="whole minilm-l6, 12 adapters: final hidden states")
ax.loglog(stds, 0.5 * stds**2 * np.sqrt(C * 64), "k--", lw=1,
          label=r"$\frac{1}{2}\sigma^2\sqrt{CM}$ (small-$\sigma$ estimate)")
for std, text in [(1e-3, "code default 1e-3"), (1e-2, "paper 1e-2")]:
    ax.axvline(std, color="gray", ls=":", lw=1)
    ax.text(std * 1.15, 1e-12, text, rotation=90, color="gray", va="bottom")
ax.set_xlabel(r"adapter init std $\sigma$")
ax.set_ylabel("relative change of the output")
ax.set_title("Near-identity init: the change grows like $\\sigma^2$")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Both curves follow the estimate with slope 2. Above $\sigma \approx 0.1$ the whole model's
# curve flattens: each layer ends in a LayerNorm, so the output cannot grow, it can only become
# a different vector (a relative change near $\sqrt 2$ means "unrelated to the original").
#
# We check the slope of the small-$\sigma$ part numerically: it should be 2.

# %%
small = stds <= 1e-2
slope_adapter = np.polyfit(np.log(stds[small]), np.log(adapter_change[small]), 1)[0]
slope_model = np.polyfit(np.log(stds[small]), np.log(model_change[small]), 1)[0]
print(f"log-log slope for sigma <= 1e-2: one adapter {slope_adapter:.3f}, whole model {slope_model:.3f}")
assert abs(slope_adapter - 2) < 0.05 and abs(slope_model - 2) < 0.1
at_default = model_change[np.argmin(np.abs(np.log(stds / 1e-3)))]
print(f"at sigma = 1e-3 the whole model's output moves by {at_default:.1e} of its norm")
assert at_default < 1e-3

# %% [markdown]
# At the default $\sigma = 10^{-3}$ the adapted model's outputs differ from the pretrained
# model's by about $10^{-4}$ of their norm: it *is* the pretrained model, for all practical
# purposes, yet every adapter weight receives a non-zero gradient. At $\sigma \approx 1$ the adapters rewrite the
# hidden states completely and pretraining is lost before training starts — notebook 5 shows
# what that does to the score.
#
# ## Summary
#
# * An adapter is $x + W_u f(W_d x + b_d) + b_u$: a bottleneck $C \to M \to C$ with a skip
#   connection; in minibert it is four named tensors and an `adapter_forward` /
#   `adapter_backward` pair.
# * Backward: the skip passes $dy$ straight through; the chain rule through the up-projection,
#   the nonlinearity and the down-projection adds the bottleneck's share. Our hand derivation
#   equals minibert's code, and both agree with finite differences to $< 10^{-6}$.
# * Cost: $2CM + C + M$ parameters per adapter, 99,136 for BERT-base at M = 64, about 2% of
#   the model for all 24.
# * Init: tiny random weights make the adapter the identity up to $O(\sigma^2)$; exact zeros
#   would leave both projections without gradient.
#
# ## Exercises
#
# 1. Repeat the gradient check with `"relu"`, `"tanh"` and `"gelu_new"` as the activation.
#    Then show that an all-zero adapter is stuck with each of them. What property of $f$
#    would let $W_u$ receive a gradient at the first step?
# 2. Initialise only $W_u$ at zero and $W_d$ randomly. Which gradients are zero at the first
#    step, and which become non-zero after one optimizer step? Check with
#    `exercises.adapter_zero_up_projection(zero_at_first_step={...}, zero_after_one_step={...})`,
#    naming the tensors `"W_d"`, `"b_d"`, `"W_u"`, `"b_u"`.
# 3. Derive the $\frac12\sigma^2\sqrt{CM}$ estimate carefully, including the truncation of
#    the normal at $\pm 2\sigma$ (it shrinks the standard deviation to about $0.88\sigma$).
#    Does the dashed line then fit better?
# 4. With `parameter_table`, find the adapter size M at which BERT-large's adapters cost
#    3.6% of the model, the paper's GLUE figure. (`config_of("bert-large-uncased")`.)
#    Check with `exercises.adapter_size_for_bert_large(M)`.
# 5. Where else could the skip connection go? Write $y = W_u f(W_d x)$ without it, and explain
#    why near-identity init would then be impossible.
