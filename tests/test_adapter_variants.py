"""The adapter family of the paper's section 3.6, as AdapterHub's configs have it: each
nonlinearity, placement (houlsby, pfeiffer, parallel), sites, scaling and the adapter's own
LayerNorms. Forward against the formula written out here in NumPy, backward against float64
central differences, op by op and for the whole model; files and accounting per variant."""
import numpy as np
import pytest

import minibert
from minibert.accounting import parameter_table
from minibert.adapter_files import load_adapters, read_adapter_file, save_adapters
from minibert.adapters import (ACTIVATIONS, SITES, AdapterConfig, add_adapters,
                               block_end_backward, block_end_forward, bottleneck_backward,
                               bottleneck_forward)
from minibert.gradcheck import assert_gradients, random_projection
from minibert.optim import no_weight_decay
from minibert.train import configure

from closeness import assert_close
from conftest import head_loss_with_gradients, tiny_config

TOL = 1e-6
EPS = 1e-12          # tiny_config's LayerNorm eps

VARIANTS = {         # name -> AdapterConfig fields
    "houlsby": {},
    "houlsby-attention-only": {"sites": ("attention.output",)},
    "houlsby-output-only": {"sites": ("output",)},
    "pfeiffer": {"placement": "pfeiffer"},
    "pfeiffer-both-sites": {"placement": "pfeiffer", "sites": SITES},
    "parallel": {"placement": "parallel"},
    "parallel-both-sites": {"placement": "parallel", "sites": SITES, "scaling": 2.0},
    "houlsby-ln-before-after-swish": {"ln_before": True, "ln_after": True,
                                      "activation": "swish"},
    "pfeiffer-ln-after-relu": {"placement": "pfeiffer", "ln_after": True, "activation": "relu"},
    "parallel-ln-before-tanh": {"placement": "parallel", "ln_before": True,
                                "activation": "tanh"},
}


def layernorm(x, weight, bias, eps):
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * weight + bias


def activation(name, h):
    from scipy.special import erf
    return {"gelu": lambda: 0.5 * h * (1 + erf(h / np.sqrt(2))),
            "gelu_new": lambda: 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                       * (h + 0.044715 * h ** 3))),
            "relu": lambda: np.maximum(h, 0), "swish": lambda: h / (1 + np.exp(-h)),
            "tanh": lambda: np.tanh(h)}[name]()


def bottleneck(p, u, config):
    """The bottleneck written out: ln_after(scaling * up(act(down(ln_before(u)))))."""
    if config.ln_before:
        u = layernorm(u, p["ln_before.weight"], p["ln_before.bias"], 1e-5)
    h = activation(config.activation, u @ p["down.weight"].T + p["down.bias"])
    y = config.scaling * (h @ p["up.weight"].T + p["up.bias"])
    if config.ln_after:
        y = layernorm(y, p["ln_after.weight"], p["ln_after.bias"], 1e-5)
    return y


def block_end(p, ln, o, x, config):
    """A block's end, each placement as AdapterHub computes it (its pre_forward, forward and
    post_forward), written out."""
    if config.placement == "houlsby":
        return layernorm(o + bottleneck(p, o, config) + x, *ln, EPS)
    if config.placement == "pfeiffer":
        return layernorm(o + bottleneck(p, layernorm(o + x, *ln, EPS), config) + x, *ln, EPS)
    return layernorm(o + bottleneck(p, x, config) + x, *ln, EPS)


def adapted_model(fields, seed=1, layers=2):
    model = minibert.BertModel(tiny_config(num_hidden_layers=layers), dtype="float64", seed=seed)
    add_adapters(model, size=3, init_std=0.5, seed=seed + 1, **fields)
    rng = np.random.default_rng(seed)
    for name, p in model.params.items():          # LayerNorms away from (1, 0), biases nonzero
        if ".adapter." in name or "LayerNorm" in name:
            p += rng.normal(0.0, 0.3, p.shape)
    return model


def adapter_tensors(model, site):
    prefix = site + ".adapter."
    return {n[len(prefix):]: p for n, p in model.params.items() if n.startswith(prefix)}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("ln_before, ln_after, scaling", [(False, False, 1.0), (True, True, 4.0)])
def test_the_bottleneck_is_its_formula_and_its_gradients(name, ln_before, ln_after, scaling):
    config = AdapterConfig(size=3, activation=name, ln_before=ln_before, ln_after=ln_after,
                           scaling=scaling)
    model = adapted_model({"activation": name, "ln_before": ln_before, "ln_after": ln_after,
                           "scaling": scaling})
    site = "encoder.layer.0.output"
    u = np.random.default_rng(0).standard_normal((2, 4, 8))
    y, _ = bottleneck_forward(model, site + ".adapter", u, config)
    # float64, a few dozen roundings of 1.1e-16 in the products and the LayerNorms
    assert_close(y, bottleneck(adapter_tensors(model, site), u, config), tol=1e-13)
    R = random_projection(u.shape, 4, np)
    loss = lambda: float((bottleneck_forward(model, site + ".adapter", u, config)[0] * R).sum())
    model.zero_grad()
    du = bottleneck_backward(model, site + ".adapter", R,
                             bottleneck_forward(model, site + ".adapter", u, config)[1], config)
    tensors = {"u": u, **{site + ".adapter." + k: v
                          for k, v in adapter_tensors(model, site).items()}}
    assert set(model.grads) == set(tensors) - {"u"}
    assert_gradients(loss, tensors, {"u": du, **model.grads}, tol=TOL)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_placement_ends_its_block_as_its_formula_and_its_gradients(variant):
    model = adapted_model(VARIANTS[variant])
    config = model.adapters.config
    site = config.sites[-1]
    site = f"encoder.layer.1.{site}"
    rng = np.random.default_rng(2)
    o, x = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 8))
    ln = (model.params[site + ".LayerNorm.weight"], model.params[site + ".LayerNorm.bias"])
    y, _ = block_end_forward(model, site, o, x, config, EPS)
    assert_close(y, block_end(adapter_tensors(model, site), ln, o, x, config), tol=1e-13)
    R = random_projection(y.shape, 5, np)
    loss = lambda: float((block_end_forward(model, site, o, x, config, EPS)[0] * R).sum())
    model.zero_grad()
    do, dx = block_end_backward(model, site, R, block_end_forward(model, site, o, x, config,
                                                                  EPS)[1], config)
    tensors = {"o": o, "x": x, site + ".LayerNorm.weight": ln[0], site + ".LayerNorm.bias": ln[1],
               **{site + ".adapter." + k: v for k, v in adapter_tensors(model, site).items()}}
    assert set(model.grads) == set(tensors) - {"o", "x"}
    # pfeiffer's LayerNorm is used twice: its gradient is the sum of both uses, checked here
    assert_gradients(loss, tensors, {"o": do, "x": dx, **model.grads}, tol=TOL)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_whole_model_gradients_of_every_trained_tensor_per_variant(batch, variant):
    model = adapted_model({**VARIANTS[variant], "leave_out": [0]}, layers=3)
    head = minibert.SequenceClassificationHead(8, 3, initializer_range=0.3, dtype="float64", seed=2)
    configure(model, head, "adapters")
    loss = head_loss_with_gradients(model, head, batch, np.array([2, 0]))
    trainable = {n: model.params[n] for n in model.trainable_names()}
    config = model.adapters.config
    adapters = {n.rsplit(".", 2)[0] for n in trainable if ".adapter." in n}
    assert sorted(adapters) == sorted(f"encoder.layer.{l}.{s}.adapter" for l in (1, 2)
                                      for s in config.sites)
    assert set(model.grads) == set(trainable)
    assert_gradients(loss, {**trainable, **head.params}, {**model.grads, **head.grads}, tol=TOL)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_zero_adapters_are_the_base_model_bit_for_bit(batch, variant):
    base = minibert.BertModel(tiny_config(initializer_range=0.02), seed=0)
    seq0, pooled0 = base.forward(**batch)
    fields = {k: v for k, v in VARIANTS[variant].items() if k != "ln_after"}  # LN(0) is not 0
    add_adapters(base, size=4, init_std=0.0, **fields)
    seq, pooled = base.forward(**batch)
    np.testing.assert_array_equal(seq, seq0)
    np.testing.assert_array_equal(pooled, pooled0)


def test_the_default_is_houlsbys_and_the_placements_have_adapterhubs_defaults():
    assert AdapterConfig() == AdapterConfig(placement="houlsby", sites=SITES, scaling=1.0,
                                            activation="gelu", ln_before=False, ln_after=False)
    assert AdapterConfig(placement="pfeiffer").sites == ("output",)
    assert AdapterConfig(placement="parallel").sites == ("output",)
    assert AdapterConfig(placement="parallel").scaling == 4.0
    # sites in the model's order, however given
    assert AdapterConfig(sites=["output", "attention.output"]).sites == SITES


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_adapter_file_keeps_its_variant(tmp_path, batch, variant):
    model = adapted_model(VARIANTS[variant])
    expected = model.forward(**batch)[0]
    save_adapters(model, tmp_path / "a.safetensors", task="t")
    info, tensors = read_adapter_file(tmp_path / "a.safetensors")
    assert info["adapter"]["placement"] == model.adapters.config.placement
    assert set(tensors) == set(model.adapters["default"].params)
    fresh = minibert.BertModel(tiny_config(), dtype="float64", seed=1)
    load_adapters(fresh, tmp_path / "a.safetensors")
    assert fresh.adapters.config == model.adapters.config
    # float64 kept as float32 in the file: the outputs agree to float32's rounding
    assert_close(fresh.forward(**batch)[0], expected, tol=1e-5)


def test_a_file_written_before_the_variants_loads_as_houlsbys(tmp_path, batch):
    """Adapter files written before the variants name size, init_std, activation and
    leave_out alone; they mean Houlsby's adapters on both sites."""
    import json
    import safetensors.numpy
    model = adapted_model({})
    save_adapters(model, tmp_path / "new.safetensors", task="t")
    info, tensors = read_adapter_file(tmp_path / "new.safetensors")
    info["adapter"] = {k: info["adapter"][k] for k in ("size", "init_std", "activation",
                                                       "leave_out")}
    safetensors.numpy.save_file(tensors, tmp_path / "old.safetensors",
                                metadata={"format": "pt", "minibert": json.dumps(info)})
    fresh = minibert.BertModel(tiny_config(), dtype="float64", seed=1)
    load_adapters(fresh, tmp_path / "old.safetensors")
    assert fresh.adapters.config == model.adapters.config
    np.testing.assert_array_equal(fresh.forward(**batch)[0],
                                  load_and_forward(tmp_path / "new.safetensors", batch))


def load_and_forward(path, batch):
    model = minibert.BertModel(tiny_config(), dtype="float64", seed=1)
    load_adapters(model, path)
    return model.forward(**batch)[0]


def test_a_file_naming_an_unknown_adapter_setting_or_value_is_refused(tmp_path):
    import json
    import safetensors.numpy
    model = adapted_model({})
    save_adapters(model, tmp_path / "a.safetensors", task="t")
    info, tensors = read_adapter_file(tmp_path / "a.safetensors")
    for change, message in (({"gating": True}, "adapter setting 'gating' is not one minibert"),
                            ({"placement": "prefix"}, "adapter placement: expected one of "
                                                      "houlsby, pfeiffer, parallel, found 'prefix'")):
        bad = {**info, "adapter": {**info["adapter"], **change}}
        safetensors.numpy.save_file(tensors, tmp_path / "bad.safetensors",
                                    metadata={"format": "pt", "minibert": json.dumps(bad)})
        fresh = minibert.BertModel(tiny_config(), dtype="float64", seed=1)
        with pytest.raises(ValueError, match=message):
            load_adapters(fresh, tmp_path / "bad.safetensors")
        assert fresh.adapters.active is None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parameter_table_counts_each_variant(variant):
    fields = {k: v for k, v in VARIANTS[variant].items() if k not in ("activation", "scaling")}
    model = adapted_model(fields, layers=3)
    table = parameter_table(model.config, adapter_size=3, **fields)
    adapters = [n for n in model.params if ".adapter." in n]
    assert table["adapters"] == model.num_params(adapters)
    head = minibert.SequenceClassificationHead(8, 2)
    configure(model, head, "adapters")
    assert table["trained"] == model.num_params(model.trainable_names()) + head.num_params()


def test_the_adapters_own_layernorms_are_not_decayed():
    model = adapted_model({"ln_before": True, "ln_after": True})
    names = [n for n in model.params if ".ln_" in n]
    assert len(names) == 2 * 2 * 2 * 2 and all(no_weight_decay(n) for n in names)
    assert not no_weight_decay("encoder.layer.0.output.adapter.down.weight")


@pytest.mark.parametrize("fields, message", [
    ({"placement": "serial"}, "adapter placement: expected one of houlsby, pfeiffer, parallel"),
    ({"sites": ("intermediate",)}, "adapter sites: expected one or both of attention.output, "
                                   "output, found"),
    ({"sites": ()}, "adapter sites: expected one or both"),
    ({"scaling": float("nan")}, "adapter scaling: expected a finite number, found nan"),
    ({"ln_before": "yes"}, "adapter ln_before: expected true or false, found 'yes'"),
    ({"activation": "silu"},
     "adapter activation: expected one of gelu, gelu_new, relu, swish"),
])
def test_bad_variant_settings_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        add_adapters(minibert.BertModel(tiny_config()), size=2, **fields)


def test_a_runs_adapter_settings_are_adapter_configs_fields_with_its_defaults():
    import dataclasses
    from minibert.adapters import AdapterConfig
    from minibert.runs.settings import ADAPTER_SETTINGS, RunSettings
    fields = {f.name: f.default for f in dataclasses.fields(AdapterConfig)}
    assert sorted(ADAPTER_SETTINGS.values()) == sorted(fields)
    defaults = {f.name: f.default for f in dataclasses.fields(RunSettings)}
    for setting, name in ADAPTER_SETTINGS.items():
        assert defaults[setting] == fields[name], setting
    settings = RunSettings(adapter_placement="pfeiffer", adapter_ln_before=True, leave_out=[1, 0])
    assert settings.adapter_config() == AdapterConfig(placement="pfeiffer", ln_before=True,
                                                      leave_out=(0, 1))
