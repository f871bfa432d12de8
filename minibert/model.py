"""BertModel: embeddings -> L Transformer layers -> pooler, forward and backward by hand.

The forward keeps every op's cache; the backward walks the same ops in reverse, layer by
layer, and accumulates gradients only for parameters that are not frozen.
"""
from collections.abc import MutableMapping
from typing import NamedTuple

from . import adapters, named_models, pretrained
from .adapters import AdapterSets
from .backend import host_generator, to_host
from .config import BertConfig
from .module import Module
from .param_names import is_layernorm, parse
from .ops import activations, attention, dropout, embedding


def parameter_shapes(config):
    """{name: shape} of every BertModel parameter, named as in Hugging Face checkpoints."""
    C, F = config.hidden_size, config.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (config.vocab_size, C),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, C),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, C),
        "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,),
    }
    for l in range(config.num_hidden_layers):
        p = f"encoder.layer.{l}."
        for name, (out_dim, in_dim) in {"attention.self.query": (C, C), "attention.self.key": (C, C),
                                        "attention.self.value": (C, C),
                                        "attention.output.dense": (C, C),
                                        "intermediate.dense": (F, C), "output.dense": (C, F)}.items():
            shapes[p + name + ".weight"] = (out_dim, in_dim)
            shapes[p + name + ".bias"] = (out_dim,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"] = (C,)
            shapes[p + name + ".bias"] = (C,)
    shapes["pooler.dense.weight"] = (C, C)
    shapes["pooler.dense.bias"] = (C,)
    return shapes


# What a forward pass keeps for the backward: each op's own cache (a dict), by the op's name. A
# dropout's cache is None when dropout is off. A block's end (the residual add and LayerNorm)
# keeps {"layernorm": ...}, and the adapter's caches where the block has one.
class EmbeddingsCache(NamedTuple):
    words: dict
    positions: dict
    token_types: dict
    layernorm: dict
    dropout: dict | None


class LayerCache(NamedTuple):
    query: dict                       # the attention block, in order
    key: dict
    value: dict
    attention: dict                   # its "probs" (B, H, T, T) are the attention maps
    attention_output: dict            # the block's output projection
    attention_dropout: dict | None
    attention_end: dict               # the residual add and LayerNorm, with the adapter if any
    intermediate: dict                # the feed-forward block, in order: C -> F
    gelu: dict
    output: dict                      # F -> C
    output_dropout: dict | None
    output_end: dict


class PoolerCache(NamedTuple):
    dense: dict
    tanh: dict


class ForwardCache(NamedTuple):
    embeddings: EmbeddingsCache
    layers: list                      # a LayerCache per layer
    pooler: PoolerCache
    shape: tuple                      # (B, T, C) of the sequence output


class ModelParameters(MutableMapping):
    """model.params: {name: array} of what the model computes with. Each name is read from and
    written to its one owner (AdapterSets.owner_of): assigning a new array replaces the
    owner's, so forward, save_adapters, switching sets and export all see it. The names are
    fixed by the model's config and its adapter sets: new ones and removals are refused."""

    def __init__(self, model):
        self.model = model

    def __getitem__(self, name):
        return self.model.owner_of(name).params[name]

    def __setitem__(self, name, array):
        owner = self.model.owner_of(name)
        shape = tuple(owner.params[name].shape)
        array = self.model.device.asarray(array, dtype=self.model.dtype)
        if tuple(array.shape) != shape:
            raise ValueError(f"model.params[{name!r}]: expected shape {shape}, "
                             f"found {tuple(array.shape)}")
        owner.params[name] = array

    def __delitem__(self, name):
        raise TypeError(f"model.params: {name!r} cannot be removed (disable_adapter_layers "
                        "takes adapters out of layers, set_active_adapters(model, None) "
                        "switches adapters off)")

    def __contains__(self, name):
        return self.model.adapters.owner_of(name) is not None

    def __iter__(self):
        return iter(self.model.adapters.names())

    def __len__(self):
        return len(self.model.adapters.names())

    def __repr__(self):
        return f"ModelParameters({len(self)} arrays)"


class BertModel(Module):
    def __init__(self, config, device=None, dtype="float32", seed=0):
        super().__init__(device, dtype, seed)
        self.config = config if isinstance(config, BertConfig) else BertConfig.from_dict(config)
        self.adapters = AdapterSets(self)   # named adapter sets and the active one
        self._params = ModelParameters(self)
        # the base model's own arrays; Hugging Face's init: weights ~ N(0, initializer_range),
        # biases 0, LayerNorm (1, 0)
        base, init, xp = self.owned.params, host_generator(seed), self.device.xp
        for name, shape in parameter_shapes(self.config).items():
            if is_layernorm(name) and name.endswith(".weight"):
                base[name] = xp.ones(shape, dtype=self.dtype)
            elif name.endswith(".bias"):
                base[name] = xp.zeros(shape, dtype=self.dtype)
            else:
                base[name] = self._normal(init, shape, self.config.initializer_range)
        base["embeddings.word_embeddings.weight"][self.config.pad_token_id] = 0
        self._cache = None                  # the last forward's caches, which backward walks

    @classmethod
    def from_pretrained(cls, name_or_path, device=None, dtype="float32", allow_random=False):
        """A pretrained BERT: a name ("minilm-l6"), a Hugging Face-format folder or a hub id.

        allow_random=True also takes an architecture alone (a name such as "bert-base-random",
        or a folder holding only config.json) and gives it randomly initialised weights."""
        if allow_random and not named_models.has_weights(name_or_path):
            return cls(named_models.config_of(name_or_path), device=device, dtype=dtype)
        config, tensors = pretrained.read_pretrained(named_models.folder_of(name_or_path))
        pretrained.check_tensors(tensors, parameter_shapes(config), source=str(name_or_path))
        model = cls(config, device=device, dtype=dtype)
        model.params = {name: model.device.asarray(tensors[name], dtype=dtype)
                        for name in model.params}
        return model

    @property
    def params(self):
        """The one view of what the model computes with (ModelParameters)."""
        return self._params

    @params.setter
    def params(self, arrays):
        for name, array in dict(arrays).items():
            self._params[name] = array

    def owner_of(self, name):
        owner = self.adapters.owner_of(name)
        if owner is None:
            raise KeyError(f"no parameter named {name!r}")
        return owner

    def _convert(self, fn):
        # every array the model owns: the base (with its own LayerNorms) and each adapter set
        super()._convert(fn)
        self.adapters.convert(fn)

    def save_pretrained(self, folder):
        """The base model as a Hugging Face folder: its own weights and LayerNorms, whichever
        adapter set is active (save_adapters saves a set)."""
        pretrained.write_pretrained(folder, self.config,
                                    {n: to_host(p) for n, p in self.owned.params.items()})

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids, *positional, token_type_ids=None, attention_mask=None,
                keep_cache=True):
        """input_ids, token_type_ids, attention_mask (B, T) -> sequence (B, T, C), pooled (B, C).
        All but input_ids by keyword: a mask and token types swapped would pass unnoticed.

        keep_cache=False (inference): each layer's caches are dropped as soon as it is done, so
        memory holds one layer's activations instead of L; backward and attention_probs then
        have nothing to work from."""
        if positional:
            raise TypeError("forward: pass token_type_ids= and attention_mask= by keyword after "
                            "input_ids (transformers' order is input_ids, attention_mask, "
                            "token_type_ids: by position they are easily swapped)")
        input_ids, token_type_ids, attention_mask = self._check_inputs(
            input_ids, token_type_ids, attention_mask)
        self._cache = None      # the last pass's caches go before this one's are made
        rng = self.rng if self.training else None
        x, embeddings_cache = self._embeddings_forward(input_ids, token_type_ids, rng)
        mask_bias = attention.mask_to_bias(attention_mask, self.dtype)
        layer_caches = []
        for l in range(self.config.num_hidden_layers):
            x, cache = self.layer_forward(l, x, mask_bias, rng)
            if keep_cache:
                layer_caches.append(cache)
        pooled, pooler_cache = self._pooler_forward(x)
        self._cache = (ForwardCache(embeddings_cache, layer_caches, pooler_cache, x.shape)
                       if keep_cache else None)
        return x, pooled

    def attention_probs(self):
        """The attention maps of the last forward: one (B, H, T, T) array per layer."""
        return [layer.attention["probs"] for layer in self._last_cache("attention_probs").layers]

    def _last_cache(self, caller):
        if self._cache is None:
            raise RuntimeError(f"{caller} needs the caches of a forward pass: call forward "
                               "(with keep_cache=True, the default) first")
        return self._cache

    def _embeddings_forward(self, input_ids, token_type_ids, rng):
        p, xp = self.params, self.device.xp
        T = input_ids.shape[1]
        words, words_cache = embedding.embedding_forward(input_ids,
                                                         p["embeddings.word_embeddings.weight"])
        positions, positions_cache = embedding.embedding_forward(
            xp.arange(T)[None, :], p["embeddings.position_embeddings.weight"])    # (1, T, C)
        types, types_cache = embedding.embedding_forward(
            token_type_ids, p["embeddings.token_type_embeddings.weight"])
        x, ln_cache = self.layernorm(words + positions + types, "embeddings.LayerNorm",
                                     self.config.layer_norm_eps)
        x, dropout_cache = dropout.dropout_forward(x, self.config.hidden_dropout_prob, rng)
        return x, EmbeddingsCache(words_cache, positions_cache, types_cache, ln_cache, dropout_cache)

    def layer_forward(self, l, x, mask_bias, rng=None):
        """Transformer layer l: x (B, T, C) -> (B, T, C), attention block then feed-forward
        block, each closed by residual + LayerNorm. mask_bias (B, 1, 1, T) from mask_to_bias."""
        cfg, p = self.config, f"encoder.layer.{l}."
        q, q_cache = self.linear(x, p + "attention.self.query")
        k, k_cache = self.linear(x, p + "attention.self.key")
        v, v_cache = self.linear(x, p + "attention.self.value")
        B, T, _ = x.shape
        keep = dropout.dropout_mask((B, cfg.num_attention_heads, T, T),
                                    cfg.attention_probs_dropout_prob, rng, x.dtype)
        context, attn_cache = attention.attention_forward(q, k, v, mask_bias,
                                                          cfg.num_attention_heads, keep,
                                                          cfg.attention_probs_dropout_prob)
        a, a_cache = self.linear(context, p + "attention.output.dense")
        a, a_drop = dropout.dropout_forward(a, cfg.hidden_dropout_prob, rng)
        h, h_end = self._block_end(p + "attention.output", a, x)        # LayerNorm(a + x)

        i, i_cache = self.linear(h, p + "intermediate.dense")                  # (B, T, F)
        i, gelu_cache = activations.gelu_forward(i, cfg.gelu_form)
        o, o_cache = self.linear(i, p + "output.dense")                        # (B, T, C)
        o, o_drop = dropout.dropout_forward(o, cfg.hidden_dropout_prob, rng)
        y, y_end = self._block_end(p + "output", o, h)                  # LayerNorm(o + h)
        return y, LayerCache(q_cache, k_cache, v_cache, attn_cache, a_cache, a_drop, h_end,
                             i_cache, gelu_cache, o_cache, o_drop, y_end)

    def _block_end(self, site, o, x):
        """A block's end: o the sub-layer's output, x the block's input (B, T, C) ->
        LayerNorm(o + x); where the active adapter set has an adapter at `site`, the adapter
        placed in it as the set's config says (adapters.block_end_forward)."""
        eps = self.config.layer_norm_eps
        if not self.adapters.has_adapter(site):          # none active, left out or disabled
            y, ln_cache = self.layernorm(o + x, site + ".LayerNorm", eps)
            return y, {"layernorm": ln_cache}
        return adapters.block_end_forward(self, site, o, x, self.adapters.config, eps)

    def _block_end_backward(self, site, dy, cache):
        # dy (B, T, C) -> (do, dx), the gradients of the sub-layer's output and the block's input
        if "adapter" in cache:
            return adapters.block_end_backward(self, site, dy, cache, self.adapters.config)
        dsum = self.layernorm_backward(dy, cache["layernorm"], site + ".LayerNorm")  # d(o + x)
        return dsum, dsum

    def _pooler_forward(self, x):
        # the [CLS] position through tanh(dense): (B, T, C) -> (B, C)
        z, dense_cache = self.linear(x[:, 0], "pooler.dense")
        pooled, tanh_cache = activations.tanh_forward(z)
        return pooled, PoolerCache(dense_cache, tanh_cache)

    # ------------------------------------------------------------------ backward
    def backward(self, dseq=None, dpooled=None):
        """Gradients of a scalar loss w.r.t. the outputs of the last forward -> self.grads.

        Backpropagation stops below the lowest layer that holds a trainable parameter."""
        cache, xp = self._last_cache("backward"), self.device.xp
        dx = (xp.zeros(cache.shape, dtype=self.dtype) if dseq is None
              else xp.array(dseq, dtype=self.dtype))
        if dpooled is not None:
            dpooled = self.device.asarray(dpooled, dtype=self.dtype)
            dx[:, 0] += self._pooler_backward(dpooled, cache.pooler)
        lowest = self._lowest_trainable_layer()
        for l in reversed(range(max(lowest, 0), self.config.num_hidden_layers)):
            dx = self.layer_backward(l, dx, cache.layers[l], input_grad=l > lowest)
        if lowest == -1:
            self._embeddings_backward(dx, cache.embeddings)

    def _lowest_trainable_layer(self):
        # -1: the embeddings learn; l: layer l is the lowest that learns; L: only the pooler
        trainable = [parse(name) for name in self.trainable_names()]
        if any(name.site == "embeddings" for name in trainable):
            return -1
        return min((name.layer for name in trainable if name.layer is not None),
                   default=self.config.num_hidden_layers)

    def _pooler_backward(self, dpooled, cache):
        return self.linear_backward(activations.tanh_backward(dpooled, cache.tanh), cache.dense,
                                    "pooler.dense")

    def layer_backward(self, l, dy, cache, input_grad=True):
        """dy (B, T, C) -> dx (B, T, C) (None when input_grad is False); layer l's parameter
        gradients accumulate in self.grads."""
        p = f"encoder.layer.{l}."
        do, dh = self._block_end_backward(p + "output", dy, cache.output_end)
        do = dropout.dropout_backward(do, cache.output_dropout)
        di = self.linear_backward(do, cache.output, p + "output.dense")
        di = activations.gelu_backward(di, cache.gelu)
        dh = dh + self.linear_backward(di, cache.intermediate, p + "intermediate.dense")

        da, dx = self._block_end_backward(p + "attention.output", dh, cache.attention_end)
        da = dropout.dropout_backward(da, cache.attention_dropout)
        dcontext = self.linear_backward(da, cache.attention_output, p + "attention.output.dense")
        dq, dk, dv = attention.attention_backward(dcontext, cache.attention)
        # the layer's input feeds q, k, v and the residual; below the lowest learning layer
        # its gradient is not needed and the three dx products are skipped
        dx = dx if input_grad else None
        for dout, op_cache, name in ((dq, cache.query, "query"), (dk, cache.key, "key"),
                                     (dv, cache.value, "value")):
            d = self.linear_backward(dout, op_cache, p + "attention.self." + name, input_grad)
            if input_grad:
                dx = dx + d
        return dx

    def _embeddings_backward(self, dx, cache):
        dsum = self.layernorm_backward(dropout.dropout_backward(dx, cache.dropout), cache.layernorm,
                                       "embeddings.LayerNorm")
        for name, op_cache, dout, padding_idx in (
                ("word_embeddings", cache.words, dsum, self.config.pad_token_id),
                ("position_embeddings", cache.positions, dsum.sum(axis=0, keepdims=True), None),
                ("token_type_embeddings", cache.token_types, dsum, None)):
            name = f"embeddings.{name}.weight"
            if self.trainable(name):
                self.accumulate(name, embedding.embedding_backward(dout, op_cache, padding_idx))

    # ------------------------------------------------------------------ inputs
    def _check_inputs(self, input_ids, token_type_ids, attention_mask):
        """Move the inputs to the model's device and refuse what BERT cannot take."""
        cfg, xp = self.config, self.device.xp
        input_ids = self.device.asarray(input_ids)
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids: expected shape (B, T), found shape {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if T > cfg.max_position_embeddings:
            raise ValueError(f"input_ids: sequence length {T} exceeds max_position_embeddings "
                             f"{cfg.max_position_embeddings}")
        if token_type_ids is None:
            token_type_ids = xp.zeros((B, T), dtype=input_ids.dtype)
        if attention_mask is None:
            attention_mask = xp.ones((B, T), dtype=input_ids.dtype)
        token_type_ids = self.device.asarray(token_type_ids)
        attention_mask = self.device.asarray(attention_mask)
        for name, ids, limit, kinds in (("input_ids", input_ids, cfg.vocab_size, "iu"),
                                        ("token_type_ids", token_type_ids, cfg.type_vocab_size, "iu"),
                                        ("attention_mask", attention_mask, 2, "iub")):
            if ids.shape != (B, T):
                raise ValueError(f"{name}: expected shape {(B, T)} like input_ids, "
                                 f"found {tuple(ids.shape)}")
            if ids.dtype.kind not in kinds:
                raise ValueError(f"{name}: expected an integer array, found dtype {ids.dtype}")
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= limit):
                raise ValueError(f"{name}: expected values in [0, {limit - 1}], found values in "
                                 f"[{int(ids.min())}, {int(ids.max())}]")
        return input_ids, token_type_ids, attention_mask

    def host_params(self):
        """{name: numpy array} copies, for saving."""
        return {name: to_host(p) for name, p in self.params.items()}
