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
# # 2. Inside a BERT layer
#
# A BERT layer is two blocks, each closed by a residual add and a LayerNorm:
#
# ```
# x ─► q, k, v ─► softmax attention ─► dense ─► (adapter) ─► + x ─► LayerNorm ─► h
# h ─► dense (C→F) ─► GELU ─► dense (F→C) ─► (adapter) ─► + h ─► LayerNorm ─► y
# ```
#
# The dense (linear) layers have the textbook backward $dx = dy\,W$, $dW = dy^\top x$.
# The three pieces that take real thought are **LayerNorm**, **softmax attention** and
# **GELU**. For each we sketch the derivation, compare minibert's hand-written backward with
# finite differences (`minibert.gradcheck`), and check a consequence of the math. At the end
# the pieces are assembled into a whole layer, and its gradients are checked too.
#
# Every op in `minibert.ops` is a pair `x_forward(...) -> (out, cache)` and
# `x_backward(dout, cache) -> grads`. Gradient checks run in float64.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibert
from minibert.gradcheck import check_gradients, random_projection
from minibert.lab import exercises, provenance
from minibert.ops.activations import gelu_backward, gelu_forward
from minibert.ops.attention import (attention_backward, attention_forward, mask_to_bias,
                                    softmax_backward, softmax_forward)
from minibert.ops.layernorm import layernorm_backward, layernorm_forward

rng = np.random.default_rng(0)


def report(checks, tol=1e-6):
    """Print every relative error and fail loudly if one is above tol."""
    for name, check in checks.items():
        print(f"  {name:12s} relative error {check.error:.1e}")
    assert all(check.error <= tol for check in checks.values()), "gradient check failed"
print("Outputs made with", provenance.describe())

# %% [markdown]
# ## LayerNorm
#
# Over the hidden axis (size $C$) of each token:
#
# $$\mu = \tfrac1C\sum_i x_i,\quad r = \Big(\tfrac1C\sum_i (x_i-\mu)^2 + \epsilon\Big)^{-1/2},\quad
# \hat x = (x-\mu)\,r,\quad y = \gamma \odot \hat x + \beta.$$
#
# The parameters are easy: $d\gamma = \sum dy \odot \hat x$, $d\beta = \sum dy$ (summed over
# tokens). For the input, let $g = dy \odot \gamma$. Differentiating $\hat x_i$ through both
# $\mu$ and $r$ gives the Jacobian
#
# $$\frac{\partial \hat x_i}{\partial x_j} = r\Big(\delta_{ij} - \frac1C - \frac{\hat x_i \hat x_j}{C}\Big),$$
#
# so
#
# $$dx = r\Big(g - \operatorname{mean}(g) - \hat x\, \operatorname{mean}(g \odot \hat x)\Big).$$
#
# In words: remove from $g$ its mean and its component along $\hat x$, then scale by $r$.

# %%
T, C = 5, 6
x = rng.standard_normal((2, T, C)) * 3 + 1
gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
y, ln_cache = layernorm_forward(x, gamma, beta, eps=1e-12)
R = random_projection(y.shape, seed=1, xp=np)             # L = sum(y * R): dL/dy = R
dx, dgamma, dbeta = layernorm_backward(R, ln_cache)

loss = lambda: float((layernorm_forward(x, gamma, beta, 1e-12)[0] * R).sum())
print("LayerNorm:")
report(check_gradients(loss, {"x": x, "gamma": gamma, "beta": beta},
                       {"x": dx, "gamma": dgamma, "beta": dbeta}))

# %% [markdown]
# The formula predicts two facts we can check. LayerNorm ignores a shift of $x$ (the mean is
# removed) and a rescaling of $x$ (the spread is divided out), so its input gradient must be
# orthogonal to both directions: it sums to zero, and it is orthogonal to $\hat x$, token by
# token.

# %%
xhat = ln_cache["xhat"]
print("max |sum_i dx_i|        =", np.abs(dx.sum(axis=-1)).max())
print("max |sum_i dx_i xhat_i| =", np.abs((dx * xhat).sum(axis=-1)).max())
assert np.allclose(dx.sum(axis=-1), 0, atol=1e-12)
assert np.allclose((dx * xhat).sum(axis=-1), 0, atol=1e-10)

# %% [markdown]
# ## Softmax
#
# $p_i = e^{s_i} / \sum_j e^{s_j}$ has the Jacobian $\partial p_i/\partial s_j = p_i(\delta_{ij} - p_j)$.
# Multiplying by an upstream $dp$ never needs the $N\times N$ matrix:
#
# $$ds = p \odot \big(dp - \textstyle\sum_j dp_j\, p_j\big).$$
#
# Adding the same number to every score leaves $p$ unchanged, so $ds$ must sum to zero over
# each row. (This is why BERT's *key bias* gets an exactly zero gradient: it adds
# $q \cdot b_k$ to every score of a row.)

# %%
s = rng.standard_normal((3, 7)) * 2
p, softmax_cache = softmax_forward(s)
R = random_projection(p.shape, seed=2, xp=np)
ds = softmax_backward(R, softmax_cache)
print("softmax:")
report(check_gradients(lambda: float((softmax_forward(s)[0] * R).sum()), {"scores": s}, {"scores": ds}))
assert np.allclose(ds.sum(axis=-1), 0, atol=1e-12)
print("rows of ds sum to zero:", np.abs(ds.sum(axis=-1)).max())

# %% [markdown]
# ## Multi-head attention
#
# The hidden size $C$ is split into $H$ heads of size $D = C/H$. Per head, with queries $Q$,
# keys $K$, values $V$ of shape $(T, D)$ and the padding mask as an additive bias $m$
# (0 for real tokens, a huge negative number for padding):
#
# $$S = \frac{QK^\top}{\sqrt D} + m,\qquad P = \operatorname{softmax}_{\text{rows}}(S),\qquad O = P V.$$
#
# Backward, in reverse: $dV = P^\top dO$, $dP = dO\, V^\top$, $dS$ from the softmax rule
# above, and then, through the scaled product, $dQ = dS\,K/\sqrt D$ and $dK = dS^\top Q/\sqrt D$.
# minibert runs all heads of all sequences in one batched matmul, shapes $(B, H, T, T)$.
#
# We check it on a batch of two sequences, the second with its last two tokens padded.

# %%
B, T, C, H = 2, 6, 8, 2
q, k, v = (rng.standard_normal((B, T, C)) for _ in range(3))
attention_mask = np.array([[1, 1, 1, 1, 1, 1],
                           [1, 1, 1, 1, 0, 0]])
mask_bias = mask_to_bias(attention_mask, "float64")      # (B, 1, 1, T)

context, attn_cache = attention_forward(q, k, v, mask_bias, H)
R = random_projection(context.shape, seed=3, xp=np)
dq, dk, dv = attention_backward(R, attn_cache)
loss = lambda: float((attention_forward(q, k, v, mask_bias, H)[0] * R).sum())
print("attention:")
report(check_gradients(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv}))

# %% [markdown]
# A padded key gets attention probability exactly 0, so nothing flows back into the keys and
# values of padded positions:

# %%
probs = attn_cache["probs"]                                # (B, H, T, T)
print("attention paid to padded keys:", probs[1, :, :, 4:].max())
print("gradient at padded keys/values:", np.abs(dk[1, 4:]).max(), np.abs(dv[1, 4:]).max())
assert probs[1, :, :, 4:].max() == 0 and not dk[1, 4:].any() and not dv[1, 4:].any()
assert np.allclose(probs.sum(axis=-1), 1)

# %% [markdown]
# Here is what the attention maps look like: one row per query token, one column per key
# token, each row a probability distribution. These are random queries and keys, so there is
# no linguistic structure yet (notebook 3 shows real ones), but the padding is plain to see.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (b, h) in zip(axes, [(0, 0), (1, 1)]):
    im = ax.imshow(probs[b, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"sequence {b}, head {h}" + ("\n(last 2 tokens padded)" if b else "\n(no padding)"))
    ax.set_xlabel("key position (attended to)")
    ax.set_ylabel("query position")
fig.colorbar(im, ax=axes, label="attention probability", shrink=0.85)
plt.show()

# %% [markdown]
# ## GELU
#
# BERT's feed-forward block uses the Gaussian Error Linear Unit $\operatorname{GELU}(x) = x\,\Phi(x)$,
# with $\Phi$ the standard normal CDF, $\Phi(x) = \frac12\big(1 + \operatorname{erf}(x/\sqrt2)\big)$.
# The product rule and $\Phi' = \varphi$ (the normal density) give
#
# $$\operatorname{GELU}'(x) = \Phi(x) + x\,\varphi(x),\qquad \varphi(x) = \tfrac{1}{\sqrt{2\pi}}e^{-x^2/2}.$$
#
# The original BERT code used the tanh approximation
# $\frac12 x\big(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715x^3))\big)$, whose derivative follows
# from the chain rule through $\tanh' = 1 - \tanh^2$. Hugging Face checkpoints with
# `hidden_act: "gelu"` mean the exact erf form; minibert has both.

# %%
x = rng.standard_normal((4, 16)) * 2
R = random_projection(x.shape, seed=4, xp=np)
for form in ("erf", "tanh"):
    y, gelu_cache = gelu_forward(x, form)
    dx = gelu_backward(R, gelu_cache)
    print(f"GELU ({form} form):")
    report(check_gradients(lambda: float((gelu_forward(x, form)[0] * R).sum()), {"x": x}, {"x": dx}))

# %%
grid = np.linspace(-4, 4, 801)
ones = np.ones_like(grid)
curves = {}
for form in ("erf", "tanh"):
    y, gelu_cache = gelu_forward(grid, form)
    curves[form] = (y, gelu_backward(ones, gelu_cache))    # dy = 1 gives the derivative itself

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.8))
for form, style in (("erf", "-"), ("tanh", "--")):
    ax1.plot(grid, curves[form][0], style, label=f"GELU, {form} form")
    ax2.plot(grid, curves[form][1], style, label=f"GELU', {form} form")
ax1.plot(grid, np.maximum(grid, 0), ":", color="gray", label="ReLU")
ax1.set(title="GELU(x)", xlabel="x", ylabel="GELU(x)")
ax2.set(title="its derivative", xlabel="x", ylabel="d GELU / dx")
ax3.plot(grid, curves["erf"][0] - curves["tanh"][0], label="GELU")
ax3.plot(grid, curves["erf"][1] - curves["tanh"][1], label="GELU'")
ax3.set(title="erf form minus tanh form", xlabel="x", ylabel="difference")
for ax in (ax1, ax2, ax3):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
gap = np.abs(curves["erf"][0] - curves["tanh"][0]).max()
print(f"largest |erf - tanh| on [-4, 4]: {gap:.1e}")

# %% [markdown]
# Facts visible in the plots, checked numerically: GELU'(0) = 1/2; the derivative overshoots
# 1 (it peaks at $x = \sqrt 2$, where GELU$'' = \varphi(x)(2 - x^2)$ vanishes, at about
# 1.13) before settling to 1; and it is negative below $x \approx -0.75$, so unlike ReLU,
# GELU is not monotone. The two forms differ by less than
# $10^{-3}$ — small, but enough to move BERT's final hidden states by about $2\cdot10^{-3}$,
# which is why minibert follows the checkpoint's `hidden_act`.

# %%
d_erf = curves["erf"][1]
assert abs(d_erf[grid.size // 2] - 0.5) < 1e-12                  # grid[400] == 0
print(f"max GELU' = {d_erf.max():.4f} at x = {grid[d_erf.argmax()]:.2f}")
assert abs(grid[d_erf.argmax()] - np.sqrt(2)) < 0.01 and 1.12 < d_erf.max() < 1.13
assert gap < 1e-3
print(f"GELU has its minimum {curves['erf'][0].min():.4f} at x = {grid[curves['erf'][0].argmin()]:.2f}")
assert (d_erf[grid < -0.76] < 0).all() and (d_erf[grid > -0.75] > 0).all()

# %% [markdown]
# ## Putting it together: one whole layer
#
# `BertModel.layer_forward` chains these ops (plus dense layers, dropout and the residual
# adds) and `layer_backward` walks them in reverse. One gradient check over the layer's
# input and all sixteen of its parameter tensors (seventeen checks) proves the assembly. `check_gradients` uses
# random directional derivatives for the larger tensors, so this costs only a few dozen
# forward passes.

# %%
config = minibert.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=16,
                             max_position_embeddings=16, initializer_range=0.3)
model = minibert.BertModel(config, dtype="float64", seed=0)
x = rng.standard_normal((B, T, config.hidden_size))

out, layer_cache = model.layer_forward(0, x, mask_bias)
R = random_projection(out.shape, seed=5, xp=np)
model.zero_grad()
dx = model.layer_backward(0, R, layer_cache)
loss = lambda: float((model.layer_forward(0, x, mask_bias)[0] * R).sum())

layer_params = {n: p for n, p in model.params.items() if n.startswith("encoder.layer.0.")}
checks = check_gradients(loss, {"x": x, **layer_params}, {"x": dx, **model.grads})
worst = max(checks, key=lambda n: checks[n].error)
print(f"{len(checks)} tensors checked; worst: {worst} at {checks[worst].error:.1e}")
zero = [n for n, c in checks.items() if c.zero]
print("gradients that are exactly zero (and numerically zero too):", zero)
assert all(c.error <= 1e-6 for c in checks.values())

# %% [markdown]
# The one exactly-zero gradient is the key bias: the softmax's shift invariance at work, as
# predicted above.
#
# ## Summary
#
# * LayerNorm's input gradient is $r\,(g - \operatorname{mean} g - \hat x \operatorname{mean}(g\hat x))$:
#   the components along the shift and scale directions are removed.
# * Softmax backward is $p \odot (dp - \sum dp\,p)$; its rows sum to zero, which makes the key
#   bias's gradient exactly zero.
# * Attention backward is four matrix products around the softmax rule; padded keys get zero
#   probability and zero gradient.
# * GELU' $= \Phi + x\varphi$; the tanh approximation is within $10^{-3}$ of it but not equal.
# * Every derivation agrees with finite differences to better than $10^{-6}$, alone and
#   assembled into a Transformer layer.
#
# ## Exercises
#
# 1. Derive the LayerNorm Jacobian above by differentiating $\mu$ and $r$ separately; then show
#    $\sum_j \partial \hat x_i / \partial x_j = 0$ directly from it.
# 2. Change `eps` in `layernorm_forward` to 1.0 and rerun the check of "orthogonal to
#    $\hat x$". Which of the two facts survives, and why? Check with
#    `exercises.layernorm_with_large_eps("sums to zero")` or `("orthogonal to xhat")`.
# 3. Replace `mask_to_bias` by a bias of $-10$ (instead of the most negative float) for padded
#    keys. How much attention do the padded tokens get now? Does the gradient check still pass?
# 4. Check numerically that `attention_backward` with `cache["key_scale"]` set to ones no
#    longer matches finite differences of the scaled forward — and by what factor it is off.
#    Check the factor by which the query gradient is too large with
#    `exercises.attention_key_scale_factor(factor)`.
# 5. Train-time dropout sits inside attention: `attention_forward(q, k, v, mask_bias, H,
#    keep=None, dropout_p=0.0)` takes a boolean mask `keep` of shape (B, H, T, T), which
#    `minibert.ops.dropout.dropout_mask(shape, p, rng, dtype)` draws (the model draws one per
#    step), and the rate it was drawn with. Write a gradient check with dropout on: which
#    random state must be held fixed, and how?
