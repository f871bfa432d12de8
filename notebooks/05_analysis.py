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
# # 5. Analysis: init scale and layer ablation
#
# The analysis of Houlsby et al. (2019, Figure 6) asks two questions about trained adapters:
#
# 1. **How much does the initialisation matter?** They report that adapters train well for
#    init standard deviations up to about $10^{-2}$ and degrade above that.
# 2. **Which adapters matter?** After training, they *remove* the adapters of a span of layers,
#    without retraining, and score the network again. Removing one layer's adapters costs
#    little; removing all of them sends the model back to the majority class, because the
#    head and the LayerNorms were trained to work with the adapters.
#
# We repeat both on TREC-6 with minilm-l6 (6 layers), on runs small enough for a CPU in a
# couple of minutes: the numbers are noisier than the paper's, the shape is the point.
#
# As in notebook 4, two settings differ from `minibert train`'s defaults. The learning rate is
# 3e-3, the paper's largest, not 1e-3 (set for 3 epochs over all 5,452 questions): these runs
# have 60 steps. The head reads the pooled `[CLS]` (`SequenceClassificationHead`'s default, as
# in the paper), where `minibert train` reads the mean of the token vectors on minilm-l6.

# %%
import math
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import minibert
import minibert.speed
from minibert.adapters import disable_adapter_layers
from minibert.data import tasks
from minibert.data.batching import epoch_batches
from minibert.lab import provenance
from minibert.runs import evaluate, predict
from minibert.train import TrainSettings, configure, training_loop

minibert.speed.enable()     # the ops shared out over the CPU cores, as `minibert train` runs them

SEED = 0
TRAIN_EXAMPLES, EPOCHS, BATCH_SIZE = 240, 2, 8
LEARNING_RATE = 3e-3        # a short run: notebook 4's rate (`minibert train`: 1e-3)
MAX_SEQ_LENGTH = 32
EVAL_EXAMPLES = 96

spec = tasks.get_task("TREC-6")
all_train = tasks.load_examples("TREC-6", "train")
all_test = tasks.load_examples("TREC-6", "test")
train_examples = [all_train[i] for i in
                  np.random.default_rng(SEED).choice(len(all_train), TRAIN_EXAMPLES, replace=False)]
eval_examples = [all_test[i] for i in
                 np.random.default_rng(SEED + 1).choice(len(all_test), EVAL_EXAMPLES, replace=False)]
eval_examples.sort(key=lambda e: len(e.text_a))     # similar lengths batched together: less padding
counts = Counter(e.label for e in eval_examples)
majority_label, majority_count = counts.most_common(1)[0]
majority = majority_count / len(eval_examples)
print(f"train on {len(train_examples)} questions, score on {len(eval_examples)} test questions; "
      f"majority class {spec.labels[majority_label]} = {majority:.3f}")

tok = minibert.Tokenizer.from_pretrained("minilm-l6")
base = minibert.BertModel.from_pretrained("minilm-l6")     # one frozen base for every run
EVAL_BATCH_SIZE = 64
steps_per_epoch = math.ceil(len(train_examples) / BATCH_SIZE)


def batches(epoch, start):
    return epoch_batches(tok, train_examples, epoch, seed=SEED, batch_size=BATCH_SIZE,
                         max_length=MAX_SEQ_LENGTH, start=start)


def score(model, head):
    return evaluate(model, head, tok, "TREC-6", eval_examples, EVAL_BATCH_SIZE, MAX_SEQ_LENGTH)["accuracy"]
print("Outputs made with", provenance.describe())

# %% [markdown]
# Every run below adds its own named adapter set to the *same* base model. Each set owns its
# adapters and its own copies of the LayerNorms, so training one never touches another, and
# `minibert.set_active_adapters` switches between them.

# %%
def train_adapters(name, init_std):
    minibert.add_adapters(base, size=64, init_std=init_std, name=name, seed=SEED)
    base.seed(SEED)
    head = minibert.SequenceClassificationHead(base.config.hidden_size, spec.num_labels, seed=SEED)
    configure(base, head, "adapters")
    losses = []
    training_loop(base, head, batches, TrainSettings(lr=LEARNING_RATE, epochs=EPOCHS),
                  steps_per_epoch, on_step=lambda progress, loss, examples: losses.append(loss))
    return head, np.array(losses)

# %% [markdown]
# ## 1. Init scale
#
# Notebook 1 showed that an adapter changes its input by about $\frac12\sigma^2\sqrt{CM}$ of
# its norm: at $\sigma = 1$ the pretrained representations are scrambled before training even
# starts. We train one adapter set per $\sigma$ with identical data, steps and seed.

# %%
stds = [1e-4, 1e-2, 1e-1, 1.0]
init_runs = {}
for std in stds:
    head, losses = train_adapters(f"std={std:g}", std)
    init_runs[std] = dict(head=head, losses=losses, accuracy=score(base, head))
    print(f"init std {std:6g}: first-epoch loss {losses[:steps_per_epoch].mean():.3f}, "
          f"last-epoch loss {losses[-steps_per_epoch:].mean():.3f}, "
          f"accuracy {init_runs[std]['accuracy']:.3f}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
accuracies = [init_runs[s]["accuracy"] for s in stds]
ax1.semilogx(stds, accuracies, "o-", label="adapters, trained briefly")
ax1.axhline(majority, color="gray", ls="--", lw=1, label="majority class")
ax1.axvspan(min(stds) / 2, 1e-2, color="C2", alpha=0.08, label="paper: robust up to 1e-2")
ax1.set(xlabel="adapter init std $\\sigma$", ylabel=f"test accuracy ({len(eval_examples)} questions)",
        title="score vs init scale", ylim=(0, 1))
ax1.legend()
for std in stds:
    losses = init_runs[std]["losses"]
    ax2.plot(np.arange(1, len(losses) + 1), losses, label=f"$\\sigma$ = {std:g}")
ax2.axhline(np.log(6), color="gray", ls="--", lw=1, label="ln 6")
ax2.set(xlabel="optimizer step", ylabel="training loss", title="learning curves")
ax2.legend()
fig.tight_layout()
plt.show()

# %%
small, large = init_runs[1e-2]["accuracy"], init_runs[1.0]["accuracy"]
assert small > large + 0.2, "a small init should train clearly better than a huge one"
print(f"sigma = 1e-2 scores {small:.3f}; sigma = 1 scores {large:.3f}")

# %% [markdown]
# At $\sigma = 0.1$ and $1$ the network starts far from the pretrained one (notebook 1: a
# relative change of order one) and the short budget is not enough to repair the damage. Among
# the small initialisations, $10^{-4}$ may lag a little in a run this short: Adam moves each
# weight by about the learning rate per step, so tiny adapters need a few steps to grow; the
# paper's longer runs wash that out.
#
# ## 2. Layer ablation
#
# Take the adapters trained from $\sigma = 10^{-2}$ and remove those of layers $i..j$ — both
# adapters of each layer in the span — keeping everything else as trained (the other
# adapters, the LayerNorms, the head).
#
# How does the model know whether a layer has an adapter? `BertModel.layer_forward` ends each
# block with `_block_end(site, o, x)`, which is the plain LayerNorm(o + x) when
# `site + ".adapter.down.weight"` is not in `model.params`. So deleting a layer's adapter
# tensors from `model.params` removes them from the forward pass — that is all
# `disable_adapter_layers(model, layers)` does — while the adapter set keeps its own copy, from
# which `set_active_adapters` puts them back.

# %%
name = "std=0.01"
head = init_runs[1e-2]["head"]
L = base.config.num_hidden_layers


def remove_adapters(layers):
    """The trained set, without the adapters of `layers`."""
    minibert.set_active_adapters(base, name)
    disable_adapter_layers(base, layers)


remove_adapters([])
assert sum(".adapter." in n for n in base.params) == 4 * 2 * L     # 4 tensors, 2 adapters a layer
full_score = score(base, head)
ablation = np.full((L, L), np.nan)                    # [first removed layer i, last removed layer j]
for i in range(L):
    for j in range(i, L):
        remove_adapters(range(i, j + 1))
        ablation[i, j] = score(base, head)
remove_adapters(range(L))
assert not any(".adapter." in n for n in base.params)
predictions = predict(base, head, tok, eval_examples, 64, MAX_SEQ_LENGTH)
minibert.set_active_adapters(base, name)              # restore the trained set
assert score(base, head) == full_score

print(f"all adapters:  {full_score:.3f}")
print(f"none (0..{L - 1} removed): {ablation[0, L - 1]:.3f}   majority class: {majority:.3f}")
top, top_count = Counter(predictions.tolist()).most_common(1)[0]
print(f"with every adapter removed, the model answers {spec.labels[top]} for "
      f"{top_count / len(predictions):.0%} of the questions")

# %%
fig, ax = plt.subplots(figsize=(6.5, 5.5))
im = ax.imshow(ablation, cmap="RdYlGn", vmin=min(majority, np.nanmin(ablation)) - 0.02,
               vmax=full_score)
for i in range(L):
    for j in range(i, L):
        ax.text(j, i, f"{ablation[i, j]:.2f}", ha="center", va="center", fontsize=9)
ax.set(xticks=range(L), yticks=range(L), xlabel="last layer removed (j)",
       ylabel="first layer removed (i)",
       title=f"accuracy with the adapters of layers i..j removed\n"
             f"(all kept: {full_score:.2f}; majority class: {majority:.2f})")
fig.colorbar(im, ax=ax, label="test accuracy")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the heatmap along its diagonal (one layer removed at a time) and towards the top-right
# corner (more layers removed). A single layer's adapters can be dropped at a small cost;
# removing all of them (top right) falls far below the trained model, to the majority class or
# below: the trained LayerNorms and head only make sense together with the adapters. The
# paper also finds that the lower layers' adapters matter less than the upper ones'; compare
# the two halves:

# %%
single = np.diag(ablation)
print("one layer removed:", {l: round(float(s), 3) for l, s in enumerate(single)})
print(f"lower half (layers 0-{L // 2 - 1}) removed: {ablation[0, L // 2 - 1]:.3f}; "
      f"upper half (layers {L // 2}-{L - 1}) removed: {ablation[L // 2, L - 1]:.3f}")
print(f"all removed: {ablation[0, L - 1]:.3f}, majority class: {majority:.3f}")
assert ablation[0, L - 1] < full_score - 0.2
assert ablation[0, L - 1] < majority + 0.1

# %% [markdown]
# ## Summary
#
# * Init scale: small $\sigma$ (up to about $10^{-2}$) give the same training; $\sigma = 1$
#   scrambles the pretrained features and trains worse — near-identity init matters.
# * Ablation needs no retraining: deleting a layer's adapter tensors from `model.params`
#   turns that adapter into the identity, and `set_active_adapters` restores the set.
# * Removing one layer's adapters costs little; removing them all collapses the model
#   towards the majority class.
# * Several adapter sets live on one frozen base; this whole notebook loaded the pretrained
#   weights once.
#
# ## Exercises
#
# 1. Add $\sigma = 10^{-6}$ and $\sigma = 0.3$ to the sweep. Where does the score start to
#    fall? Repeat with another `SEED`: how large is the run-to-run spread?
# 2. Train with `add_adapters(..., leave_out=[0, 1, 2])` — adapters only in the top three
#    layers — and compare with removing the lower adapters after training. Which is better,
#    and why?
# 3. Remove only the attention-block adapters (`attention.output.adapter`) of every layer,
#    then only the feed-forward ones. Which matter more?
# 4. The paper finds lower-layer adapters matter less than upper ones. Train longer
#    (`EPOCHS = 5`, `TRAIN_EXAMPLES = 640`) and check whether the heatmap shows it here.
# 5. Instead of removing adapters, *scale* their output by $\alpha \in [0, 1]$ (multiply the
#    up-projection's weight and bias). Plot accuracy against $\alpha$.
