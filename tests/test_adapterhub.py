"""minibert's adapter variants against AdapterHub's own forward (`adapters` 1.3.0 on
transformers 4.57.6, torch CPU, in an environment of its own: adapterhub_env.py), with the same
weights: the real minilm-l6, adapters of every variant, LayerNorms trained away from the base's.
Also AdapterHub's names: its BnConfig of each AdapterConfig, its tensor names, its size."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import minibert
from minibert import adapterhub, named_models
from minibert.adapter_files import load_adapters, save_adapters
from minibert.adapters import AdapterConfig, add_adapters, layernorm_names, set_active_adapters
from minibert.cli import main

import adapterhub_env
from closeness import assert_close

TEXTS = ["adapters keep the pretrained weights frozen", "a short one",
         "the quick brown fox jumps over the lazy dog and runs away"]
VARIANTS = {
    # AdapterHub's three configs as it ships them: DoubleSeqBnConfig (Houlsby, swish),
    # SeqBnConfig (Pfeiffer, relu) and ParBnConfig (parallel, relu, scaling 4)
    "houlsby-swish": {"activation": "swish"},
    "pfeiffer-relu": {"placement": "pfeiffer", "activation": "relu"},
    "parallel-relu": {"placement": "parallel", "activation": "relu"},
    # and the other settings, each at least once
    "houlsby-gelu": {},
    "houlsby-gelu_new-attention-only": {"activation": "gelu_new", "sites": ("attention.output",)},
    "houlsby-tanh-output-only-ln-before-after": {"activation": "tanh", "sites": ("output",),
                                                 "ln_before": True, "ln_after": True},
    "pfeiffer-both-sites-ln-after": {"placement": "pfeiffer", "sites": ("attention.output",
                                                                        "output"),
                                     "ln_after": True},
    "parallel-both-sites-scaling-2-ln-before": {"placement": "parallel", "scaling": 2.0,
                                                "sites": ("attention.output", "output"),
                                                "ln_before": True},
    "houlsby-leave-out-0-3": {"leave_out": (0, 3)},
}


def adapted(fields, seed):
    """minilm-l6 with an adapter set of the variant, its weights and LayerNorms moved well away
    from the near-identity init, so that every tensor shapes the output."""
    model = minibert.BertModel.from_pretrained("minilm-l6")
    add_adapters(model, size=16, init_std=0.05, seed=seed, name="variant", **fields)
    rng = np.random.default_rng(seed)
    for name, p in model.params.items():
        if ".adapter." in name or "LayerNorm" in name:
            p += rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    return model


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """({variant: (minibert's last hidden state, AdapterHub's, both in float64, the base
    model's, AdapterHub's state_dict names of the adapter, ours for them)}, {export: (our
    head's logits, in float64, AdapterHub's of the exported folder, in float64)})."""
    python = adapterhub_env.python()           # skips, saying why, where it cannot be made
    work = tmp_path_factory.mktemp("adapterhub")
    enc = minibert.Tokenizer.from_pretrained("minilm-l6")(TEXTS)
    np.savez(work / "inputs.npz", **enc)
    ours, ours64, cases, names = {}, {}, {}, {}
    for seed, (variant, fields) in enumerate(VARIANTS.items()):
        model = adapted(fields, seed)
        config, L = model.adapters.config, model.config.num_hidden_layers
        names[variant] = adapterhub.tensor_names(config, L, variant)
        tensors = {hub: np.ascontiguousarray(model.params[n]) for n, hub in names[variant].items()}
        tensors.update({n: np.ascontiguousarray(model.params[n]) for n in layernorm_names(L)})
        safetensors.numpy.save_file(tensors, work / f"{variant}.safetensors")
        cases[variant] = {"config": adapterhub.bn_config(config, model.config.hidden_size),
                          "tensors": str(work / f"{variant}.safetensors")}
        ours[variant] = model.forward(**enc)[0]
        ours64[variant] = model.astype("float64").forward(**enc)[0]
    set_active_adapters(model, None)
    base = model.forward(**enc)[0]
    folders, logits = {}, {}
    for export, make in EXPORTS.items():
        file = make(work / export)
        folders[export] = str(work / export / "hub")
        assert main(["export", "--adapters", str(file), "--to", "adapterhub", "--out",
                     folders[export]]) == 0
        logits[export] = [head_logits(file, enc, dtype) for dtype in ("float32", "float64")]
    made = {name: {**spec, "folder": str(work / name), "seed": seed}
            for seed, (name, spec) in enumerate(MADE.items())}
    (work / "cases.json").write_text(json.dumps({
        "base": str(named_models.folder_of("minilm-l6")), "inputs": str(work / "inputs.npz"),
        "cases": cases, "folders": folders, "made": made}))
    assert python.is_file()
    adapterhub_env.forward(work)
    variants = {v: (ours[v], np.load(work / f"{v}.npy"), ours64[v],
                    np.load(work / f"{v}.float64.npy"), base,
                    json.loads((work / f"{v}.keys.json").read_text()), names[v])
                for v in VARIANTS}
    exports = {e: (*logits[e], np.load(work / f"{e}.logits.npy"),
                   np.load(work / f"{e}.logits.float64.npy")) for e in EXPORTS}
    made_here = {name: (np.load(work / f"{name}.logits.npy"), work / name) for name in MADE}
    return variants, exports, made_here


def trained_here(folder):
    """An adapter file of a real (short) training run: TREC-6, Houlsby's adapters, the head on
    the pooled [CLS] (AdapterHub's heads have no mean pooling)."""
    assert main(["train", "--task", "TREC-6", "--out", str(folder), "--epochs", "1",
                 "--max-train-examples", "64", "--max-eval-examples", "16",
                 "--max-seq-length", "32", "--pooling", "cls"]) == 0
    return folder / "adapter.safetensors"


def saved(fields, head, labels=None, **head_fields):
    """An adapter file of a variant with a random head (`head`: its labels' count, or "qa")."""
    def make(folder):
        model = adapted(fields, seed=7)
        h = (minibert.QuestionAnsweringHead(384, initializer_range=0.2, seed=3) if head == "qa"
             else minibert.SequenceClassificationHead(384, head, initializer_range=0.2, seed=3,
                                                      **head_fields))
        h.params = {n: p + 0.1 for n, p in h.params.items()}    # biases away from zero too
        save_adapters(model, folder / "adapter.safetensors", head=h, task="mine",
                      data=None if head == "qa" else {"labels": labels})
        return folder / "adapter.safetensors"
    return make


EXPORTS = {
    "trained-houlsby-classification": trained_here,
    "pfeiffer-ln-after-regression": saved({"placement": "pfeiffer", "ln_after": True}, 1),
    "parallel-question-answering": saved({"placement": "parallel", "activation": "relu"}, "qa"),
    "houlsby-two-layer-head-on-the-cls-token": saved({"activation": "swish"}, 4,
                                                     ["a", "b", "c", "d"], pooling="cls_token",
                                                     layers=2),
}


# adapters and heads made in AdapterHub, its three configs by name, saved both ways
MADE = {
    "hub-houlsby": {"config": "double_seq_bn", "safetensors": True,
                    "head": {"num_labels": 3, "layers": 1, "use_pooler": True,
                             "id2label": {"0": "neg", "1": "neutral", "2": "pos"}}},
    "hub-pfeiffer": {"config": "seq_bn", "safetensors": False,        # pytorch_adapter.bin
                     "head": {"num_labels": 1, "layers": 1, "use_pooler": True}},
    "hub-parallel": {"config": "par_bn", "safetensors": True,
                     "head": {"num_labels": 2, "layers": 1, "use_pooler": True}},
    # add_classification_head's defaults: two layers with tanh, on the [CLS] token
    "hub-houlsby-default-head": {"config": "double_seq_bn", "safetensors": True,
                                 "head": {"num_labels": 2}},
}


def head_logits(file, enc, dtype):
    """minibert's logits of an adapter file's head on the inputs (question answering: start
    and end, stacked), in dtype."""
    model = minibert.BertModel.from_pretrained("minilm-l6")
    head = load_adapters(model, file)
    model.astype(dtype)
    head.astype(dtype)
    model.eval()
    head.eval()
    seq, pooled = model.forward(**enc)
    if isinstance(head, minibert.QuestionAnsweringHead):
        start, end = head.forward(seq, np.ones(seq.shape[:2], dtype=bool))[0]
        return np.stack([start, end])
    out = head.forward_batch(seq, pooled, enc)[0]        # on what its pooling reads
    return out[:, None] if head.is_regression else out


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_computes_what_adapterhub_computes(compared, variant):
    ours, theirs, ours64, theirs64, base, _, _ = compared[0][variant]
    # float64: the same function, up to the round-off of 2.2e-16 that six layers of sums in
    # two libraries' orders pile up (measured 9e-16 to 2.7e-14, the largest with ln_after)
    assert_close(ours64, theirs64, tol=1e-12, name=variant)
    # float32, as both are used: each side's own round-off, which an adapter's LayerNorms
    # amplify (measured 3.9e-7 to 7.4e-6; minibert alone is 6.2e-6 from float64 there)
    assert_close(ours, theirs, tol=1e-5, name=variant)
    # and the adapters matter: without them the output is far from both
    assert np.abs(base - theirs).max() > 1e-2 * np.abs(theirs).max()


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_our_names_for_adapterhubs_tensors_are_its_own(compared, variant):
    *_, keys, names = compared[0][variant]
    # every name ours maps to is AdapterHub's; an ln_before is one module under two names
    # there (adapter_norm_before and adapter_down.0), and we give it one of them
    assert set(names.values()) <= set(keys)
    aliases = {k for k in keys if ".adapter_norm_before." in k}
    assert set(names.values()) | aliases == set(keys)


@pytest.mark.slow
@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_an_exported_adapter_gives_in_adapterhub_the_logits_it_gives_here(compared, export):
    ours, ours64, theirs, theirs64 = compared[1][export]
    # float64: the same function (measured 1.1e-15 to 4.4e-15); float32: each side's
    # round-off (measured 5.3e-7 to 2.3e-6)
    assert_close(ours64, theirs64, tol=1e-12, name=export)
    assert_close(ours, theirs, tol=1e-5, name=export)


@pytest.mark.slow
@pytest.mark.parametrize("made", sorted(MADE))
def test_an_adapter_made_in_adapterhub_gives_here_the_logits_it_gives_there(compared, made):
    theirs, folder = compared[2][made]
    model = minibert.BertModel.from_pretrained("minilm-l6")
    head = load_adapters(model, folder)
    assert model.adapters.active == made
    enc = minibert.Tokenizer.from_pretrained("minilm-l6")(TEXTS)
    seq, pooled = model.forward(**enc)
    ours = head.forward_batch(seq, pooled, enc)[0]
    # float32 on both sides, as the variants' (measured 2.6e-7 to 2.6e-6)
    assert_close(ours[:, None] if head.is_regression else ours, theirs, tol=1e-5, name=made)


@pytest.mark.slow
def test_predict_labels_a_file_with_an_adapterhub_folder_as_adapterhub_would(compared,
                                                                            tmp_path):
    theirs, folder = compared[2]["hub-houlsby"]
    (tmp_path / "texts.csv").write_text("id,text\n" + "".join(
        f"{i},{text}\n" for i, text in enumerate(TEXTS)))
    assert main(["predict", "--adapters", str(folder), "--input", str(tmp_path / "texts.csv"),
                 "--output", str(tmp_path / "labels.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    labels = MADE["hub-houlsby"]["head"]["id2label"]
    probabilities = np.exp(theirs - theirs.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    assert [row["predicted_label"] for row in rows] == [labels[str(i)]
                                                        for i in theirs.argmax(1)]
    ours = np.array([[row["probabilities"][labels[str(i)]] for i in range(3)] for row in rows])
    assert_close(ours, probabilities, tol=1e-5)        # (measured 8.2e-8)
    assert [row["id"] for row in rows] == ["0", "1", "2"]


@pytest.mark.parametrize("C", [8, 384, 768, 1024])
def test_the_reduction_factor_gives_back_every_size(C):
    for M in range(1, C + 1):
        assert int(C // adapterhub.reduction_factor(C, M)) == M


def test_bn_config_of_the_placements_are_adapterhubs_configs():
    """The flags of DoubleSeqBnConfig, SeqBnConfig and ParBnConfig (adapters 1.3.0's
    adapter_config.py) for the placements with AdapterHub's defaults."""
    houlsby = adapterhub.bn_config(AdapterConfig(size=24, activation="swish"), 384)
    assert {k: houlsby[k] for k in ("mh_adapter", "output_adapter", "original_ln_before",
                                    "original_ln_after", "residual_before_ln", "is_parallel",
                                    "non_linearity", "scaling")} == {
        "mh_adapter": True, "output_adapter": True, "original_ln_before": False,
        "original_ln_after": True, "residual_before_ln": True, "is_parallel": False,
        "non_linearity": "swish", "scaling": 1.0}
    assert houlsby["reduction_factor"] == 16.0
    pfeiffer = adapterhub.bn_config(AdapterConfig(placement="pfeiffer", activation="relu"), 768)
    assert (pfeiffer["mh_adapter"], pfeiffer["output_adapter"],
            pfeiffer["original_ln_before"]) == (False, True, True)
    parallel = adapterhub.bn_config(AdapterConfig(size=384, placement="parallel"), 768)
    assert (parallel["is_parallel"], parallel["scaling"], parallel["reduction_factor"],
            parallel["mh_adapter"]) == (True, 4.0, 2.0, False)


def tiny_adapter_file(tmp_path, pooling="cls", method_file=False):
    from conftest import tiny_config
    model = minibert.BertModel(tiny_config())
    head = minibert.SequenceClassificationHead(8, 2, pooling=pooling)
    if method_file:
        from minibert.adapter_files import save_trained
        from minibert.train import configure
        configure(model, head, "full")
        save_trained(model, tmp_path / "trained.safetensors", head, "full", task="t")
        return tmp_path / "trained.safetensors"
    add_adapters(model, size=2, placement="parallel")
    save_adapters(model, tmp_path / "adapter.safetensors", head=head, task="t",
                  data={"labels": ["neg", "pos"]})
    return tmp_path / "adapter.safetensors"


def test_export_writes_adapterhubs_files_and_says_how_to_load_the_layernorms(tmp_path, capsys):
    file = tiny_adapter_file(tmp_path)
    assert main(["export", "--adapters", str(tmp_path), "--to", "adapterhub", "--out",
                 str(tmp_path / "hub")]) == 0
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == sorted([
        "adapter_config.json", "adapter.safetensors", "head_config.json",
        "model_head.safetensors", "minibert_layernorms.safetensors"])
    config = json.loads((tmp_path / "hub" / "adapter_config.json").read_text())
    assert (config["name"], config["model_name"], config["model_class"], config["version"]) == (
        "t", None, "BertAdapterModel", "adapters.1.3.0")
    assert config["config"]["is_parallel"] and config["config"]["reduction_factor"] == 4.0
    head = json.loads((tmp_path / "hub" / "head_config.json").read_text())["config"]
    assert head["label2id"] == {"neg": 0, "pos": 1} and head["use_pooler"]
    weights = safetensors.numpy.load_file(tmp_path / "hub" / "adapter.safetensors")
    assert "bert.encoder.layer.1.output.adapters.t.adapter_up.weight" in weights
    assert "load_state_dict(safetensors.torch.load_file(" in capsys.readouterr().out
    assert file.is_file()


@pytest.mark.parametrize("case, message", [
    ("mean pooling", "pooling 'mean' .* is not a head AdapterHub has .*; export the adapters "
                     "alone"),
    ("trained file", "a trained file of method full; only adapter files have an AdapterHub"),
    ("folder not empty", "--out: expected a new or empty folder, found .*, which holds files"),
])
def test_export_refuses_what_adapterhub_cannot_hold_and_writes_nothing(tmp_path, capsys, case,
                                                                        message):
    file = tiny_adapter_file(tmp_path, pooling="mean" if case == "mean pooling" else "cls",
                             method_file=case == "trained file")
    out = tmp_path / "hub"
    if case == "folder not empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["export", "--adapters", str(file), "--to", "adapterhub", "--out",
                 str(out)]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and re.search(message, error), error
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_without_the_head_takes_a_mean_pooled_run(tmp_path):
    tiny_adapter_file(tmp_path, pooling="mean")
    assert main(["export", "--adapters", str(tmp_path), "--to", "adapterhub", "--out",
                 str(tmp_path / "hub"), "--no-head"]) == 0
    assert not (tmp_path / "hub" / "head_config.json").exists()


def exported_tiny(tmp_path):
    """A tiny model's adapter file and its AdapterHub folder, made by export."""
    file = tiny_adapter_file(tmp_path)
    assert main(["export", "--adapters", str(file), "--to", "adapterhub", "--out",
                 str(tmp_path / "hub")]) == 0
    return tmp_path / "hub"


def test_an_exported_folder_loads_back_as_the_adapter_file_it_came_from(tmp_path, batch):
    from conftest import tiny_config
    hub = exported_tiny(tmp_path)
    outputs = []
    for source in (tmp_path / "adapter.safetensors", hub):
        model = minibert.BertModel(tiny_config())
        head = load_adapters(model, source, name="t")
        seq, pooled = model.forward(**batch)
        outputs.append((seq, head.forward(pooled)[0], model.adapters.config))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    assert outputs[0][2] == outputs[1][2]


def rewrite_config(folder, change, file="adapter_config.json"):
    full = json.loads((folder / file).read_text())
    change(full)
    (folder / file).write_text(json.dumps(full))


def evil_pickle(path):
    """A torch.save-like zip whose data.pkl would run a shell command when unpickled."""
    import os
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return os.system, ("touch pwned",)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Evil()))


@pytest.mark.parametrize("case, message", [
    ("truncated weights", r"adapter.safetensors"),
    ("a pickle that runs code", r"refusing to load the global (posix|nt)\.system"),
    ("an unknown nonlinearity", r"config.non_linearity 'leakyrelu': expected one of gelu, "
                                r"gelu_new, relu, silu, swish, tanh"),
    ("LoRA", r"config.architecture 'lora': minibert reads bottleneck adapters alone"),
    ("a fusion", r"an AdapterFusion \(adapter_fusion_config.json\)"),
    ("a field minibert lacks", r"config.use_gating True: minibert's adapters have no such part"),
    ("a learned scaling", r"config.scaling 'learned': expected a float"),
    ("Pfeiffer's residual after its LayerNorm", r"config.residual_before_ln False: expected "
                                                r"true with original_ln_before"),
    ("a head of an unknown type", r"config.head_type 'tagging': minibert has classification"),
    ("a three-layer head", r"config.layers 3: minibert's heads have one linear layer "
                           r"\(classification: or two\)"),
    ("a two-layer head with relu", r"config.activation_function 'relu': minibert's two-layer "
                                   r"head has tanh"),
    ("another hidden size", r"made for a base model with hidden_size 768, but this model has "
                            r"hidden_size 8"),
])
def test_bad_adapterhub_folders_are_refused_in_one_line_and_nothing_is_loaded(tmp_path, case,
                                                                            message):
    from conftest import tiny_config
    hub = exported_tiny(tmp_path)
    if case == "truncated weights":
        data = (hub / "adapter.safetensors").read_bytes()
        (hub / "adapter.safetensors").write_bytes(data[:len(data) // 2])
    elif case == "a pickle that runs code":
        (hub / "adapter.safetensors").unlink()
        evil_pickle(hub / "pytorch_adapter.bin")
    elif case == "a fusion":
        (hub / "adapter_fusion_config.json").write_text("{}")
    elif case in ("a head of an unknown type", "a three-layer head",
                  "a two-layer head with relu"):
        change = {"a head of an unknown type": {"head_type": "tagging"},
                  "a three-layer head": {"layers": 3},
                  "a two-layer head with relu": {"layers": 2, "activation_function": "relu"}}
        rewrite_config(hub, lambda full: full["config"].update(change[case]), "head_config.json")
    elif case == "another hidden size":
        rewrite_config(hub, lambda full: full.update(hidden_size=768))
    else:
        change = {"an unknown nonlinearity": ("non_linearity", "leakyrelu"),
                  "LoRA": ("architecture", "lora"), "a field minibert lacks": ("use_gating", True),
                  "a learned scaling": ("scaling", "learned"),
                  "Pfeiffer's residual after its LayerNorm": ("original_ln_before", True)}[case]
        rewrite_config(hub, lambda full: full["config"].update([change]))
        if case.startswith("Pfeiffer"):
            rewrite_config(hub, lambda full: full["config"].update(residual_before_ln=False,
                                                                   is_parallel=False))
    model = minibert.BertModel(tiny_config())
    with pytest.raises(ValueError, match=message) as refused:
        load_adapters(model, hub)
    assert len(str(refused.value).splitlines()) == 1
    assert model.adapters.active is None and not model.adapters.sets
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_folder_of_adapter_transformers_days_means_the_tanh_form_by_gelu(tmp_path):
    """Files without a "version" come from adapter-transformers, whose "gelu" was the tanh
    form (and "gelu_orig" the erf one); adapters 1.x reads them so."""
    from conftest import tiny_config
    from minibert.adapter_files import read_adapter_file
    hub = exported_tiny(tmp_path)
    for version, written, read in ((True, "gelu", "gelu"), (False, "gelu", "gelu_new"),
                                   (False, "gelu_orig", "gelu")):
        def change(full):
            full["config"]["non_linearity"] = written
            if not version:
                full.pop("version", None)
        rewrite_config(hub, change)
        assert read_adapter_file(hub, tensors=False)[0]["adapter"]["activation"] == read
