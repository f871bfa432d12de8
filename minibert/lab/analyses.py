"""The paper's analyses, one command each (`minibert experiment NAME`).

  tradeoff    score against trained parameters: adapters of size 1..256, top-k layers,
              LayerNorm only, head only, full fine-tuning (Houlsby et al., Figures 3-4)
  init-scale  score against the adapters' init std, 1e-7 .. 1 (Figure 6, right)
  ablation    train adapters once, then remove those of every span of layers [i, j] without
              retraining (Figure 6, left); "remove all" falls to about the majority class
  sequential  adapters for three tasks, one after another, on one frozen base: earlier scores
              stay put; sequential full fine-tuning of one model forgets
  variants    the adapter family of section 3.6 at one size, 3 seeds each: placements
              (Houlsby, Pfeiffer, parallel), blocks, nonlinearities, the adapter's LayerNorms

Each writes OUT/NAME.json (settings, the pooling its heads read, seeds, every score) and
OUT/NAME.png; every run of an analysis reads the base settings' pooling (--pooling, else the
model's default, as train). Every finished configuration is recorded as it ends, so a re-run
skips it: an interrupted experiment goes on.
The defaults are subsampled to finish on a small CPU (docs/experiments.md says how long); the
JSON and the figure say so, and --max-train-examples / --epochs / --max-seq-length give the full-size run.
"""
import dataclasses
import json
from pathlib import Path

import numpy as np

from .. import checks
from ..adapter_files import load_adapters
from ..adapters import disable_adapter_layers, set_active_adapters
from ..atomic import write_atomically
from ..model import BertModel
from ..named_models import config_of
from ..tokenizer import Tokenizer
from ..train import configure
from ..data import checks as data_checks
from ..data import tasks
from ..runs import (CHECKPOINT, RunSettings, TaskData, build_model, evaluate, fit, new_head,
                    run_train)
from ..qa import squad
from ..runs.checkpoint import read_manifest
from ..runs.lock import locked

ADAPTER_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
INIT_STDS = tuple(10.0 ** e for e in range(-7, 1))


class Record:
    """OUT/NAME.json: the settings and one entry per finished configuration, saved after each."""

    def __init__(self, out, name, settings):
        self.path = Path(out) / f"{name}.json"
        self.data = {"experiment": name, "settings": settings, "runs": {}}
        if self.path.exists():
            earlier = json.loads(self.path.read_text("utf-8"))
            changed = changed_settings(earlier["settings"]["base"], settings["base"])
            if changed:
                raise ValueError(f"{self.path}: made with other settings (setting: (then, now) "
                                 f"{changed}), so its finished configurations do not count for "
                                 "these; choose another --out, or remove the file to start over")
            self.data["runs"] = earlier["runs"]
            self._write()

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, lambda tmp: Path(tmp).write_text(
            json.dumps(self.data, indent=2) + "\n", "utf-8"))

    def done(self, key):
        return key in self.data["runs"]

    def add(self, key, entry):
        self.data["runs"][key] = entry
        self._write()

    def note(self, key, value):
        """A top-level entry beside the runs (a summary of them), saved."""
        self.data[key] = value
        self._write()

    def __getitem__(self, key):
        return self.data["runs"][key]


def changed_settings(then, now):
    """{setting: (then, now)} of the settings that differ; `then` was read back from JSON. A
    setting `then` lacks was written before it existed, when its default held; for the pooling,
    whose default is resolved per model, that was the pooled [CLS] (SQuAD's head takes none)."""
    now = json.loads(json.dumps(now))          # as JSON would give it back: tuples as lists
    defaults = json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(RunSettings)}))
    defaults["pooling"] = None if then.get("task") == squad.SQUAD.name else "cls"
    then = {**{k: v for k, v in defaults.items() if k not in then}, **then}
    return {k: (then.get(k), v) for k, v in now.items() if then.get(k) != v}


def recorded_settings(base, **more):
    """The settings an analysis records in its JSON: the base run settings, the pooling its
    heads read, `more` (its tasks, ...) and the subsampling."""
    return {"base": dataclasses.asdict(base), "pooling": base.pooling, **more,
            "subsampled": subsample_note(base)}


def subsample_note(settings):
    return (f"{settings.max_train_examples or 'all'} train / {settings.max_eval_examples or 'all'} "
            f"eval examples, {settings.epochs} epoch(s), max {settings.max_seq_length} tokens, "
            f"seed {settings.seed}")


def _run(record, key, settings):
    """A training run recorded under `key`: skipped when already recorded, resumed from its
    checkpoint when an earlier invocation was interrupted in the middle of it."""
    if not record.done(key):
        # a run that finished but was not recorded (stopped in between) is run again
        results = run_train(settings, resume=interrupted(settings), overwrite=True)
        record.add(key, {k: results[k] for k in ("task", "method", "adapter_size", "score",
                                                 "metrics", "trained_params", "total_params",
                                                 "train_seconds", "seed")}
                   | {"settings": results["settings"]})
    return record[key]


def interrupted(settings):
    """Whether settings.out holds the checkpoint of an interrupted run of these very settings."""
    checkpoint = Path(settings.out) / CHECKPOINT
    if not checkpoint.exists():
        return False
    changed = changed_settings(read_manifest(checkpoint)["extra"]["settings"],
                               dataclasses.asdict(settings))
    if changed:
        raise ValueError(f"{checkpoint}: an interrupted run with other settings is here "
                         f"(setting: (then, now) {changed}); remove {settings.out} to start over")
    return True


def tradeoff(out, base, task_names):
    """Score against trained parameters for every method, per task."""
    L = config_of(base.model).num_hidden_layers
    configs = ([("adapters", m, None) for m in ADAPTER_SIZES] +
               [("top-k", None, k) for k in range(1, L + 1)] +
               [("layernorm", None, None), ("head", None, None), ("full", None, None)])
    record = Record(out, "tradeoff", recorded_settings(base, tasks=task_names))
    for task in task_names:
        for method, size, k in configs:
            key = f"{task}/{method}" + (f"-{size}" if size else "") + (f"-{k}" if k else "")
            _run(record, key, dataclasses.replace(
                base, task=task, method=method, adapter_size=size or base.adapter_size, top_k=k,
                out=str(Path(out) / "tradeoff" / key.replace("/", "-"))))
        if not record.done(f"{task}/majority"):
            record.add(f"{task}/majority", {"task": task, "method": "majority",
                                            "score": majority_score(task, base)})

    fig, axes = subplots(1, len(task_names), figsize=(6 * len(task_names), 4.5), squeeze=False)
    for ax, task in zip(axes[0], task_names):
        runs = {key.split("/")[1]: r for key, r in record.data["runs"].items() if r["task"] == task}
        for prefix, style, label in (("adapters-", "o-", "adapters (size 1..256)"),
                                     ("top-k-", "s--", "top k layers")):
            points = sorted((r["trained_params"], r["score"]) for name, r in runs.items()
                            if name.startswith(prefix))
            ax.plot(*zip(*points), style, label=label)
        for name, marker in (("layernorm", "^"), ("head", "v"), ("full", "*")):
            ax.plot(runs[name]["trained_params"], runs[name]["score"], marker, markersize=11,
                    label=name)
        ax.axhline(runs["majority"]["score"], color="gray", linestyle=":",
                   label="majority class")
        ax.set_xscale("log")
        ax.set_xlabel("trained parameters")
        ax.set_ylabel(f"{tasks.get_task(task).eval_split} {tasks.get_task(task).score}")
        ax.set_title(task)
        ax.legend(fontsize=8)
    fig.suptitle(f"Trained parameters vs score, {base.model}\n({subsample_note(base)})", fontsize=10)
    return save_figure(fig, out, "tradeoff"), record.data


def init_scale(out, base, task_names):
    """Score against the adapters' init std."""
    task = _one_task("init-scale", task_names)
    record = Record(out, "init-scale", recorded_settings(base, task=task))
    for std in INIT_STDS:
        key = f"{task}/std-{std:g}"
        _run(record, key, dataclasses.replace(base, task=task, method="adapters",
                                              adapter_init_std=std,
                                              out=str(Path(out) / "init-scale" / f"std-{std:g}")))
    fig, ax = subplots(figsize=(6, 4.5))
    points = sorted((r["settings"]["adapter_init_std"], r["score"])
                    for r in record.data["runs"].values())
    ax.plot(*zip(*points), "o-")
    ax.set_xscale("log")
    ax.set_xlabel("adapter init std")
    ax.set_ylabel(f"{tasks.get_task(task).eval_split} {tasks.get_task(task).score}")
    ax.set_title(f"{task}: adapter init scale, {base.model}\n({subsample_note(base)})", fontsize=10)
    return save_figure(fig, out, "init-scale"), record.data


def majority_score(task, base):
    """The eval score of always predicting the most frequent training label (mean for
    regression), on the examples `base` selects."""
    data = TaskData.load(dataclasses.replace(base, task=task))
    labels = np.array([e.label for e in data.eval])
    train_labels = [e.label for e in data.train]
    constant = (np.mean(train_labels) if data.spec.labels is None
                else np.bincount(np.asarray(train_labels, dtype=int)).argmax())
    return tasks.compute_metrics(data.spec.name, np.full(len(labels), constant), labels)["score"]


def ablation(out, base, task_names):
    """Train adapters once; score with the adapters of each span of layers removed."""
    task = _one_task("ablation", task_names)
    record = Record(out, "ablation", recorded_settings(base, task=task))
    run_out = Path(out) / "ablation" / "trained"
    trained = _run(record, "trained", dataclasses.replace(base, task=task, method="adapters",
                                                          out=str(run_out)))
    spec = tasks.get_task(task)
    eval_examples = tasks.load_examples(spec.name, spec.eval_split, base.data_dir,
                                        base.max_eval_examples)
    model = BertModel.from_pretrained(base.model, device=base.device)
    head = load_adapters(model, run_out / "adapter.safetensors", name="trained")
    tokenizer = Tokenizer.from_pretrained(base.model)
    L = model.config.num_hidden_layers
    for i in range(L):
        for j in range(i, L):
            if not record.done(f"remove-{i}-{j}"):
                set_active_adapters(model, "trained")
                disable_adapter_layers(model, range(i, j + 1))
                metrics = evaluate(model, head, tokenizer, spec.name, eval_examples,
                                   base.batch_size, base.max_seq_length)
                record.add(f"remove-{i}-{j}", {"layers": [i, j], "score": metrics["score"]})
    if not record.done("majority"):
        record.add("majority", {"score": majority_score(spec.name, base)})
    grid = np.full((L, L), np.nan)
    for i in range(L):
        for j in range(i, L):
            grid[i, j] = record[f"remove-{i}-{j}"]["score"]
    fig, ax = subplots(figsize=(6, 5))
    image = ax.imshow(grid, cmap="viridis", origin="upper")
    for i in range(L):
        for j in range(i, L):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xlabel("last layer removed (j)")
    ax.set_ylabel("first layer removed (i)")
    fig.colorbar(image, ax=ax, label=f"{spec.eval_split} {spec.score}")
    ax.set_title(f"{task}: adapters of layers i..j removed after training; none removed "
                 f"{trained['score']:.3f},\nall removed {grid[0, L - 1]:.3f}, majority class "
                 f"{record['majority']['score']:.3f}\n({subsample_note(base)})", fontsize=8)
    return save_figure(fig, out, "ablation"), record.data


# The adapter family of the paper's section 3.6, at one size M: Houlsby's adapter (GELU, both
# blocks) and, one setting changed at a time, each placement, block and nonlinearity, and the
# adapter's own LayerNorms.
VARIANTS = {
    "houlsby": {},
    "pfeiffer": {"adapter_placement": "pfeiffer"},
    "parallel": {"adapter_placement": "parallel"},
    "attention-only": {"adapter_sites": ("attention.output",)},
    "feed-forward-only": {"adapter_sites": ("output",)},
    "gelu_new": {"adapter_activation": "gelu_new"},
    "relu": {"adapter_activation": "relu"},
    "swish": {"adapter_activation": "swish"},
    "tanh": {"adapter_activation": "tanh"},
    "ln-before": {"adapter_ln_before": True},
    "ln-after": {"adapter_ln_after": True},
    "layernorms": {"adapter_ln_before": True, "adapter_ln_after": True},
}
VARIANT_SEEDS = 3


def variants(out, base, task_names):
    """Each adapter variant at the same M, with several seeds: mean and std of the score."""
    task = _one_task("variants", task_names)
    record = Record(out, "variants", recorded_settings(
        base, task=task, seeds=VARIANT_SEEDS, budget=f"equal adapter size M={base.adapter_size}"))
    for name, fields in VARIANTS.items():
        for seed in range(VARIANT_SEEDS):
            key = f"{name}/seed-{seed}"
            _run(record, key, dataclasses.replace(
                base, task=task, method="adapters", seed=seed, **fields,
                out=str(Path(out) / "variants" / f"{name}-seed{seed}")))
    summary = {}
    for name in VARIANTS:
        runs = [record[f"{name}/seed-{seed}"] for seed in range(VARIANT_SEEDS)]
        scores = np.array([r["score"] for r in runs])
        summary[name] = {"mean": float(scores.mean()), "std": float(scores.std()),
                         "scores": scores.tolist(), "trained_params": runs[0]["trained_params"]}
    if not record.done("majority"):
        record.add("majority", {"score": majority_score(task, base)})
    record.note("summary", summary)
    fig, ax = subplots(figsize=(8, 4.5))
    names = list(VARIANTS)
    ax.errorbar(range(len(names)), [summary[n]["mean"] for n in names],
                yerr=[summary[n]["std"] for n in names], fmt="o", capsize=4)
    for i, n in enumerate(names):
        ax.plot([i] * VARIANT_SEEDS, summary[n]["scores"], ".", color="gray")
    ax.axhline(record["majority"]["score"], color="gray", linestyle=":", label="majority class")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    spec = tasks.get_task(task)
    ax.set_ylabel(f"{spec.eval_split} {spec.score}")
    ax.legend(fontsize=8)
    ax.set_title(f"{task}: adapter variants at M={base.adapter_size}, mean and std over "
                 f"{VARIANT_SEEDS} seeds (dots: each seed), {base.model}\n"
                 f"({subsample_note(base)})", fontsize=9)
    return save_figure(fig, out, "variants"), record.data


def sequential(out, base, task_names):
    """Tasks one after another: adapters on one frozen base, then full fine-tuning of one
    model; after each stage, every task seen so far is scored again."""
    record = Record(out, "sequential", recorded_settings(base, tasks=task_names))
    tokenizer = Tokenizer.from_pretrained(base.model)
    data = {t: TaskData.load(dataclasses.replace(base, task=t)) for t in task_names}
    # adapters: each task trains its own set; after each stage, all sets so far are scored on
    # one base model that carries them side by side
    model = BertModel.from_pretrained(base.model, device=base.device)
    heads = {}
    for stage, task in enumerate(task_names):
        run_out = Path(out) / "sequential" / f"adapters-{task}"
        _run(record, f"adapters/train/{task}", dataclasses.replace(
            base, task=task, method="adapters", out=str(run_out)))
        heads[task] = load_adapters(model, run_out / "adapter.safetensors", name=task)
        for earlier in task_names[:stage + 1]:
            key = f"adapters/after-{task}/{earlier}"
            if not record.done(key):
                set_active_adapters(model, earlier)
                record.add(key, {"stage": stage, "task": earlier, "score": evaluate(
                    model, heads[earlier], tokenizer, earlier, data[earlier].eval,
                    base.batch_size, base.max_seq_length)["score"]})
    # full fine-tuning: one model goes on from task to task, each with a head of its own
    if not all(record.done(f"full/after-{t}/{e}") for i, t in enumerate(task_names)
               for e in task_names[:i + 1]):          # a partial sequence is run again whole
        _sequential_full(record, base, task_names, tokenizer, data)

    fig, axes = subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, method in zip(axes, ("adapters", "full")):
        for task in task_names:
            stages = [(i, record[f"{method}/after-{t}/{task}"]["score"])
                      for i, t in enumerate(task_names) if record.done(f"{method}/after-{t}/{task}")]
            ax.plot(*zip(*stages), "o-", label=task)
        ax.set_xticks(range(len(task_names)), [f"after {t}" for t in task_names])
        ax.set_title({"adapters": "adapters: one frozen base, a set per task",
                      "full": "full fine-tuning: one model, task after task"}[method])
        ax.set_ylabel("score (task's metric)")
        ax.legend()
    fig.suptitle(f"Sequential tasks, {base.model}\n({subsample_note(base)})", fontsize=10)
    return save_figure(fig, out, "sequential"), record.data


def _sequential_full(record, base, task_names, tokenizer, data):
    model = build_model(dataclasses.replace(base, method="full"))
    heads = {}
    for stage, task in enumerate(task_names):
        heads[task] = new_head(model, data[task].spec, base.seed, base.pooling)
        configure(model, heads[task], "full")
        fit(model, heads[task], tokenizer, data[task].train,
            dataclasses.replace(base, task=task, method="full"))
        for earlier in task_names[:stage + 1]:
            record.add(f"full/after-{task}/{earlier}", {"stage": stage, "task": earlier,
                       "score": evaluate(model, heads[earlier], tokenizer, earlier,
                                         data[earlier].eval, base.batch_size,
                                         base.max_seq_length)["score"]})


def _one_task(name, task_names):
    if len(task_names) != 1:
        raise checks.BadValue("tasks", f"expected one task for experiment {name}, found "
                                       f"{list(task_names)}")
    return task_names[0]


def run_experiment(name, out, base, task_names=None):
    """Experiment `name` on its tasks (default DEFAULT_TASKS[name]) with the settings `base`,
    the folder `out` locked while it runs -> (figure path, data). The arguments are checked
    first, the data files of every task included."""
    checks.choice("name", name, EXPERIMENTS)
    task_names = tuple(DEFAULT_TASKS[name] if task_names is None else task_names)
    if name in ONE_TASK:
        _one_task(name, task_names)
    for spec in [data_checks.task("tasks", task) for task in task_names]:
        data_checks.task_files("data_dir", spec, base.data_dir, ("train", spec.eval_split))
    checks.output_folder("out", out)
    with locked(out):
        return EXPERIMENTS[name](out, base, task_names)


def subplots(*grid, figsize, **options):
    """A figure and its axes, as pyplot.subplots gives them, through matplotlib's object API:
    no global figure state to close afterwards. matplotlib is imported here, at the first
    figure, so that the commands that draw nothing never load it."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def save_figure(fig, out, name):
    path = Path(out) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return path


EXPERIMENTS = {"tradeoff": tradeoff, "init-scale": init_scale, "ablation": ablation,
               "sequential": sequential, "variants": variants}
ONE_TASK = ("init-scale", "ablation", "variants")          # the analyses of a single task
# The single-task analyses use SST-2: on 1,000 examples MRPC stays near its majority-class F1,
# which leaves no differences to compare.
DEFAULT_TASKS = {"tradeoff": ("SST-2", "MRPC"), "init-scale": ("SST-2",), "ablation": ("SST-2",),
                 "sequential": ("TREC-6", "SST-2", "MRPC"), "variants": ("SST-2",)}

# Subsampled so that each experiment finishes on a small CPU with minilm-l6 (docs/experiments.md).
# 3 epochs: fewer leave small adapters at the majority class.
DEFAULT_SETTINGS = dict(max_eval_examples=400, max_seq_length=64, epochs=3)
# tradeoff trains 18 configurations per task, twice as many as any other analysis, so it trains
# on half as many examples.
DEFAULT_TRAIN_EXAMPLES = {"tradeoff": 500, "init-scale": 1000, "ablation": 1000,
                          "sequential": 1000, "variants": 1000}
