"""The paper's grid for the eight GLUE tasks in trial counts and hours, from measured times:
CoLA and STS-B from the sweeps beside this file (3 trials at once on this 2-core machine, which
other jobs shared), MRPC, RTE and SST-2 from the README's per-epoch times (one thread each, two
at once), QQP, MNLI and QNLI (no files here) at MRPC's rate. `python docs/sweeps/grid_cost.py`"""
import json
from pathlib import Path

HERE = Path(__file__).parent

TRAIN = {"CoLA": 8551, "SST-2": 67349, "MRPC": 3668, "STS-B": 5749, "QQP": 363846,
         "MNLI": 392702, "QNLI": 104743, "RTE": 2490}
DEV = {"CoLA": 1043, "SST-2": 872, "MRPC": 408, "STS-B": 1500, "QQP": 40430, "MNLI": 9815,
       "QNLI": 5463, "RTE": 277}
# machine-seconds per training example-epoch and per dev example, by method
rates = {}
def from_sweep(task, method, at_once):
    d = json.loads((HERE / f"{task.lower().replace('-', '')}-{method}.json").read_text())
    es = [e for e in d["runs"].values() if e["learning_rate"] in (1e-3, 5e-5)]
    tr = sum(e["train_seconds"] / (e["epochs"] * e["train_examples"]) for e in es) / len(es)
    ev = sum((e["seconds"] - e["train_seconds"]) / (e["epochs"] * e["eval_examples"]) for e in es) / len(es)
    return tr, ev, at_once
for task in ("CoLA", "STS-B"):
    for m in ("adapters", "full"):
        try:
            rates[task, m] = from_sweep(task, m, 3)
        except FileNotFoundError:
            pass
# README: seconds per epoch, one BLAS thread, another job on the other core (2 at once)
EPOCH = {("MRPC", "adapters"): (233, 3668), ("MRPC", "full"): (307, 3668),
         ("RTE", "adapters"): (325, 2490), ("RTE", "full"): (362, 2490),
         ("SST-2", "adapters"): (308, 10000), ("SST-2", "full"): (476, 10000)}
# eval per example as measured on CoLA/STS-B relative to train per example
ratio = {m: sum(rates[t, m][1] / rates[t, m][0] for t in ("CoLA", "STS-B") if (t, m) in rates)
            / max(1, sum((t, m) in rates for t in ("CoLA", "STS-B"))) for m in ("adapters", "full")}
for (task, m), (sec, n) in EPOCH.items():
    rates[task, m] = (sec / n, ratio[m] * sec / n, 2)
for task in ("QQP", "MNLI", "QNLI"):       # no files here: MRPC's rate (sentence pairs)
    for m in ("adapters", "full"):
        rates[task, m] = rates["MRPC", m]
print("eval/train per-example ratio", ratio)
GRID = {"adapters": [(3, 45), (20, 45)], "full": [(3, 20)]}    # (epochs, trials)
total = {}
longest = {}
for task in TRAIN:
    row = []
    for m in ("adapters", "full"):
        tr, ev, k = rates[task, m]
        trial_s = {e: e * (TRAIN[task] * tr + DEV[task] * ev) for e, _ in GRID[m]}
        longest[m] = max(longest.get(m, 0), max(trial_s.values()))
        machine_h = sum(n * trial_s[e] for e, n in GRID[m]) / k / 3600
        trials = sum(n for _, n in GRID[m])
        total[m] = total.get(m, 0) + machine_h
        row.append(f"{trials} trials, {machine_h:,.1f} h (trial {min(trial_s.values())/3600:.2f}-{max(trial_s.values())/3600:.2f} h; {tr*1000:.1f} ms/ex train, {ev*1000:.1f} eval, {k} at once)")
    print(task, " | ".join(row))
print("total", {m: round(h) for m, h in total.items()}, "longest trial h", {m: round(v / 3600, 1) for m, v in longest.items()})
for N in (1, 10, 50, 100):
    print(N, {m: round(max(h / N, longest[m] / 3600), 1) for m, h in total.items()})
