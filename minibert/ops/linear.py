"""Linear layer y = x W^T + b, with W stored (out, in) as in PyTorch checkpoints.

Every product runs on x flattened to (N, I), N = all leading positions: one large BLAS call is
markedly faster than the one-per-batch-row loop NumPy's matmul does for a (B, T, I) operand.
"""
from .matmul import matmul


def linear_forward(x, weight, bias):
    # x (..., I), weight (O, I), bias (O,) -> y (..., O)
    y = matmul(x.reshape(-1, x.shape[-1]), weight.T, bias)
    return y.reshape(*x.shape[:-1], -1), (x, weight)


def linear_weight_grad(dy, x):
    # dW = dy^T x, summed over every leading position: (O, I). The one matmul a frozen weight skips.
    O, I = dy.shape[-1], x.shape[-1]
    return matmul(dy.reshape(-1, O).T, x.reshape(-1, I))


def linear_backward(dy, cache, weight_grad=True, bias_grad=True, input_grad=True):
    # dy (..., O) -> dx (..., I), dW (O, I) or None, db (O,) or None
    x, weight = cache
    dy2 = dy.reshape(-1, dy.shape[-1])                                     # (N, O)
    dx = matmul(dy2, weight).reshape(*dy.shape[:-1], -1) if input_grad else None
    dweight = linear_weight_grad(dy, x) if weight_grad else None
    dbias = dy2.sum(axis=0) if bias_grad else None
    return dx, dweight, dbias
