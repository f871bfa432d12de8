"""AdamW with BERT's recipe: decoupled weight decay (none on LayerNorm and biases), linear
warmup then linear decay, and clipping of the global gradient norm.

Optimizer state exists only for parameters that receive gradients, so a frozen base model
costs no optimizer memory or work.
"""
from . import checks
from .param_names import is_adapter_layernorm, is_layernorm


def no_weight_decay(name):
    """BERT's rule: biases and LayerNorm parameters (an adapter's own too) are not decayed."""
    return name.endswith(".bias") or is_layernorm(name) or is_adapter_layernorm(name)


def linear_warmup_decay(step, total_steps, warmup_fraction=0.1):
    """Learning-rate multiplier for 0-based `step`: up to 1 over the warmup steps, then linearly
    down to 0 at total_steps."""
    warmup = int(warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup))


def clip_global_norm(grads, max_norm):
    """Scale all gradients (in place) so their joint 2-norm is at most max_norm; returns the
    norm before clipping (a device scalar: no host round trip on a GPU)."""
    squares = [(g * g).sum() for g in grads]
    if not squares:
        return 0.0
    norm = sum(squares[1:], squares[0]) ** 0.5
    scale = (max_norm / (norm + 1e-6)).clip(None, 1.0)
    for g in grads:
        g *= scale
    return norm


class Moments:
    """AdamW's state of one array: its first and second moments and its own step count."""

    def __init__(self, m, v, steps=0):
        self.m, self.v, self.steps = m, v, steps


class AdamW:
    """torch.optim.AdamW's update over the (params, grads) of a list of Modules.

    Its moments follow the array they belong to: they are kept by the array's owner (a
    module, the base model or one adapter set) and name, so a set that starts training
    starts from zero moments whatever another set did. correct_bias=False gives the original
    BERT optimizer, which skips Adam's bias correction."""

    def __init__(self, modules, lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                 correct_bias=True):
        checks.positive("lr", lr)
        for beta in betas:
            checks.probability("betas", beta, below_one=True)
        checks.positive("eps", eps)
        checks.non_negative("weight_decay", weight_decay)
        self.modules = list(modules)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.correct_bias = weight_decay, correct_bias
        self.state = {}          # (owner, name) -> Moments, made on the array's first update
        self.steps = 0           # step() calls

    def step(self, lr=None):
        lr = self.lr if lr is None else lr
        beta1, beta2 = self.betas
        self.steps += 1
        for module in self.modules:
            for name, grad in module.grads.items():
                owner = module.owner_of(name)
                param = owner.params[name]
                if (owner, name) not in self.state:
                    xp = module.device.xp
                    self.state[owner, name] = Moments(xp.zeros_like(param), xp.zeros_like(param))
                state = self.state[owner, name]
                state.steps += 1
                bc1 = 1.0 - beta1 ** state.steps if self.correct_bias else 1.0
                bc2 = 1.0 - beta2 ** state.steps if self.correct_bias else 1.0
                m, v = state.m, state.v
                m *= beta1
                m += (1.0 - beta1) * grad
                v *= beta2
                v += (1.0 - beta2) * grad * grad
                if self.weight_decay and not no_weight_decay(name):
                    param *= 1.0 - lr * self.weight_decay
                param -= (lr / bc1) * m / ((v / bc2) ** 0.5 + self.eps)

    def named_state(self):
        """{(module index, name): Moments} of the arrays the modules compute with now (what a
        checkpoint keeps)."""
        return {(index, name): self.state[module.owner_of(name), name]
                for index, module in enumerate(self.modules) for name in module.params
                if (module.owner_of(name), name) in self.state}

    def load_named_state(self, named, steps):
        """Restore named_state's {(module index, name): (m, v)} after `steps` step() calls."""
        self.steps = steps
        self.state = {(self.modules[index].owner_of(name), name): Moments(m, v, steps)
                      for (index, name), (m, v) in named.items()}
