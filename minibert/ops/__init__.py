"""Forward/backward pairs. Each `x_forward(...)` returns `(out, cache)`, the cache a dict naming
what the backward needs (None when it needs nothing); each `x_backward(dout, cache, ...)`
returns the gradients of the inputs it was asked for.

The functions are the formulas alone. On NumPy, `minibert.parallel` shares the row-wise ones out
over the CPU cores; it wraps them here, once, so every caller gets the shared-out version. And
`minibert.memory` has malloc keep the memory the arrays of one step free for those of the next.
"""
from .. import memory, parallel
from . import activations, attention, dropout, layernorm, linear

parallel.share_out(activations, attention, dropout, layernorm, linear)
memory.keep_freed_memory()
