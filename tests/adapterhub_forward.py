"""AdapterHub's forward of a BERT with one bottleneck adapter, run in AdapterHub's own
environment (adapterhub_env.py); it imports nothing of minibert.

    python adapterhub_forward.py WORK

WORK/cases.json: {"base": HF model folder, "inputs": .npz with input_ids, token_type_ids and
attention_mask, "cases": {NAME: {"config": BnConfig fields, "tensors": .safetensors}},
"folders": {NAME: an adapter folder}}. Each folder is loaded as AdapterHub's users load one,
into a BertAdapterModel with `load_adapter(folder, use_safetensors=True)` and the LayerNorms of
its minibert_layernorms.safetensors; WORK/NAME.logits.npy gets its head's logits (question
answering: start and end, stacked), NAME.logits.float64.npy the same in float64. And
"made": {NAME: {"config": a config name or BnConfig fields, "head": add_classification_head's
arguments, "folder": where to save, "safetensors": bool, "seed": int}}: an adapter and head
made in AdapterHub, their weights drawn at random (the adapter's large enough to matter),
saved with save_adapter; WORK/NAME.logits.npy gets their logits. Each
case's tensors (AdapterHub's names, and the LayerNorms trained with the adapter under the
base's names) are loaded into transformers' BertModel with adapter NAME added by
`adapters.init`, each of the adapter's parameters given (an alias of it counts). WORK/NAME.npy
gets the last hidden state, NAME.float64.npy the same of the model cast to float64, and
NAME.keys.json the adapter's names in the model's state_dict (one module's two names, both).
"""
import json
import sys
from pathlib import Path

import adapters
import numpy as np
import torch
import transformers
from safetensors.torch import load_file

work = Path(sys.argv[1])
spec = json.loads((work / "cases.json").read_text())
inputs = {k: torch.from_numpy(v) for k, v in np.load(spec["inputs"]).items()}
for name, case in spec["cases"].items():
    model = transformers.BertModel.from_pretrained(spec["base"], attn_implementation="eager",
                                                   add_pooling_layer=False)
    adapters.init(model)
    model.add_adapter(name, config=adapters.BnConfig.from_dict(case["config"]))
    model.set_active_adapters(name)
    own = {n: p for n, p in model.named_parameters() if f".adapters.{name}." in n}
    with torch.no_grad():
        for p in own.values():              # NaN until given: every one must be
            p.fill_(float("nan"))
    _, unexpected = model.load_state_dict(load_file(case["tensors"]), strict=False)
    assert not unexpected, f"{name}: names AdapterHub's model does not have: {unexpected}"
    unset = [n for n, p in own.items() if torch.isnan(p).any()]
    assert not unset, f"{name}: adapter tensors not given: {unset}"
    model.eval()
    with torch.no_grad():
        np.save(work / f"{name}.npy", model(**inputs).last_hidden_state.numpy())
        model.double()                      # the same in float64: round-off out of the way
        np.save(work / f"{name}.float64.npy", model(**inputs).last_hidden_state.numpy())
    keys = sorted(k for k in model.state_dict() if f".adapters.{name}." in k)
    (work / f"{name}.keys.json").write_text(json.dumps(keys))
    print(name, "done")
for name, folder in spec.get("folders", {}).items():
    model = adapters.BertAdapterModel.from_pretrained(spec["base"], attn_implementation="eager")
    loaded = model.load_adapter(folder, use_safetensors=True)
    model.set_active_adapters(loaded)
    _, unexpected = model.load_state_dict(load_file(f"{folder}/minibert_layernorms.safetensors"),
                                          strict=False)
    assert not unexpected, f"{name}: LayerNorm names the model does not have: {unexpected}"
    model.eval()
    with torch.no_grad():
        for suffix in ("", ".float64"):
            if suffix:
                model.double()
            out = model(**inputs)
            logits = (torch.stack([out.start_logits, out.end_logits])
                      if hasattr(out, "start_logits") else out.logits)
            np.save(work / f"{name}.logits{suffix}.npy", logits.numpy())
    print(name, "loaded as", loaded, "done")
for name, made in spec.get("made", {}).items():
    torch.manual_seed(made["seed"])
    model = adapters.BertAdapterModel.from_pretrained(spec["base"], attn_implementation="eager")
    model.add_adapter(name, config=made["config"])
    head = dict(made["head"])
    head["id2label"] = {int(i): label for i, label in head.get("id2label", {}).items()} or None
    model.add_classification_head(name, **head)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if f".adapters.{name}." in key or f"heads.{name}." in key:
                p.copy_(torch.randn_like(p) * 0.05 + (1.0 if key.endswith("norm_after.weight")
                                                      or "adapter_norm_before.weight" in key
                                                      else 0.0))
    model.set_active_adapters(name)
    model.save_adapter(made["folder"], name, with_head=True, use_safetensors=made["safetensors"])
    model.eval()
    with torch.no_grad():
        np.save(work / f"{name}.logits.npy", model(**inputs).logits.numpy())
    print(name, "made")
