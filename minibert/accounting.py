"""Parameter accounting from a config alone: what each component costs, what a method trains."""
from . import checks
from .adapters import AdapterConfig, DEFAULT_SIZE, adapter_parameter_count, adapter_prefixes
from .heads import POOLINGS


def parameter_table(config, adapter_size=DEFAULT_SIZE, leave_out=(), num_labels=2,
                    pooling="cls", **variant):
    """Rows {component, parameters, trained} for the adapters method, and the totals.
    `variant`: the other fields of AdapterConfig (placement, sites, ln_before, ln_after).

    "trained" marks what adapter tuning updates: adapters, the 2L+1 LayerNorms and the head.
    The share is taken of the base model (embeddings + layers + LayerNorms + pooler; a head
    with mean pooling leaves the pooler unused, but it is part of the checkpoint)."""
    C, F, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    checks.integer("adapter_size", adapter_size)
    checks.layers("leave_out", leave_out, L)
    checks.integer("num_labels", num_labels)
    checks.choice("pooling", pooling, POOLINGS)
    linear = lambda n_in, n_out: n_in * n_out + n_out
    layer = 4 * linear(C, C) + linear(C, F) + linear(F, C)   # q, k, v, output; FFN in and out
    adapter = AdapterConfig(adapter_size, leave_out=tuple(leave_out), **variant)
    adapters = len(adapter_prefixes(L, adapter.leave_out, adapter.sites))
    per_adapter = adapter_parameter_count(C, adapter_size, adapter.ln_before, adapter.ln_after)
    formula = "2CM + C + M" + " + 2C" * (adapter.ln_before + adapter.ln_after)
    rows = [("embeddings (word, position, token type)",
             (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * C, False)]
    rows += [(f"layer {l} (attention, feed-forward)", layer, False) for l in range(L)]
    rows += [(f"LayerNorms ({2 * L + 1} x 2C)", (2 * L + 1) * 2 * C, True),
             ("pooler (dense on [CLS])" if pooling == "cls" else
              f"pooler (dense on [CLS]; unused: {pooling} pooling)", linear(C, C), False),
             (f"adapters ({adapters} {adapter.placement} x ({formula}), M={adapter_size})",
              adapters * per_adapter, True),
             (f"head ({num_labels} labels)", linear(C, num_labels), True)]
    rows = [{"component": name, "parameters": count, "trained": trained}
            for name, count, trained in rows]
    base = sum(r["parameters"] for r in rows if not r["component"].startswith(("adapters", "head")))
    trained = sum(r["parameters"] for r in rows if r["trained"])
    return {"rows": rows, "per_adapter": per_adapter, "per_adapter_formula": formula,
            "placement": adapter.placement, "sites": list(adapter.sites),
            "pooling": pooling, "adapters": adapters * per_adapter,
            "base_total": base, "total": sum(r["parameters"] for r in rows),
            "trained": trained, "trained_percent_of_base": 100.0 * trained / base}


def format_table(table):
    lines = [f"{'component':52s} {'parameters':>13s}  trained"]
    lines += [f"{r['component']:52s} {r['parameters']:>13,d}  {'yes' if r['trained'] else ''}"
              for r in table["rows"]]
    lines += [f"{'base model':52s} {table['base_total']:>13,d}",
              f"{'total with adapters and head':52s} {table['total']:>13,d}",
              f"{'trained (adapters + LayerNorms + head)':52s} {table['trained']:>13,d}  "
              f"{table['trained_percent_of_base']:.2f}% of the base model",
              f"per adapter: {table['per_adapter_formula']} = {table['per_adapter']:,d}"]
    return "\n".join(lines)
