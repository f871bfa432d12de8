"""What a sweep found: per configuration the mean +- std of the dev score over its seeds, the
paper's selection (the one trial, configuration and seed, best on validation), a table
(OUT/sweep.md) and a figure of score against learning rate and adapter size (OUT/sweep.png).

A trial's score is its model's after the last epoch, as results.json reports it: the number of
epochs is itself a swept setting, so no epoch is picked from inside a run.
"""
import collections
from pathlib import Path

import numpy as np

# the analyses' figure helpers: matplotlib's object API, imported at the first figure
from ..atomic import write_atomically
from ..checks import plural
from .analyses import save_figure, subplots


def configurations(trials):
    """{(lr, epochs, adapter_size): {"seeds", "scores", "mean", "std", "seconds"}} over the
    trials (sweep.json entries); std is the sample std (n - 1), None for a single seed."""
    groups = {}
    for entry in trials:
        key = (entry["learning_rate"], entry["epochs"], entry["adapter_size"])
        groups.setdefault(key, []).append(entry)
    rows = {}
    for key, entries in sorted(groups.items(), key=lambda item: _sort_key(item[0])):
        entries = sorted(entries, key=lambda e: e["seed"])
        scores = np.array([e["score"] for e in entries])
        rows[key] = {"seeds": [e["seed"] for e in entries], "scores": scores.tolist(),
                     "mean": float(scores.mean()),
                     "std": float(scores.std(ddof=1)) if len(scores) > 1 else None,
                     "seconds": float(np.mean([e["seconds"] for e in entries]))}
    return rows


def _sort_key(key):
    lr, epochs, size = key
    return lr, epochs, -1 if size is None else size


def selection(trials):
    """The paper's pick: the trial best on validation (the first of equals, in trial order)."""
    return max(trials, key=lambda e: e["score"])


def _describe(key):
    lr, epochs, size = key
    return f"lr {lr:g}, {plural(epochs, 'epoch')}" + ("" if size is None else f", size {size}")


def _mean_std(row, scale):
    std = "" if row["std"] is None else f" ± {scale * row['std']:.1f}"
    return f"{scale * row['mean']:.1f}{std}"


def format_table(data, trials):
    """A markdown table: a line per configuration, then the best configuration by mean and the
    paper's selection."""
    first = trials[0]
    rows = configurations(trials)
    scale = 100.0
    lines = [f"{first['task']} {first['method']}: {first['eval_split']} {first['score_metric']} "
             f"(x100), {plural(len(trials), 'trial')}; {data['settings']['base']['model']}, "
             f"{first['train_examples']} training examples",
             "", "| configuration | seeds | mean ± std | scores by seed | s per trial |",
             "|---|---|---|---|---|"]
    for key, row in rows.items():
        scores = ", ".join(f"{scale * s:.1f}" for s in row["scores"])
        lines.append(f"| {_describe(key)} | {len(row['seeds'])} | {_mean_std(row, scale)} | "
                     f"{scores} | {row['seconds']:.0f} |")
    best_key = max(rows, key=lambda k: rows[k]["mean"])
    pick = selection(trials)
    pick_key = (pick["learning_rate"], pick["epochs"], pick["adapter_size"])
    lines += ["", f"best configuration by mean over seeds: {_describe(best_key)}, "
                  f"{_mean_std(rows[best_key], scale)}",
              f"paper's selection (best trial on validation): {_describe(pick_key)}, seed "
              f"{pick['seed']}: {scale * pick['score']:.1f}"]
    machines = collections.Counter(_machine(entry) for entry in trials)
    if set(machines) != {None}:            # trials on other CPUs round differently
        lines.append("trials by machine: " + "; ".join(
            f"{name or 'not recorded'}: {count}" for name, count in machines.items()))
    return "\n".join(lines) + "\n"


def _machine(entry):
    """A trial's machine in a few words, None when its record is older than the field."""
    machine = entry.get("machine")
    if machine is None:
        return None
    return (f"{machine['cpu']} (flags {machine['cpu_features']}), "
            f"{plural(machine['threads'], 'thread')}, {machine['blas']}")


def draw(trials, out):
    """Mean score (± std over seeds) against learning rate, a line per adapter size, a panel
    per epoch count, a star on the paper's selection; saved atomically as OUT/sweep.png."""
    rows = configurations(trials)
    epochs = sorted({key[1] for key in rows})
    fig, axes = subplots(1, len(epochs), figsize=(5 * len(epochs), 4), squeeze=False,
                          sharey=True)
    first = trials[0]
    for ax, count in zip(axes[0], epochs):
        sizes = sorted({key[2] for key in rows if key[1] == count}, key=lambda s: s or 0)
        for size in sizes:
            points = sorted((key[0], row) for key, row in rows.items()
                            if key[1] == count and key[2] == size)
            ax.errorbar([lr for lr, _ in points], [row["mean"] for _, row in points],
                        yerr=[row["std"] or 0.0 for _, row in points], marker="o", capsize=3,
                        label="no adapters" if size is None else f"adapter size {size}")
        pick = selection(trials)
        if pick["epochs"] == count:
            ax.plot(pick["learning_rate"], pick["score"], "*", color="black", markersize=12,
                    label=f"best trial (seed {pick['seed']})")
        ax.set_xscale("log")
        rates = sorted({key[0] for key in rows})        # ticks at the grid's rates, in every panel
        ax.set_xticks(rates, [f"{lr:g}" for lr in rates])
        ax.minorticks_off()
        ax.set_xlabel("learning rate")
        ax.set_title(plural(count, "epoch"))
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"{first['eval_split']} {first['score_metric']} (mean ± std over "
                          f"seeds)")
    fig.suptitle(f"{first['task']} {first['method']}: {plural(len(trials), 'trial')}",
                 fontsize=10)
    return save_figure(fig, out, "sweep")


def write_report(out, data):
    """The table (printed by the caller) and figure of the grid's trials (sweep.json may also
    hold those of an earlier grid), written into OUT; returns the table."""
    trials = [data["runs"][name] for name in data["settings"]["trials"]]
    table = format_table(data, trials)
    write_atomically(Path(out) / "sweep.md",
                     lambda tmp: Path(tmp).write_text(table, "utf-8"))
    draw(trials, out)
    return table
