"""The paper's grid for the eight GLUE tasks in trial counts and hours, from the times of the
sweeps beside this file (MiniLM-L6, 3 one-thread trials at once on this 2-core machine,
batches grouped by length); QQP, MNLI and QNLI (no files here) at MRPC's rate, sentence pairs
like theirs. `python docs/sweeps/grid_cost.py`"""
import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
AT_ONCE = 3                     # trials sharing the machine while the sweeps were timed

TRAIN = {"CoLA": 8551, "SST-2": 67349, "MRPC": 3668, "STS-B": 5749, "QQP": 363846,
         "MNLI": 392702, "QNLI": 104743, "RTE": 2490}
DEV = {"CoLA": 1043, "SST-2": 872, "MRPC": 408, "STS-B": 1500, "QQP": 40430, "MNLI": 9815,
       "QNLI": 5463, "RTE": 277}
MEASURED = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
GRID = {"adapters": [(3, 45), (20, 45)], "full": [(3, 20)]}    # (epochs, trials)


def trials(task, method):
    return json.loads((HERE / f"{task.lower().replace('-', '')}-{method}.json").read_text())[
        "runs"].values()


def rates(task):
    """{method: (trial-seconds per training example-epoch, per dev example)}. Training: the
    sweep's fastest epoch (other jobs slowed some, those of the CoLA and RTE sweeps that were
    stopped and run again above all). Dev: the rest of a trial's wall time (evaluating the dev
    set after every epoch, starting the worker, loading the model), over the task's trials of
    either method that ran from start to end (a resumed trial's wall time counts only its
    last part)."""
    runs = {m: list(trials(task, m)) for m in GRID}
    whole = [e for m in GRID for e in runs[m] if e["resumed_at_step"] is None]
    dev = statistics.mean((e["seconds"] - e["train_seconds"])
                          / (e["epochs"] * e["eval_examples"]) for e in whole)
    return {m: (min(h["train_seconds"] / e["train_examples"]
                    for e in runs[m] for h in e["history"]), dev) for m in GRID}


measured = {(t, m): rate for t in MEASURED for m, rate in rates(t).items()}
total, longest = {}, {}
for task in TRAIN:
    row = []
    for m in GRID:
        train, dev = measured[task if task in MEASURED else "MRPC", m]
        trial_s = {e: e * (TRAIN[task] * train + DEV[task] * dev) for e, _ in GRID[m]}
        machine_h = sum(n * trial_s[e] for e, n in GRID[m]) / AT_ONCE / 3600
        total[m] = total.get(m, 0) + machine_h
        longest[m] = max(longest.get(m, 0), max(trial_s.values()) / 3600)
        row.append(f"{sum(n for _, n in GRID[m])} trials {machine_h:,.1f} h "
                   f"({train * 1000:.1f} ms per training example, {dev * 1000:.1f} per dev)")
    print(task, " | ".join(row))
print("all eight", {m: round(h) for m, h in total.items()},
      "longest trial, h", {m: round(h, 1) for m, h in longest.items()})
for machines in (1, 10, 50, 100):
    print(machines, "machines, h:",
          {m: round(max(h / machines, longest[m]), 1) for m, h in total.items()})
