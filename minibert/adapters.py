"""Houlsby bottleneck adapters (Houlsby et al., 2019, "Parameter-Efficient Transfer Learning").

An adapter maps x (B, T, C) to x + up(act(down(x))): down-projection C -> M, a nonlinearity,
up-projection M -> C, and an internal skip connection; 2CM + C + M parameters. Two sit in every
layer, on each sub-layer's output after its projection and dropout and before the residual add
and LayerNorm -- where google-research/adapter-bert puts them. Near-identity init (truncated
normal weights of small std, zero biases) makes the adapted model start as the pretrained one.

A set of adapters is named; it owns its adapters and its own copies of the 2L+1 LayerNorms
(they are trained with the adapters), so several tasks live side by side on one frozen base and
`set_active_adapters` switches between them -- or back to the plain base model with None.
"""
import dataclasses
import functools

from .backend import host_generator
from .names import is_adapter, layer_of
from .ops.activations import (gelu_backward, gelu_forward, relu_backward, relu_forward,
                              tanh_backward, tanh_forward)

SITES = ("attention.output", "output")    # the attention block's and the feed-forward block's output

ACTIVATIONS = {
    "gelu": (functools.partial(gelu_forward, form="erf"), gelu_backward),
    "gelu_new": (functools.partial(gelu_forward, form="tanh"), gelu_backward),
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
}


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    size: int = 64                 # M
    init_std: float = 1e-3         # adapter-bert's code uses 1e-3; the paper's text 1e-2
    activation: str = "gelu"
    leave_out: tuple = ()          # layers without adapters (ablations)

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"adapter size: expected a positive integer, found {self.size!r}")
        if not self.init_std >= 0.0:
            raise ValueError(f"adapter init_std: expected >= 0, found {self.init_std!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"adapter activation: expected one of {sorted(ACTIVATIONS)}, "
                             f"found {self.activation!r}")


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


def add_adapters(model, size=64, init_std=1e-3, activation="gelu", leave_out=(), name="default",
                 seed=0):
    """Give `model` a new adapter set `name` (two adapters per layer but those in leave_out, and
    fresh copies of the LayerNorms) and make it the active one. Returns its parameter names."""
    config = AdapterConfig(size, init_std, activation, tuple(sorted(set(leave_out))))
    L, C = model.config.num_hidden_layers, model.config.hidden_size
    bad = [l for l in config.leave_out if not 0 <= l < L]
    if bad:
        raise ValueError(f"leave_out: expected layer indices in [0, {L - 1}], found {bad}")
    if name in model.adapter_sets:
        raise ValueError(f"adapter set {name!r} exists already; choose another name")
    device, dtype, rng = model.device, model.dtype, host_generator(seed)
    set_active_adapters(model, None)                     # model.params holds the base LayerNorms
    params = {n: model.params[n].copy() for n in layernorm_names(L)}
    for prefix in adapter_prefixes(L, config.leave_out):
        M = config.size
        params[prefix + ".down.weight"] = device.asarray(truncated_normal(rng, (M, C), init_std), dtype)
        params[prefix + ".down.bias"] = device.xp.zeros((M,), dtype=dtype)
        params[prefix + ".up.weight"] = device.asarray(truncated_normal(rng, (C, M), init_std), dtype)
        params[prefix + ".up.bias"] = device.xp.zeros((C,), dtype=dtype)
    model.adapter_sets[name] = AdapterSet(config, params)
    set_active_adapters(model, name)
    return list(params)


def set_active_adapters(model, name):
    """Switch to adapter set `name`, or to the plain base model with None. No array is copied:
    model.params points at the set's arrays, so training one set never touches another."""
    if name is not None and name not in model.adapter_sets:
        raise KeyError(f"no adapter set named {name!r}; there are {sorted(model.adapter_sets)}")
    if model.active_adapters is None:                    # keep the base LayerNorms aside
        model.base_layernorms = {n: model.params[n]
                                 for n in layernorm_names(model.config.num_hidden_layers)}
    for n in [n for n in model.params if is_adapter(n)]:
        del model.params[n]
    model.params.update(model.base_layernorms)
    if name is not None:
        model.params.update(model.adapter_sets[name].params)
    model.active_adapters = name
    model.grads = {}


def disable_adapter_layers(model, layers):
    """Take the active set's adapters out of the given layers (for ablations): those layers
    compute as if they had none, while the set keeps them; set_active_adapters(model, name)
    puts them back."""
    for n in [n for n in model.params if is_adapter(n) and layer_of(n) in layers]:
        del model.params[n]


def adapter_forward(module, name, x, activation):
    # x (B, T, C) -> x + up(act(down(x))) (B, T, C), through (B, T, M)
    forward, _ = ACTIVATIONS[activation]
    h, down_cache = module._linear(x, name + ".down")
    h, act_cache = forward(h)
    y, up_cache = module._linear(h, name + ".up")
    return x + y, (down_cache, act_cache, up_cache)


def adapter_backward(module, name, dy, cache, activation):
    _, backward = ACTIVATIONS[activation]
    down_cache, act_cache, up_cache = cache
    dh = backward(module._linear_backward(dy, up_cache, name + ".up"), act_cache)
    return dy + module._linear_backward(dh, down_cache, name + ".down")   # skip + bottleneck
