"""Bottleneck adapters (Houlsby et al., 2019, "Parameter-Efficient Transfer Learning"), and the
variants of its section 3.6 as AdapterHub ships them.

The bottleneck maps u (B, T, C) to scaling * up(act(down(u))): down-projection C -> M, a
nonlinearity, up-projection M -> C; 2CM + C + M parameters. Houlsby's adapter is u plus its
bottleneck, two per layer, on each sub-layer's output after its projection and dropout and
before the residual add and LayerNorm -- where google-research/adapter-bert puts them.
Near-identity init (truncated normal weights of small std, zero biases) makes the adapted
model start as the pretrained one.

AdapterConfig names the variant. With o a sub-layer's output (after dropout), x the block's
input and LN the block's LayerNorm, a block ends in
    houlsby   LN(o + A(o) + x)              the adapter on the sub-layer's output
    pfeiffer  LN(o + A(LN(o + x)) + x)      on the block's output; LN applied twice, one set
                                            of parameters (AdapterHub's SeqBnConfig)
    parallel  LN(o + A(x) + x)              beside the sub-layer, reading its input (ParBnConfig)
where A is the bottleneck, optionally with LayerNorms of its own before the down-projection
(ln_before) or after the up-projection (ln_after). `sites` says which blocks have one:
the attention block's ("attention.output"), the feed-forward block's ("output"), or both.

A set of adapters is named; it owns its adapters and its own copies of the 2L+1 LayerNorms
(they are trained with the adapters), so several tasks live side by side on one frozen base.
A model holds its sets in `model.adapters` (AdapterSets), which says whose array each name
of model.params is: the active set's, or the plain base model's with None.
"""
import dataclasses
import functools

from . import checks
from .backend import host_generator
from .param_names import is_adapter, layer_of
from .ops import activations
from .ops.row_wise import row_wise

DEFAULT_SIZE = 64         # M, the paper's middle size; what every command uses unless told
SITES = ("attention.output", "output")    # the attention block's and the feed-forward block's output
PLACEMENTS = ("houlsby", "pfeiffer", "parallel")
# what a placement has unless told: its sites and scaling, as AdapterHub's configs have them
PLACEMENT_SITES = {"houlsby": SITES, "pfeiffer": ("output",), "parallel": ("output",)}
PLACEMENT_SCALING = {"houlsby": 1.0, "pfeiffer": 1.0, "parallel": 4.0}
ADAPTER_LN_EPS = 1e-5     # the adapter's own LayerNorms: torch's default, as AdapterHub's

# name -> (forward, backward)
ACTIVATIONS = {
    "gelu": (functools.partial(activations.gelu_forward, form="erf"), activations.gelu_backward),
    "gelu_new": (functools.partial(activations.gelu_forward, form="tanh"),
                 activations.gelu_backward),
    "relu": (activations.relu_forward, activations.relu_backward),
    "swish": (activations.swish_forward, activations.swish_backward),
    "tanh": (activations.tanh_forward, activations.tanh_backward),
}


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    """The adapter's variant and its defaults, written here alone: a run's settings take these
    fields and defaults (runs.settings.ADAPTER_SETTINGS), and the commands' defaults theirs."""
    size: int = DEFAULT_SIZE       # M
    init_std: float = 1e-3         # adapter-bert's code uses 1e-3; the paper's text 1e-2
    activation: str = "gelu"       # AdapterHub's non_linearity
    leave_out: tuple = ()          # layers without adapters (ablations)
    placement: str = "houlsby"
    sites: tuple = None            # None: the placement's own (PLACEMENT_SITES)
    scaling: float = None          # the bottleneck's output times this; None: the placement's
    ln_before: bool = False        # a LayerNorm of the adapter's own before down
    ln_after: bool = False         # and after up

    def __post_init__(self):
        checks.integer("adapter size", self.size)
        # 0 is allowed: zero adapters are exactly the identity, a base-model check
        checks.non_negative("adapter init_std", self.init_std)
        checks.choice("adapter activation", self.activation, sorted(ACTIVATIONS))
        checks.choice("adapter placement", self.placement, PLACEMENTS)
        # the placement's defaults filled in, so a saved config says what was used
        if self.sites is None:
            object.__setattr__(self, "sites", PLACEMENT_SITES[self.placement])
        if self.scaling is None:
            object.__setattr__(self, "scaling", PLACEMENT_SCALING[self.placement])
        sites = tuple(self.sites) if isinstance(self.sites, (list, tuple)) else self.sites
        if not sites or not isinstance(sites, tuple) or any(s not in SITES for s in sites) \
                or len(set(sites)) != len(sites):
            raise checks.BadValue("adapter sites", f"expected one or both of {', '.join(SITES)}"
                                  f", found {self.sites!r}")
        object.__setattr__(self, "sites", tuple(s for s in SITES if s in sites))
        object.__setattr__(self, "leave_out", tuple(self.leave_out))
        checks.finite("adapter scaling", self.scaling)
        checks.boolean("adapter ln_before", self.ln_before)
        checks.boolean("adapter ln_after", self.ln_after)


@dataclasses.dataclass(eq=False)      # a ParameterGroup: an owner is itself, not its contents
class AdapterSet:
    """One set of adapters, the owner of its arrays: its adapters and its copies of the 2L+1
    LayerNorms, which of them are frozen (none, when it is new: a new set is trainable whole
    until configure or freeze say otherwise), and the layers whose adapters are switched off."""
    config: AdapterConfig
    params: dict                   # adapter and LayerNorm arrays, by parameter name
    frozen: set = dataclasses.field(default_factory=set)
    disabled_layers: tuple = ()    # disable_adapter_layers; activating the set clears it


def adapter_parameter_count(C, M, ln_before=False, ln_after=False):
    """Parameters of one adapter: down (M x C + M), up (C x M + C), 2C per LayerNorm of its own."""
    return 2 * C * M + C + M + 2 * C * (ln_before + ln_after)


def adapter_shapes(C, config):
    """{tensor name below the adapter's prefix: shape} of one adapter."""
    M = config.size
    shapes = {"down.weight": (M, C), "down.bias": (M,), "up.weight": (C, M), "up.bias": (C,)}
    for norm in ("ln_before", "ln_after"):
        if getattr(config, norm):
            shapes.update({norm + ".weight": (C,), norm + ".bias": (C,)})
    return shapes


def adapter_prefixes(num_layers, leave_out=(), sites=SITES):
    return [f"encoder.layer.{l}.{site}.adapter" for l in range(num_layers) if l not in leave_out
            for site in sites]


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

    Each array has one owner. The base model (model.owned) owns its weights and its own
    LayerNorms; each set owns its adapters and its LayerNorm copies. While a set is active,
    model.params reads and writes its adapters and LayerNorms in the set and every other name
    in the base, so training one set never touches another or the base."""

    def __init__(self, model):
        self.model = model
        self.sets = {}                  # name -> AdapterSet
        self.active = None              # the name of the set in use

    def __contains__(self, name):
        return name in self.sets

    def __getitem__(self, name):
        return self.sets[name]

    @property
    def active_set(self):
        return None if self.active is None else self.sets[self.active]

    @property
    def config(self):
        """The active set's AdapterConfig, None for the base model."""
        return None if self.active is None else self.active_set.config

    def owner_of(self, name):
        """The ParameterGroup that holds `name` for what the model computes now: the active
        set for its adapters (those of disabled layers excepted) and LayerNorms, else the
        base; None when neither does."""
        active = self.active_set
        if active is not None and name in active.params and not (
                active.disabled_layers and is_adapter(name)
                and layer_of(name) in active.disabled_layers):
            return active
        return self.model.owned if name in self.model.owned.params else None

    def names(self):
        """The names the model computes with, in order: the base's, then the active set's
        adapters."""
        active = self.active_set
        base = self.model.owned.params
        # a set's names beyond the base's LayerNorms are its adapters
        adapters = [] if active is None else [n for n in active.params
                                              if n not in base and self.owner_of(n) is active]
        return list(base) + adapters

    def has_adapter(self, site):
        """Whether the model computes an adapter at `site` now."""
        return self.owner_of(site + ".adapter.down.weight") is not None

    def base_layernorms(self):
        """{name: array} of the base model's own LayerNorms, whichever set is active."""
        names = layernorm_names(self.model.config.num_hidden_layers)
        return {n: self.model.owned.params[n] for n in names}

    def add(self, name, adapter_set):
        """Hold `adapter_set` under `name` and make it the active set."""
        if name in self.sets:
            raise ValueError(f"adapter set {name!r} exists already; choose another name")
        self.sets[name] = adapter_set
        self.activate(name)

    def activate(self, name):
        """Switch the model to set `name` (all its layers on), or to the plain base model with
        None. No array is copied; gradients of the previous set are dropped."""
        if name is not None and name not in self.sets:
            raise KeyError(f"no adapter set named {name!r}; there are {sorted(self.sets)}")
        self.active = name
        if name is not None:
            self.sets[name].disabled_layers = ()
        self.model.grads = {}

    def disable_layers(self, layers):
        """Take the active set's adapters out of the given layers: those layers compute as if
        they had none, while the set keeps them; activate(name) puts them back."""
        checks.layers("layers", layers, self.model.config.num_hidden_layers)
        if self.active is None:
            raise ValueError("disable_adapter_layers: no adapter set is active; "
                             "set_active_adapters(model, name) first")
        active = self.active_set
        active.disabled_layers = tuple(sorted(set(active.disabled_layers) | set(layers)))
        for name in [n for n in self.model.grads if is_adapter(n) and layer_of(n) in layers]:
            del self.model.grads[name]

    def convert(self, fn):
        """Apply fn (a device move or a cast) to every array of every set."""
        for adapter_set in self.sets.values():
            adapter_set.params = {n: fn(p) for n, p in adapter_set.params.items()}


def add_adapters(model, size=AdapterConfig.size, init_std=AdapterConfig.init_std,
                 activation=AdapterConfig.activation, leave_out=(), name="default", seed=0,
                 **variant):
    """Give `model` a new adapter set `name` (an adapter at each of its sites in every layer
    but those in leave_out, and fresh copies of the LayerNorms) and make it the active one.
    `variant`: AdapterConfig's other fields (placement, sites, scaling, ln_before, ln_after).
    Returns its parameter names."""
    checks.layers("leave_out", leave_out, model.config.num_hidden_layers)
    config = AdapterConfig(size, init_std, activation, tuple(sorted(set(leave_out))), **variant)
    return add_adapter_set(model, config, name, seed)


def add_adapter_set(model, config, name="default", seed=0):
    """add_adapters with its settings as an AdapterConfig."""
    L, C = model.config.num_hidden_layers, model.config.hidden_size
    checks.layers("leave_out", config.leave_out, L)
    device, dtype, rng = model.device, model.dtype, host_generator(seed)
    params = {n: p.copy() for n, p in model.adapters.base_layernorms().items()}
    for prefix in adapter_prefixes(L, config.leave_out, config.sites):
        for tensor, shape in adapter_shapes(C, config).items():
            if tensor.endswith(".weight") and tensor.startswith(("down", "up")):
                value = device.asarray(truncated_normal(rng, shape, config.init_std), dtype)
            elif tensor.endswith(".weight"):                 # a LayerNorm's: the identity
                value = device.xp.ones(shape, dtype=dtype)
            else:
                value = device.xp.zeros(shape, dtype=dtype)
            params[f"{prefix}.{tensor}"] = value
    model.adapters.add(name, AdapterSet(config, params))
    return list(params)


def set_active_adapters(model, name):
    """Switch to adapter set `name`, or to the plain base model with None (AdapterSets.activate)."""
    model.adapters.activate(name)


def disable_adapter_layers(model, layers):
    """Take the active set's adapters out of the given layers, for ablations
    (AdapterSets.disable_layers); set_active_adapters(model, name) puts them back."""
    model.adapters.disable_layers(layers)



def bottleneck_forward(module, name, u, config):
    # u (B, T, C) -> ln_after(scaling * up(act(down(ln_before(u))))) (B, T, C), through (B, T, M)
    forward, _ = ACTIVATIONS[config.activation]
    cache = {}
    if config.ln_before:
        u, cache["ln_before"] = module.layernorm(u, name + ".ln_before", ADAPTER_LN_EPS)
    h, cache["down"] = module.linear(u, name + ".down")
    h, cache["activation"] = forward(h)
    y, cache["up"] = module.linear(h, name + ".up")
    if config.scaling != 1.0:
        y = y * config.scaling
    if config.ln_after:
        y, cache["ln_after"] = module.layernorm(y, name + ".ln_after", ADAPTER_LN_EPS)
    return y, cache


def bottleneck_backward(module, name, dy, cache, config):
    # dy (B, T, C) -> du (B, T, C); the adapter's gradients accumulate in module.grads
    _, backward = ACTIVATIONS[config.activation]
    if config.ln_after:
        dy = module.layernorm_backward(dy, cache["ln_after"], name + ".ln_after")
    if config.scaling != 1.0:
        dy = dy * config.scaling
    dh = backward(module.linear_backward(dy, cache["up"], name + ".up"), cache["activation"])
    du = module.linear_backward(dh, cache["down"], name + ".down")
    if config.ln_before:
        du = module.layernorm_backward(du, cache["ln_before"], name + ".ln_before")
    return du


def adapter_forward(module, name, x, config="gelu"):
    # x (B, T, C) -> x + bottleneck(x) (B, T, C): Houlsby's adapter, with its internal skip (the
    # houlsby placement's block end uses it). config: an AdapterConfig, or the name of the
    # nonlinearity (a plain Houlsby adapter)
    config = AdapterConfig(activation=config) if isinstance(config, str) else config
    y, cache = bottleneck_forward(module, name, x, config)
    return x + y, cache


def adapter_backward(module, name, dy, cache, config="gelu"):
    config = AdapterConfig(activation=config) if isinstance(config, str) else config
    return dy + bottleneck_backward(module, name, dy, cache, config)     # skip + bottleneck


@row_wise("o", "x", module="module")
def block_end_forward(module, site, o, x, config, eps):
    """The end of a block with an adapter at `site`, placed as config.placement says (the
    module's docstring): o the sub-layer's output, x the block's input (B, T, C) -> (B, T, C)."""
    name, layernorm = site + ".adapter", site + ".LayerNorm"
    cache = {}
    if config.placement == "houlsby":            # LN((o + A(o)) + x): Houlsby's adapter on o
        h, cache["adapter"] = adapter_forward(module, name, o, config)
        y, cache["layernorm"] = module.layernorm(h + x, layernorm, eps)
        return y, cache
    if config.placement == "pfeiffer":
        u, cache["first_layernorm"] = module.layernorm(o + x, layernorm, eps)
    else:
        u = x
    a, cache["adapter"] = bottleneck_forward(module, name, u, config)
    y, cache["layernorm"] = module.layernorm(o + a + x, layernorm, eps)
    return y, cache


@row_wise("dy", row_trees=("cache",), module="module")
def block_end_backward(module, site, dy, cache, config):
    """dy (B, T, C) -> (do, dx): the gradients of the sub-layer's output and the block's input."""
    name, layernorm = site + ".adapter", site + ".LayerNorm"
    dsum = module.layernorm_backward(dy, cache["layernorm"], layernorm)      # d(o + a + x)
    if config.placement == "houlsby":
        return adapter_backward(module, name, dsum, cache["adapter"], config), dsum
    du = bottleneck_backward(module, name, dsum, cache["adapter"], config)
    if config.placement == "pfeiffer":
        # the block's LayerNorm used a second time: its gradients add to the first use's
        dz = module.layernorm_backward(du, cache["first_layernorm"], layernorm)
        return dsum + dz, dsum + dz
    return dsum, dsum + du
