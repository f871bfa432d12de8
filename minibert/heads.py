"""Task heads: what a task reads from the model's outputs, and its loss.

SequenceClassificationHead, on one vector per sequence: dropout -> linear -> loss. Its
`pooling` says which vector: "cls", the pooler's tanh(W h_[CLS]) (BERT's, as adapter-bert reads
it), "mean", the mean of the last layer's token states over the attention mask (what a
sentence-transformers checkpoint was trained to give; the pooler is not used), or "cls_token",
the last layer's [CLS] state itself. layers=2 puts a dense C -> C layer, tanh and dropout
before the linear one (AdapterHub's default classification head, on "cls_token").
num_labels > 1: classification with softmax cross-entropy; num_labels == 1: regression
(STS-B) with mean squared error -- the convention of Hugging Face's
BertForSequenceClassification, whose parameter names ("classifier.*") the head shares.

QuestionAnsweringHead, on the sequence output: a linear layer C -> 2 gives every token a start
and an end score (Hugging Face's BertForQuestionAnswering, "qa_outputs.*"; no dropout, as in
BERT's run_squad.py).

All read a training batch the same way, `forward_batch(seq, pooled, batch)`, and
`backward_batch()` returns the gradients of the model's two outputs (dseq, dpooled), either
None, so the trainer needs no task-specific code.
"""
from typing import NamedTuple

from .backend import host_generator
from .module import Module
from .ops import activations, dropout, losses, pooling, span

POOLINGS = ("cls", "mean", "cls_token")


class HeadCache(NamedTuple):
    pooling: dict | tuple | None    # mean pooling's; cls_token's shape (B, T, C); None for cls
    dropout: tuple | None
    hidden: tuple | None            # a two-layer head's dense, tanh and second dropout
    linear: tuple
    loss: tuple | None              # None when the forward had no labels


class SpanCache(NamedTuple):
    linear: dict
    span: dict
    losses: tuple | None            # the start and end cross-entropies' caches; None: no loss


class SequenceClassificationHead(Module):
    def __init__(self, hidden_size, num_labels, dropout_prob=0.1, initializer_range=0.02,
                 device=None, dtype="float32", seed=0, pooling="cls", pooling_reason=None,
                 layers=1):
        super().__init__(device, dtype, seed)
        if layers not in (1, 2):
            raise ValueError(f"layers: expected 1 or 2, found {layers!r}")
        self.layers = layers
        if layers == 2:                 # its own generator: the classifier's draws stay as they are
            init = host_generator(seed + 1)
            self.params["pre_classifier.weight"] = self._normal(init, (hidden_size, hidden_size),
                                                                initializer_range)
            self.params["pre_classifier.bias"] = self.device.xp.zeros((hidden_size,),
                                                                      dtype=dtype)
        if num_labels < 1:
            raise ValueError(f"num_labels: expected >= 1, found {num_labels}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, found {pooling!r}")
        self.num_labels = num_labels
        self.pooling = pooling
        self.pooling_reason = pooling_reason        # why, in words, kept in the adapter file
        self.dropout_prob = dropout_prob
        self.params["classifier.weight"] = self._normal(
            host_generator(seed), (num_labels, hidden_size), initializer_range)
        self.params["classifier.bias"] = self.device.xp.zeros((num_labels,), dtype=dtype)

    @property
    def is_regression(self):
        return self.num_labels == 1

    @property
    def reads_pooled(self):
        """Whether the head reads the model's pooled output; if not, the pooler is unused."""
        return self.pooling == "cls"

    def forward(self, x, labels=None, attention_mask=None):
        """x, what the head's pooling reads -- the model's pooled output (B, C) for "cls", its
        sequence output (B, T, C) for "mean" (over attention_mask (B, T); every token when
        None) and "cls_token" -> logits (B, K) [or predictions (B,) for regression], and the
        mean loss against labels (B,) when labels are given (else None)."""
        feature, pooling_cache = self._pool(x, attention_mask)
        rng = self.rng if self.training else None
        h, dropout_cache = dropout.dropout_forward(feature, self.dropout_prob, rng)
        hidden = None
        if self.layers == 2:            # AdapterHub's default: dense, tanh, dropout first
            h, dense_cache = self.linear(h, "pre_classifier")
            h, tanh_cache = activations.tanh_forward(h)
            h, second_dropout = dropout.dropout_forward(h, self.dropout_prob, rng)
            hidden = (dense_cache, tanh_cache, second_dropout)
        logits, linear_cache = self.linear(h, "classifier")
        if self.is_regression:
            logits = logits[:, 0]
        self._cache = HeadCache(pooling_cache, dropout_cache, hidden, linear_cache, None)
        if labels is None:
            return logits, None
        labels = self._check_labels(labels, logits.shape[0])
        if self.is_regression:
            loss, loss_cache = losses.mse_forward(logits, labels)
        else:
            loss, loss_cache = losses.cross_entropy_forward(logits, labels)
        self._cache = self._cache._replace(loss=loss_cache)
        return logits, loss

    def backward(self, dloss=1.0):
        """Backward of the last forward's loss -> self.grads; returns the gradient of the x it
        read: dpooled (B, C) for "cls", dseq (B, T, C) for the other poolings."""
        cache = self._cache
        if cache.loss is None:
            raise RuntimeError("head.backward: the last forward had no labels, so there is no loss")
        if self.is_regression:
            dlogits = losses.mse_backward(dloss, cache.loss)[:, None]
        else:
            dlogits = losses.cross_entropy_backward(dloss, cache.loss)
        dh = self.linear_backward(dlogits, cache.linear, "classifier")
        if cache.hidden is not None:
            dense_cache, tanh_cache, second_dropout = cache.hidden
            dh = activations.tanh_backward(dropout.dropout_backward(dh, second_dropout),
                                           tanh_cache)
            dh = self.linear_backward(dh, dense_cache, "pre_classifier")
        return self._unpool(dropout.dropout_backward(dh, cache.dropout), cache.pooling)

    def _pool(self, x, attention_mask):
        # x -> (the feature (B, C) the classifier reads, the pooling's cache)
        x = self.device.asarray(x)
        wanted = (2, "the model's pooled output (B, C)") if self.reads_pooled else \
            (3, "the model's sequence output (B, T, C)")
        if x.ndim != wanted[0]:
            raise ValueError(f"x: pooling {self.pooling!r} reads {wanted[1]}, found shape "
                             f"{tuple(x.shape)}")
        if self.pooling == "cls":
            return x, None
        if self.pooling == "cls_token":
            return x[:, 0], x.shape
        mask = (self.device.xp.ones(x.shape[:2], dtype=x.dtype) if attention_mask is None
                else self.device.asarray(attention_mask))
        return pooling.mean_pool_forward(x, mask)

    def _unpool(self, dfeature, cache):
        if self.pooling == "cls":
            return dfeature
        if self.pooling == "cls_token":
            dseq = self.device.xp.zeros(cache, dtype=dfeature.dtype)
            dseq[:, 0] = dfeature
            return dseq
        return pooling.mean_pool_backward(dfeature, cache)

    def metadata(self):
        """What an adapter file says of the head, enough to build it again (head_from_metadata)."""
        info = {"num_labels": self.num_labels, "dropout_prob": self.dropout_prob,
                "pooling": self.pooling, **({"layers": 2} if self.layers == 2 else {})}
        return info if self.pooling_reason is None else {**info,
                                                         "pooling_reason": self.pooling_reason}

    def forward_batch(self, seq, pooled, batch):
        """forward on the model's outputs for a batch dict (its "labels", when there; its
        "attention_mask" for mean pooling): on pooled or on seq, as the pooling reads."""
        return self.forward(pooled if self.reads_pooled else seq, batch.get("labels"),
                            batch.get("attention_mask"))

    def backward_batch(self, dloss=1.0):
        """(dseq, dpooled) of the last forward_batch's loss: one of them, the one it read."""
        dx = self.backward(dloss)
        return (None, dx) if self.reads_pooled else (dx, None)

    def _check_labels(self, labels, B):
        labels = self.device.asarray(labels)
        if labels.shape != (B,):
            raise ValueError(f"labels: expected shape ({B},), found {tuple(labels.shape)}")
        if self.is_regression:
            return labels.astype(self.dtype)
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels: expected integer class ids, found dtype {labels.dtype}")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= self.num_labels):
            raise ValueError(f"labels: expected values in [0, {self.num_labels - 1}], found "
                             f"values in [{int(labels.min())}, {int(labels.max())}]")
        return labels


class QuestionAnsweringHead(Module):
    reads_pooled = False

    def __init__(self, hidden_size, initializer_range=0.02, device=None, dtype="float32", seed=0):
        super().__init__(device, dtype, seed)
        self.params["qa_outputs.weight"] = self._normal(host_generator(seed), (2, hidden_size),
                                                        initializer_range)
        self.params["qa_outputs.bias"] = self.device.xp.zeros((2,), dtype=dtype)

    def forward(self, seq, candidates, positions=None):
        """seq (B, T, C), candidates (B, T) bool: the tokens an answer may start or end on
        ([CLS] and the context; never padding or the question) -> (start logits (B, T), end
        logits (B, T)), the other tokens' at -10000 (ops/span.py), and the loss,
        the mean of the start and end cross-entropies against positions (B, 2) when given
        (else None)."""
        scores, linear_cache = self.linear(seq, "qa_outputs")                  # (B, T, 2)
        candidates = self._check_candidates(candidates, scores.shape[:2])
        (start, end), span_cache = span.span_logits_forward(scores, candidates)
        self._cache = SpanCache(linear_cache, span_cache, None)
        if positions is None:
            return (start, end), None
        positions = self._check_positions(positions, candidates)
        start_loss, start_cache = losses.cross_entropy_forward(start, positions[:, 0])
        end_loss, end_cache = losses.cross_entropy_forward(end, positions[:, 1])
        self._cache = SpanCache(linear_cache, span_cache, (start_cache, end_cache))
        return (start, end), (start_loss + end_loss) / 2

    def backward(self, dloss=1.0):
        """Backward of the last forward's loss -> self.grads; returns dseq (B, T, C)."""
        cache = self._cache
        if cache.losses is None:
            raise RuntimeError("head.backward: the last forward had no positions, so there is "
                               "no loss")
        dstart = losses.cross_entropy_backward(dloss / 2, cache.losses[0])
        dend = losses.cross_entropy_backward(dloss / 2, cache.losses[1])
        dscores = span.span_logits_backward(dstart, dend, cache.span)
        return self.linear_backward(dscores, cache.linear, "qa_outputs")

    def metadata(self):
        """What an adapter file says of the head, enough to build it again (head_from_metadata)."""
        return {"kind": "question-answering"}

    def forward_batch(self, seq, pooled, batch):
        """forward on the model's outputs for a batch dict (its "candidates", and its "labels",
        the start and end positions, when there)."""
        return self.forward(seq, batch["candidates"], batch.get("labels"))

    def backward_batch(self, dloss=1.0):
        """(dseq, dpooled) of the last forward_batch's loss: the head reads only seq."""
        return self.backward(dloss), None

    def _check_candidates(self, candidates, shape):
        candidates = self.device.asarray(candidates)
        if candidates.shape != tuple(shape) or candidates.dtype.kind != "b":
            raise ValueError(f"candidates: expected a boolean mask of shape {tuple(shape)}, "
                             f"found {candidates.dtype} of shape {tuple(candidates.shape)}")
        if not bool(candidates.any(axis=1).all()):
            raise ValueError("candidates: every sequence needs at least one candidate token")
        return candidates

    def _check_positions(self, positions, candidates):
        positions = self.device.asarray(positions)
        B, T = candidates.shape
        if positions.shape != (B, 2) or positions.dtype.kind not in "iu":
            raise ValueError(f"positions: expected integer (start, end) pairs of shape ({B}, 2), "
                             f"found {positions.dtype} of shape {tuple(positions.shape)}")
        if positions.size and (int(positions.min()) < 0 or int(positions.max()) >= T):
            raise ValueError(f"positions: expected token positions in [0, {T - 1}], found "
                             f"values in [{int(positions.min())}, {int(positions.max())}]")
        rows = self.device.xp.arange(B)
        if not bool((candidates[rows, positions[:, 0]] & candidates[rows, positions[:, 1]]).all()):
            raise ValueError("positions: every start and end must be a candidate token ([CLS] "
                             "or the context), found one on the question or padding")
        return positions


def head_from_metadata(info, hidden_size, device=None, dtype="float32"):
    """A freshly initialised head of the kind an adapter file's metadata describes (metadata()):
    the file's tensors are then copied in by name."""
    if info.get("kind") == "question-answering":
        return QuestionAnsweringHead(hidden_size, device=device, dtype=dtype)
    # files written before heads had a pooling read the pooler
    return SequenceClassificationHead(hidden_size, info["num_labels"], info["dropout_prob"],
                                      device=device, dtype=dtype,
                                      pooling=info.get("pooling", "cls"),
                                      pooling_reason=info.get("pooling_reason"),
                                      layers=info.get("layers", 1))
