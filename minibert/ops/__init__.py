"""Forward/backward pairs. Each `x_forward(...)` returns `(out, cache)`, the cache a dict naming
what the backward needs (None when it needs nothing); each `x_backward(dout, cache, ...)`
returns the gradients of the inputs it was asked for.

The functions are the formulas alone, written against the array module of their inputs, and
importing them changes nothing. How NumPy work is shared out over the cores is
`minibert.speed`'s business, switched on from outside by `minibert.speed.enable()`.

May import: the array switch (`minibert.backend`) and each other.
"""
