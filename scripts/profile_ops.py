"""Where a step's time goes: wall time per op of one `minibert bench` workload, on random batches.

    .venv/bin/python scripts/profile_ops.py --seq-length 24 --workload adapter_inference

Every function of minibert's op modules (and the adapters' forward and backward) is timed where
the model calls it, median over --repeats steps after two warm-up steps. An op that calls
another is timed with it: GELU includes its erf, attention its softmax, an adapter its two
products. Times are the calling thread's wall time, so an op shared out over the cores counts
once, however many threads computed it.
"""
import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # use the minibert of this checkout, installed or not
from minibert import adapters, speed  # noqa: E402
from minibert.lab import bench  # noqa: E402
from minibert.named_models import DEFAULT_MODEL, config_of  # noqa: E402
from minibert.ops import (activations, attention, dropout, embedding, layernorm,  # noqa: E402
                          linear, losses)

TIMED_MODULES = (activations, attention, dropout, embedding, layernorm, linear, losses, adapters)


def time_every_op(seconds, calls):
    """Replace each op function, in every minibert module that imported it, by a timed one."""
    timed = {}
    for module in TIMED_MODULES:
        for name, function in vars(module).items():
            if callable(function) and getattr(function, "__module__", None) == module.__name__ \
                    and name.endswith(("_forward", "_backward", "_apply", "_grad")):
                timed[function] = _timed(function, f"{module.__name__.split('.')[-1]}.{name}",
                                         seconds, calls)
    for module in [m for name, m in sys.modules.items() if name.startswith("minibert")]:
        for name, value in list(vars(module).items()):
            if callable(value) and value in timed:
                setattr(module, name, timed[value])


def _timed(function, label, seconds, calls):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - start
            calls[label] += 1
    return timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--workload", choices=bench.WORKLOADS, default="inference")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    speed.enable()                     # as the commands and bench run the ops
    batch = bench.random_batch(config_of(args.model), args.batch_size, args.seq_length)
    step = bench.minibert_workload(args.model, args.workload, [batch])
    seconds, calls = collections.Counter(), collections.Counter()
    time_every_op(seconds, calls)
    for _ in range(bench.WARMUP_STEPS):
        step()
    per_step = collections.defaultdict(list)
    totals = []
    for _ in range(args.repeats):
        seconds.clear()
        calls.clear()
        start = time.perf_counter()
        step()
        totals.append(time.perf_counter() - start)
        for label in seconds:
            per_step[label].append(seconds[label])
    print(f"{args.model}, {args.workload}, batch {args.batch_size} x {args.seq_length}: "
          f"{statistics.median(totals) * 1e3:.1f} ms per step (median of {args.repeats})")
    for label, times in sorted(per_step.items(), key=lambda item: -statistics.median(item[1])):
        print(f"  {label:32s} {statistics.median(times) * 1e3:8.1f} ms  {calls[label]:4d} calls")


if __name__ == "__main__":
    main()
