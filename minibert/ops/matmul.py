"""Matrix products, shared out over the cores.

Every product in minibert goes through `matmul`. On NumPy, the rows of `a` (its first axis) are
cut into one block per core, and each core multiplies its block with BLAS running on one thread
(backend.by_rows). Measured on a 2-core CPU, two things make this better than letting BLAS
spread each product itself: BLAS cannot share out a stack of small products such as attention's
B x H per-head ones (on two threads they ran slower than on one), and BLAS's own threads keep
spinning for a while after each product, holding the core that the next elementwise operation
needs. A large product runs as fast either way.
"""
from ..backend import by_rows, get_array_module


def matmul(a, b, bias=None):
    # a (N, ..., X) @ b (X, Y) -> (N, ..., Y), b shared by every block of a's rows; or
    # a (N, ..., X) @ b (N, ..., X, Y), a stack of matrices cut into blocks along with a.
    # bias (Y,), if given, is added to every row, in the block while it is in the cache.
    xp = get_array_module(a)
    out = xp.empty(a.shape[:-1] + b.shape[-1:], dtype=xp.result_type(a, b))

    def block(a, b, out):
        xp.matmul(a, b, out=out)
        if bias is not None:
            out += bias
    if b.ndim == 2:
        by_rows(lambda a, out: block(a, b, out), a, out)
    else:
        by_rows(block, a, b, out)
    return out
