"""Mean pooling: a sequence's feature as the mean of its token states over the attention mask
(what sentence-transformers checkpoints are trained to give; padding does not count)."""


def mean_pool_forward(x, mask):
    # x (B, T, C), mask (B, T) of 1 for tokens, 0 for padding -> pooled (B, C)
    weights = mask.astype(x.dtype)
    weights = weights / weights.sum(axis=1, keepdims=True)          # (B, T): 1/n on tokens
    pooled = (x * weights[:, :, None]).sum(axis=1)
    return pooled, {"weights": weights}


def mean_pool_backward(dpooled, cache):
    # every token of a sequence gets its share 1/n of the pooled gradient; padding gets none
    return dpooled[:, None, :] * cache["weights"][:, :, None]
