"""Forward/backward pairs. Each `x_forward(...)` returns `(out, cache)`; each
`x_backward(dout, cache, ...)` returns the gradients of the inputs it was asked for."""
