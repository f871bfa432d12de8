"""Task losses, averaged over the batch: softmax cross-entropy and mean squared error."""
from ..backend import get_array_module


def cross_entropy_forward(logits, labels):
    # logits (B, K), labels (B,) integers in [0, K) -> loss (scalar array)
    xp = get_array_module(logits)
    B = logits.shape[0]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -log_probs[xp.arange(B), labels].mean()
    return loss, {"probs": xp.exp(log_probs), "labels": labels}


def cross_entropy_backward(dloss, cache):
    # -> dlogits (B, K) = (softmax - onehot) / B
    probs, labels = cache["probs"], cache["labels"]
    xp = get_array_module(probs)
    B = probs.shape[0]
    dlogits = probs.copy()
    dlogits[xp.arange(B), labels] -= 1.0
    return dlogits * (dloss / B)


def mse_forward(predictions, targets):
    # predictions (B,), targets (B,) -> loss (scalar array)
    diff = predictions - targets
    return (diff * diff).mean(), {"diff": diff}


def mse_backward(dloss, cache):
    diff = cache["diff"]
    return diff * (2.0 * dloss / diff.shape[0])
