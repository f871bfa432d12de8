"""Houlsby bottleneck adapters (Houlsby et al., 2019, "Parameter-Efficient Transfer Learning").

An adapter maps x (B, T, C) to x + up(act(down(x))): down-projection C -> M, a nonlinearity,
up-projection M -> C, and an internal skip connection; 2CM + C + M parameters. Two sit in every
layer, on each sub-layer's output after its projection and dropout and before the residual add
and LayerNorm -- where google-research/adapter-bert puts them. Near-identity init (truncated
normal weights of small std, zero biases) makes the adapted model start as the pretrained one.

A set of adapters is named; it owns its adapters and its own copies of the 2L+1 LayerNorms
(they are trained with the adapters), so several tasks live side by side on one frozen base.
A model holds its sets in `model.adapters` (AdapterSets), the one place that switches
model.params between them -- or back to the plain base model with None.
"""
import dataclasses

from . import checks
from .backend import host_generator
from .param_names import is_adapter, layer_of
from .ops import activations

DEFAULT_SIZE = 64         # M, the paper's middle size; what every command uses unless told
SITES = ("attention.output", "output")    # the attention block's and the feed-forward block's output

# name -> (forward, backward); GELU is looked up in its op module at each call, where the speed
# layer may have shared it out over the cores
ACTIVATIONS = {
    "gelu": (lambda x: activations.gelu_forward(x, form="erf"),
             lambda dy, cache: activations.gelu_backward(dy, cache)),
    "gelu_new": (lambda x: activations.gelu_forward(x, form="tanh"),
                 lambda dy, cache: activations.gelu_backward(dy, cache)),
    "relu": (activations.relu_forward, activations.relu_backward),
    "tanh": (activations.tanh_forward, activations.tanh_backward),
}


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    size: int = DEFAULT_SIZE       # M
    init_std: float = 1e-3         # adapter-bert's code uses 1e-3; the paper's text 1e-2
    activation: str = "gelu"
    leave_out: tuple = ()          # layers without adapters (ablations)

    def __post_init__(self):
        checks.integer("adapter size", self.size)
        # 0 is allowed: zero adapters are exactly the identity, a base-model check
        checks.non_negative("adapter init_std", self.init_std)
        checks.choice("adapter activation", self.activation, sorted(ACTIVATIONS))


@dataclasses.dataclass
class AdapterSet:
    config: AdapterConfig
    params: dict                   # adapter and LayerNorm arrays, by parameter name


def adapter_parameter_count(C, M):
    """Parameters of one adapter: down (M x C + M) and up (C x M + C)."""
    return 2 * C * M + C + M


def adapter_prefixes(num_layers, leave_out=()):
    return [f"encoder.layer.{l}.{site}.adapter" for l in range(num_layers) if l not in leave_out
            for site in SITES]


def layernorm_names(num_layers):
    """The 2L + 1 LayerNorm parameters: the embeddings' and two per layer."""
    names = ["embeddings.LayerNorm"] + [f"encoder.layer.{l}.{site}.LayerNorm"
                                        for l in range(num_layers) for site in SITES]
    return [f"{n}.{p}" for n in names for p in ("weight", "bias")]


def truncated_normal(rng, shape, std):
    """N(0, std^2) cut at +-2 std by redrawing, as TensorFlow's truncated_normal_initializer."""
    x = rng.normal(0.0, std, size=shape)
    outside = abs(x) > 2 * std
    while outside.any():
        x[outside] = rng.normal(0.0, std, size=int(outside.sum()))
        outside = abs(x) > 2 * std
    return x


class AdapterSets:
    """A model's adapter sets and which one is active (None: the plain base model).

    While a set is active, model.params holds that set's arrays -- its adapters and its
    LayerNorms -- not copies of them, so training one set never touches another; the base
    model's own LayerNorms wait here until the base model is active again."""

    def __init__(self, model):
        self.model = model
        self.sets = {}                  # name -> AdapterSet
        self.active = None              # the name of the set in use
        self._base_layernorms = {}      # the base model's LayerNorm arrays while a set is active

    def __contains__(self, name):
        return name in self.sets

    def __getitem__(self, name):
        return self.sets[name]

    @property
    def config(self):
        """The active set's AdapterConfig, None for the base model."""
        return None if self.active is None else self.sets[self.active].config

    def base_layernorms(self):
        """{name: array} of the base model's own LayerNorms, whichever set is active."""
        if self.active is not None:
            return dict(self._base_layernorms)
        names = layernorm_names(self.model.config.num_hidden_layers)
        return {n: self.model.params[n] for n in names}

    def add(self, name, adapter_set):
        """Hold `adapter_set` under `name` and make it the active set."""
        if name in self.sets:
            raise ValueError(f"adapter set {name!r} exists already; choose another name")
        self.sets[name] = adapter_set
        self.activate(name)

    def activate(self, name):
        """Switch the model to set `name`, or to the plain base model with None. No array is
        copied; gradients of the previous set are dropped."""
        if name is not None and name not in self.sets:
            raise KeyError(f"no adapter set named {name!r}; there are {sorted(self.sets)}")
        params = self.model.params
        self._base_layernorms = self.base_layernorms()
        for n in [n for n in params if is_adapter(n)]:
            del params[n]
        params.update(self._base_layernorms)
        if name is not None:
            params.update(self.sets[name].params)
        self.active = name
        self.model.grads = {}

    def disable_layers(self, layers):
        """Take the active set's adapters out of the given layers: those layers compute as if
        they had none, while the set keeps them; activate(name) puts them back."""
        params = self.model.params
        for n in [n for n in params if is_adapter(n) and layer_of(n) in layers]:
            del params[n]

    def convert(self, fn):
        """Apply fn (a device move or a cast) to every array of every set."""
        for adapter_set in self.sets.values():
            adapter_set.params = {n: fn(p) for n, p in adapter_set.params.items()}


def add_adapters(model, size=DEFAULT_SIZE, init_std=1e-3, activation="gelu", leave_out=(),
                 name="default", seed=0):
    """Give `model` a new adapter set `name` (two adapters per layer but those in leave_out, and
    fresh copies of the LayerNorms) and make it the active one. Returns its parameter names."""
    L, C = model.config.num_hidden_layers, model.config.hidden_size
    checks.layers("leave_out", leave_out, L)
    config = AdapterConfig(size, init_std, activation, tuple(sorted(set(leave_out))))
    device, dtype, rng = model.device, model.dtype, host_generator(seed)
    params = {n: p.copy() for n, p in model.adapters.base_layernorms().items()}
    for prefix in adapter_prefixes(L, config.leave_out):
        M = config.size
        params[prefix + ".down.weight"] = device.asarray(truncated_normal(rng, (M, C), init_std), dtype)
        params[prefix + ".down.bias"] = device.xp.zeros((M,), dtype=dtype)
        params[prefix + ".up.weight"] = device.asarray(truncated_normal(rng, (C, M), init_std), dtype)
        params[prefix + ".up.bias"] = device.xp.zeros((C,), dtype=dtype)
    model.adapters.add(name, AdapterSet(config, params))
    return list(params)


def set_active_adapters(model, name):
    """Switch to adapter set `name`, or to the plain base model with None (AdapterSets.activate)."""
    model.adapters.activate(name)


def disable_adapter_layers(model, layers):
    """Take the active set's adapters out of the given layers, for ablations
    (AdapterSets.disable_layers); set_active_adapters(model, name) puts them back."""
    model.adapters.disable_layers(layers)


def adapter_forward(module, name, x, activation):
    # x (B, T, C) -> x + up(act(down(x))) (B, T, C), through (B, T, M)
    forward, _ = ACTIVATIONS[activation]
    h, down_cache = module.linear(x, name + ".down")
    h, act_cache = forward(h)
    y, up_cache = module.linear(h, name + ".up")
    return x + y, (down_cache, act_cache, up_cache)


def adapter_backward(module, name, dy, cache, activation):
    _, backward = ACTIVATIONS[activation]
    down_cache, act_cache, up_cache = cache
    dh = backward(module.linear_backward(dy, up_cache, name + ".up"), act_cache)
    return dy + module.linear_backward(dh, down_cache, name + ".down")   # skip + bottleneck
