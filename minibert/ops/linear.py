"""Linear layer y = x W^T + b, with W stored (out, in) as in PyTorch checkpoints.

Products run on x flattened to (N, I), N = all leading positions: one 2-D product, where NumPy
would loop over the first axis of a (B, T, I) operand, one product per sequence.
"""
from .row_wise import row_wise



@row_wise("x")
def linear_forward(x, weight, bias):
    # x (..., I), weight (O, I), bias (O,) -> y (..., O)
    y = x.reshape(-1, x.shape[-1]) @ weight.T + bias
    return y.reshape(*x.shape[:-1], -1), {"x": x, "weight": weight}


@row_wise("dy")
def linear_input_grad(dy, weight):
    # dx = dy W: (..., O) -> (..., I)
    return (dy.reshape(-1, dy.shape[-1]) @ weight).reshape(*dy.shape[:-1], -1)


@row_wise("dy", "x", sums=(0,), per_thread=True)
def linear_weight_grad(dy, x):
    # dW = dy^T x, summed over every leading position: (O, I). The product a frozen weight skips.
    return dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])


def linear_backward(dy, cache, weight_grad=True, bias_grad=True, input_grad=True):
    # dy (..., O) -> dx (..., I) or None, dW (O, I) or None, db (O,) or None
    dx = linear_input_grad(dy, cache["weight"]) if input_grad else None
    dweight = linear_weight_grad(dy, cache["x"]) if weight_grad else None
    dbias = dy.reshape(-1, dy.shape[-1]).sum(axis=0) if bias_grad else None
    return dx, dweight, dbias
