"""Module: named parameters, their gradients, and which of them are frozen.

Parameters live in `params` under their Hugging Face checkpoint names, so loading a
checkpoint or an adapter file is a copy by name. Every array has one owner, a ParameterGroup
that holds it and says whether it is frozen: a head owns all of its own; a model routes each
name to its base or to its active adapter set (model.py), so `params` is the one view of what
the module computes, and writing through it changes what is computed, saved and trained.
`grads` holds gradients of trainable parameters only; a frozen parameter never gets one (its
dW product is skipped).
"""
import dataclasses

from . import checks
from .backend import get_device, to_host
from .ops import layernorm, linear

DTYPES = ("float32", "float64")       # what the ops compute in (erf has no float16 form)


@dataclasses.dataclass(eq=False)      # an owner is itself, not its contents: a key by identity
class ParameterGroup:
    """Arrays by name and which of them are frozen: everything one owner holds."""
    params: dict = dataclasses.field(default_factory=dict)
    frozen: set = dataclasses.field(default_factory=set)


class Module:
    def __init__(self, device=None, dtype="float32", seed=0):
        self.device = get_device(device)
        self.dtype = self._dtype(dtype)
        self.owned = ParameterGroup()
        self.grads = {}
        self.training = False
        self.seed(seed)

    @property
    def params(self):
        """{name: array} of every parameter the module computes with."""
        return self.owned.params

    @params.setter
    def params(self, arrays):
        self.owned.params = dict(arrays)

    def owner_of(self, name):
        """The ParameterGroup that holds parameter `name` (KeyError when none does)."""
        if name not in self.owned.params:
            raise KeyError(f"no parameter named {name!r}")
        return self.owned

    @property
    def frozen(self):
        """The names of the frozen parameters (a copy: freeze and unfreeze change them)."""
        return {name for name in self.params if not self.trainable(name)}

    def seed(self, seed):
        """Reseed the dropout generator (it lives on the module's device)."""
        self.rng_seed = seed
        self.rng = self.device.xp.random.default_rng(seed)

    # --- which parameters learn ---
    def trainable(self, name):
        return name not in self.owner_of(name).frozen

    def trainable_names(self):
        return [name for name in self.params if self.trainable(name)]

    def freeze(self, names=None):
        """Freeze the named parameters (all when None): backward computes no gradient for them."""
        for name in self._known(names):
            self.owner_of(name).frozen.add(name)
            self.grads.pop(name, None)

    def unfreeze(self, names=None):
        for name in self._known(names):
            self.owner_of(name).frozen.discard(name)

    def _known(self, names):
        names = list(self.params if names is None else names)
        unknown = [n for n in names if n not in self.params]
        if unknown:
            raise KeyError(f"no parameters named {unknown}")
        return names

    # --- gradients ---
    def zero_grad(self):
        self.grads = {}

    def accumulate(self, name, grad):
        """Add a freshly computed gradient (backward never passes one of a frozen parameter)."""
        if name in self.grads:
            self.grads[name] += grad
        else:
            self.grads[name] = grad

    # --- modes, devices, dtypes ---
    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter to another device ("numpy", "cupy", ...). The dropout stream
        goes on where it was on the same kind of device; on another it starts from the seed
        (a generator's state does not move between array libraries)."""
        previous, self.device = self.device, get_device(device)
        self._convert(lambda p: self.device.asarray(to_host(p)))
        if self.device.name != previous.name:
            self.seed(self.rng_seed)
        return self

    def astype(self, dtype):
        """Cast every parameter, e.g. to "float64" for gradient checks."""
        self.dtype = self._dtype(dtype)
        self._convert(lambda p: p.astype(self.dtype))
        return self

    @staticmethod
    def _dtype(dtype):
        # a dtype's name, whether given as a name, a scalar type or a dtype object
        return checks.choice("dtype", getattr(dtype, "__name__", None) or str(dtype), DTYPES)

    def _convert(self, fn):
        self.owned.params = {n: fn(p) for n, p in self.owned.params.items()}
        self.grads = {}

    def num_params(self, names=None):
        names = self.params if names is None else names
        return sum(int(self.params[n].size) for n in names)

    # --- building blocks: the ops of ops/linear.py and ops/layernorm.py on the parameters
    # `name`.weight and `name`.bias; a frozen weight or bias gets no gradient computed ---
    def linear(self, x, name):
        """x (..., in) -> (x W^T + b (..., out), cache) with W, b the parameters `name`.*."""
        y, cache = linear.linear_forward(x, self.params[name + ".weight"],
                                         self.params[name + ".bias"])
        # the input serves only dW: for a frozen weight it is not kept (memory adapters save)
        if not self.trainable(name + ".weight"):
            cache = {**cache, "x": None}
        return y, cache

    def linear_backward(self, dy, cache, name, input_grad=True):
        """dy (..., out) -> dx (..., in) (None when input_grad is False); the gradients of the
        trainable ones of `name`.weight and `name`.bias accumulate in self.grads."""
        if cache["x"] is None and self.trainable(name + ".weight"):
            raise RuntimeError(f"{name}.weight was unfrozen after the forward pass, which kept no "
                               "input for its gradient; run the forward pass again")
        dx, dweight, dbias = linear.linear_backward(
            dy, cache, weight_grad=self.trainable(name + ".weight"),
            bias_grad=self.trainable(name + ".bias"), input_grad=input_grad)
        self._accumulate_pair(name, dweight, dbias)
        return dx

    def layernorm(self, x, name, eps):
        """x (..., C) -> (LayerNorm(x) with gain `name`.weight and bias `name`.bias, cache)."""
        return layernorm.layernorm_forward(x, self.params[name + ".weight"],
                                           self.params[name + ".bias"], eps)

    def layernorm_backward(self, dy, cache, name):
        """dy (..., C) -> dx (..., C); the trainable ones of `name`.* accumulate gradients."""
        dx, dweight, dbias = layernorm.layernorm_backward(dy, cache,
                                                          self.trainable(name + ".weight"),
                                                          self.trainable(name + ".bias"))
        self._accumulate_pair(name, dweight, dbias)
        return dx

    def _accumulate_pair(self, name, dweight, dbias):
        if dweight is not None:
            self.accumulate(name + ".weight", dweight)
        if dbias is not None:
            self.accumulate(name + ".bias", dbias)

    def _normal(self, rng, shape, std):
        # host-side init (numpy Generator), then moved: same weights on every device for one seed
        return self.device.asarray(rng.normal(0.0, std, size=shape), dtype=self.dtype)
