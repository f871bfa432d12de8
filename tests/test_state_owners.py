"""One owner for every piece of state: each array is held by one owner (the base model or one
adapter set), and what forward computes is what saving, switching sets, casting, freezing and
the optimizer see. One test per way a user of the Python API could once get a wrong result
with no error, then random sequences of those uses, each checked against a reload."""
import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minibert
from minibert.adapters import add_adapters, disable_adapter_layers, set_active_adapters
from minibert.optim import AdamW
from minibert.param_names import is_adapter, is_layernorm
from minibert.train import configure

from closeness import assert_close
from conftest import tiny_config

LABELS = np.array([1, 0])


def adapted(config, **variant):
    model = minibert.BertModel(config, seed=1)
    add_adapters(model, size=3, init_std=0.3, name="a", seed=2, **variant)
    return model


def seq_of(model, batch):
    return model.forward(**batch)[0]


def reload(model, tmp_path, head=None):
    """A new model from what `model` saves: its base (save_pretrained) and, when a set is
    active, that set (save_adapters) -> (the model, the head read back or None)."""
    model.save_pretrained(tmp_path / "base")
    fresh = minibert.BertModel.from_pretrained(tmp_path / "base", dtype=model.dtype)
    if model.adapters.active is None:
        return fresh, None
    minibert.save_adapters(model, tmp_path / "set.safetensors", head)
    return fresh, minibert.load_adapters(fresh, tmp_path / "set.safetensors")


# --- 1. an array assigned through model.params is the owner's: saved, switched, exported ---
def test_a_rebound_adapter_weight_and_layernorm_are_what_is_saved(config, batch, tmp_path):
    model = adapted(config)
    rng = np.random.default_rng(0)
    for name in ("encoder.layer.1.output.adapter.up.weight", "encoder.layer.0.output.LayerNorm.weight"):
        model.params[name] = model.params[name] + rng.standard_normal(model.params[name].shape)
    model.params.update({"encoder.layer.0.output.adapter.down.bias":
                         np.full(3, 0.5, dtype=np.float32)})
    expected = seq_of(model, batch)
    add_adapters(model, size=2, name="b")
    set_active_adapters(model, "a")                   # switching away and back keeps them
    np.testing.assert_array_equal(seq_of(model, batch), expected)
    fresh, _ = reload(model, tmp_path)
    assert_close(seq_of(fresh, batch), expected, tol=1e-6)


def test_params_refuses_new_names_removals_and_other_shapes(config):
    model = adapted(config)
    with pytest.raises(KeyError, match="encoder.layer.5.output.adapter.up.weight"):
        model.params["encoder.layer.5.output.adapter.up.weight"] = np.zeros((8, 3), np.float32)
    with pytest.raises(TypeError, match="cannot be removed"):
        del model.params["encoder.layer.0.output.adapter.up.weight"]
    with pytest.raises(ValueError, match=r"expected shape \(8, 3\), found \(3, 8\)"):
        model.params["encoder.layer.0.output.adapter.up.weight"] = np.zeros((3, 8), np.float32)


# --- 2. a head applies its own pooling, in forward as in forward_batch ---
@pytest.mark.parametrize("pooling", ["mean", "cls_token"])
def test_a_head_pools_in_forward_as_in_forward_batch(config, batch, pooling):
    model = minibert.BertModel(config, seed=1)
    head = minibert.SequenceClassificationHead(config.hidden_size, 2, pooling=pooling)
    seq, pooled = model.forward(**batch)
    expected, loss = head.forward_batch(seq, pooled, {**batch, "labels": LABELS})
    logits, same_loss = head.forward(seq, LABELS, attention_mask=batch["attention_mask"])
    np.testing.assert_array_equal(logits, expected)
    assert float(same_loss) == float(loss)
    with pytest.raises(ValueError, match=f"pooling '{pooling}' reads the model's sequence output"):
        head.forward(pooled, LABELS)


# --- 3. AdamW's moments follow their arrays: a set's first step is a fresh optimizer's ---
def train_steps(model, head, optimizer, batch, steps):
    for _ in range(steps):
        model.zero_grad()
        head.zero_grad()
        head.forward(model.forward(**batch)[1], LABELS)
        model.backward(None, head.backward())
        optimizer.step(1e-2)


def test_a_second_sets_first_step_equals_a_fresh_optimizers(config, batch):
    def second_set(steps_on_first):
        model = adapted(config)
        head = minibert.SequenceClassificationHead(config.hidden_size, 2, seed=3)
        configure(model, head, "adapters")
        head.freeze()                       # the sets alone learn: the head stays as it began
        optimizer = AdamW([model, head], lr=1e-2)
        train_steps(model, head, optimizer, batch, steps_on_first)
        add_adapters(model, size=3, init_std=0.3, name="b", seed=4)
        configure(model, head, "adapters")
        head.freeze()
        train_steps(model, head, optimizer, batch, 1)
        return {n: model.params[n].copy() for n in model.adapters["b"].params}
    after_a, fresh = second_set(3), second_set(0)
    for name, value in fresh.items():
        np.testing.assert_array_equal(after_a[name], value, err_msg=name)


# --- 4. freezing is per set: a new set is trainable whole ---
def test_freezing_one_set_leaves_a_new_set_trainable(config, batch):
    model = adapted(config)
    model.freeze([n for n in model.params if is_adapter(n) or is_layernorm(n)])
    add_adapters(model, size=3, name="b")
    assert set(model.trainable_names()) >= set(model.adapters["b"].params)
    model.freeze([n for n in model.params if not (is_adapter(n) or is_layernorm(n))])
    head = minibert.SequenceClassificationHead(config.hidden_size, 2)
    head.forward(model.forward(**batch)[1], LABELS)
    model.backward(None, head.backward())
    assert set(model.grads) == set(model.adapters["b"].params)
    set_active_adapters(model, "a")
    assert not any(is_adapter(n) for n in model.trainable_names())    # a's stay frozen


def test_a_new_pfeiffer_set_after_configure_head_is_trainable_whole(config):
    model = minibert.BertModel(config, seed=1)
    head = minibert.SequenceClassificationHead(config.hidden_size, 2)
    configure(model, head, "head")
    names = add_adapters(model, size=3, name="p", placement="pfeiffer", ln_before=True)
    assert all(model.trainable(n) for n in names)


# --- 5. disabled layers survive casts and moves, and are refused at save ---
def test_disabled_layers_survive_astype_and_to(config, batch, tmp_path):
    model = adapted(config)
    disable_adapter_layers(model, [0])
    expected = seq_of(model, batch)
    assert_close(seq_of(model.astype("float64"), batch), expected, tol=1e-5)
    assert_close(seq_of(model.to("numpy").astype("float32"), batch), expected, tol=1e-5)
    with pytest.raises(ValueError, match=r"has layers \[0\] disabled"):
        minibert.save_adapters(model, tmp_path / "a.safetensors")
    set_active_adapters(model, "a")
    assert not np.allclose(seq_of(model, batch), expected)


# --- 6. save_pretrained writes the base model, whichever set is active ---
def test_save_pretrained_with_a_set_active_writes_the_base(config, batch, tmp_path):
    model = adapted(config)
    model.params["encoder.layer.0.output.LayerNorm.bias"] = np.full(8, 0.3, dtype=np.float32)
    model.save_pretrained(tmp_path / "base")
    tensors = safetensors.numpy.load_file(str(tmp_path / "base" / "model.safetensors"))
    assert not any("adapter" in n for n in tensors)
    set_active_adapters(model, None)
    fresh = minibert.BertModel.from_pretrained(tmp_path / "base")
    np.testing.assert_array_equal(seq_of(fresh, batch), seq_of(model, batch))


# --- 7. forward's arguments after input_ids are keyword-only ---
def test_forward_refuses_positional_mask_or_token_types(config, batch):
    model = minibert.BertModel(config)
    with pytest.raises(TypeError, match="pass token_type_ids= and attention_mask= by keyword"):
        model.forward(batch["input_ids"], batch["attention_mask"])


# --- 8. a pair keeps a token of each text, or is refused ---
def test_a_pair_too_long_for_max_length_is_refused():
    tok = minibert.Tokenizer.from_pretrained("minilm-l6")
    for max_length in (3, 4):
        with pytest.raises(ValueError, match="max_length: a pair needs 5 at least"):
            tok(["a long first text"], ["and a second one"], max_length=max_length)
    ids = tok(["a long first text"], ["and a second one"], max_length=5)["input_ids"][0]
    tokens = tok.convert_ids_to_tokens(ids)
    assert [tokens[i] for i in (0, 2, 4)] == ["[CLS]", "[SEP]", "[SEP]"]
    assert "[SEP]" not in (tokens[1], tokens[3])                  # a token of each text


# --- 9. layers a model does not have are refused ---
def test_disabling_a_layer_the_model_lacks_is_refused(config):
    model = adapted(config)
    with pytest.raises(ValueError, match=r"layers: expected layer indices in \[0, 1\], found \[7\]"):
        disable_adapter_layers(model, [7])
    set_active_adapters(model, None)
    with pytest.raises(ValueError, match="no adapter set is active"):
        disable_adapter_layers(model, [0])


def test_dtypes_the_ops_do_not_support_are_refused(config):
    with pytest.raises(ValueError, match="dtype: expected one of float32, float64, found 'float16'"):
        minibert.BertModel(config).astype("float16")


# --- 10. to() keeps the dropout stream ---
def test_to_keeps_the_dropout_stream(config, batch):
    moved, kept = (minibert.BertModel(config, seed=1).train() for _ in range(2))
    first = seq_of(moved, batch)
    np.testing.assert_array_equal(seq_of(kept, batch), first)
    moved.to("numpy")
    np.testing.assert_array_equal(seq_of(moved, batch), seq_of(kept, batch))
    assert not np.array_equal(seq_of(moved, batch), first)


# --- every use above, in random orders: forward always equals what a reload computes ---
OPERATIONS = st.lists(st.sampled_from(["add", "add-pfeiffer", "switch", "base", "astype",
                                       "freeze", "configure", "rebind", "update", "disable",
                                       "enable", "train-step"]), min_size=1, max_size=8)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS, choice=st.randoms(use_true_random=False))
def test_any_order_of_uses_forward_equals_reload(operations, choice, batch, tmp_path_factory):
    config = tiny_config()
    model = minibert.BertModel(config, seed=1)
    head = minibert.SequenceClassificationHead(config.hidden_size, 2, seed=3)
    optimizer = AdamW([model, head], lr=1e-2)
    rng = np.random.default_rng(choice.randrange(1000))
    count = 0
    for operation in operations:
        active = model.adapters.active
        if operation.startswith("add"):
            count += 1
            variant = {"placement": "pfeiffer", "ln_before": True} if operation == "add-pfeiffer" else {}
            add_adapters(model, size=2, init_std=0.3, name=f"s{count}", seed=count, **variant)
        elif operation == "switch" and model.adapters.sets:
            set_active_adapters(model, choice.choice(sorted(model.adapters.sets)))
        elif operation == "base":
            set_active_adapters(model, None)
        elif operation == "astype":
            model.astype("float64" if model.dtype == "float32" else "float32")
            head.astype(model.dtype)
        elif operation == "freeze":
            model.freeze(choice.sample(list(model.params), 5))
        elif operation == "configure":
            configure(model, head, "adapters" if active else "layernorm")
        elif operation in ("rebind", "update"):
            name = choice.choice([n for n in model.params if is_adapter(n) or is_layernorm(n)]
                                 if active else list(model.params))
            value = model.params[name] + 0.1 * rng.standard_normal(model.params[name].shape)
            if operation == "rebind":
                model.params[name] = value
            else:
                model.params.update({name: value})
        elif operation == "disable" and active:
            disable_adapter_layers(model, [choice.randrange(config.num_hidden_layers)])
        elif operation == "enable" and active:
            set_active_adapters(model, active)
        elif operation == "train-step" and model.trainable_names():
            model.train()
            train_steps(model, head, optimizer, batch, 1)
            model.eval()
    if model.adapters.active is not None:
        set_active_adapters(model, model.adapters.active)      # saving refuses disabled layers
    expected = seq_of(model, batch)
    fresh, _ = reload(model, tmp_path_factory.mktemp("reload"))
    assert_close(seq_of(fresh, batch), expected, tol=1e-5, name=" ".join(operations))
