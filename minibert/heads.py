"""Task heads on the pooled [CLS] vector: dropout -> linear -> loss.

num_labels > 1: classification with softmax cross-entropy; num_labels == 1: regression
(STS-B) with mean squared error -- the convention of Hugging Face's
BertForSequenceClassification, whose parameter names ("classifier.*") the head shares.
"""
from typing import NamedTuple

from .backend import host_generator
from .module import Module
from .ops.dropout import dropout_backward, dropout_forward
from .ops.losses import cross_entropy_backward, cross_entropy_forward, mse_backward, mse_forward


class HeadCache(NamedTuple):
    dropout: tuple | None
    linear: tuple
    loss: tuple | None              # None when the forward had no labels


class SequenceClassificationHead(Module):
    def __init__(self, hidden_size, num_labels, dropout_prob=0.1, initializer_range=0.02,
                 device=None, dtype="float32", seed=0):
        super().__init__(device, dtype, seed)
        if num_labels < 1:
            raise ValueError(f"num_labels: expected >= 1, found {num_labels}")
        self.num_labels = num_labels
        self.dropout_prob = dropout_prob
        self.params["classifier.weight"] = self._normal(
            host_generator(seed), (num_labels, hidden_size), initializer_range)
        self.params["classifier.bias"] = self.device.xp.zeros((num_labels,), dtype=dtype)

    @property
    def is_regression(self):
        return self.num_labels == 1

    def forward(self, pooled, labels=None):
        """pooled (B, C) -> logits (B, K) [or predictions (B,) for regression], and the mean
        loss against labels (B,) when labels are given (else None)."""
        x, dropout_cache = dropout_forward(pooled, self.dropout_prob,
                                           self.rng if self.training else None)
        logits, linear_cache = self.linear(x, "classifier")
        if self.is_regression:
            logits = logits[:, 0]
        self._cache = HeadCache(dropout_cache, linear_cache, None)
        if labels is None:
            return logits, None
        labels = self._check_labels(labels, logits.shape[0])
        if self.is_regression:
            loss, loss_cache = mse_forward(logits, labels)
        else:
            loss, loss_cache = cross_entropy_forward(logits, labels)
        self._cache = HeadCache(dropout_cache, linear_cache, loss_cache)
        return logits, loss

    def backward(self, dloss=1.0):
        """Backward of the last forward's loss -> self.grads; returns dpooled (B, C)."""
        cache = self._cache
        if cache.loss is None:
            raise RuntimeError("head.backward: the last forward had no labels, so there is no loss")
        if self.is_regression:
            dlogits = mse_backward(dloss, cache.loss)[:, None]
        else:
            dlogits = cross_entropy_backward(dloss, cache.loss)
        return dropout_backward(self.linear_backward(dlogits, cache.linear, "classifier"),
                                cache.dropout)

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
