"""`minibert bench`: speed and memory of inference, full fine-tuning and adapter training, side by
side with PyTorch eager (when installed) and with this machine's float32 matmul peak.

Each workload runs in a fresh process of its own, so its peak resident memory is its own.
Times are medians over repeats after two warm-up steps (a training step's first two still grow the
process's memory); ratios compare runs of the same invocation.
"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import checks, speed
from ..speed.plans import numpys_blas as _numpys_blas
from ..adapters import DEFAULT_SIZE
from ..named_models import DEFAULT_MODEL, check_model, config_of, folder_of, has_weights
from ..param_names import is_layernorm
from ..data import checks as data_checks
from ..data import tasks

WORKLOADS = ("inference", "adapter_inference", "full_step", "adapter_step")
BATCH_KEYS = ("input_ids", "token_type_ids", "attention_mask", "labels")
WARMUP_STEPS = 2


def count_flops(config, B, T, workload, adapter_size=DEFAULT_SIZE):
    """Multiply-adds x 2 of the matrix products of one workload (elementwise work left out).

    Forward per token and layer: q, k, v, output 4 * 2C^2, feed-forward 2 * 2CF, scores and
    context 2 * 2TC. A full step adds the input gradients (the linear part once, attention's
    products twice: dq and dk, dprobs and dv) and the weight gradients (the linear part once);
    an adapter step skips the frozen weight gradients and adds the adapters (2 per layer,
    2 * 2CM each, times 3 for forward, dx and dW)."""
    C, F, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = L * (8 * C * C + 4 * C * F)
    attention = L * 4 * T * C
    forward = B * T * (linear + attention) + B * 2 * C * C          # + pooler
    adapters = B * T * L * 2 * 4 * C * adapter_size
    if workload == "inference":
        return forward
    if workload == "adapter_inference":
        return forward + adapters
    if workload == "full_step":
        return 3 * forward
    return 2 * forward + B * T * attention + 3 * adapters


def matmul_peak(n=2048, repeats=5):
    """This machine's float32 GFLOP/s on a large square NumPy matmul (best of repeats)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def blas_kernels():
    """NumPy's BLAS: its library, version and the CPU kernels it runs. When OPENBLAS_CORETYPE
    picks the kernels, also the ones OpenBLAS would pick for this CPU by itself: an environment
    may set an older core than the CPU has (Haswell's AVX2 kernels on an AVX-512 CPU), which
    leaves part of its float32 peak unused, and every product minibert makes runs on them."""
    blas = _numpys_blas()
    report = {"library": blas["internal_api"], "version": blas["version"],
              "kernels": blas.get("architecture")}
    core_type = os.environ.get("OPENBLAS_CORETYPE")
    if core_type and blas["internal_api"] == "openblas":
        report["set_by"] = f"OPENBLAS_CORETYPE={core_type}"
        environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        ask = ("from minibert.lab.bench import _numpys_blas; "
               "print(_numpys_blas()['architecture'])")
        report["own_kernels"] = subprocess.run([sys.executable, "-c", ask], env=environment,
                                               capture_output=True, text=True,
                                               check=True).stdout.strip()
    return report


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_batch(config, B, T, seed=0):
    """A batch of B random sequences of T tokens, no padding, and random 2-class labels."""
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(1, config.vocab_size, (B, T)),
            "token_type_ids": np.zeros((B, T), dtype=np.int64),
            "attention_mask": np.ones((B, T), dtype=np.int64),
            "labels": rng.integers(0, 2, B)}


def minibert_workload(model_name, workload, batches):
    """A callable that runs one step of `workload` with minibert on each batch in turn."""
    from ..adapters import add_adapters
    from ..heads import SequenceClassificationHead
    from ..model import BertModel
    from ..optim import AdamW
    from ..train import configure, train_step
    model = BertModel.from_pretrained(model_name, allow_random=True)
    if workload.startswith("adapter"):
        add_adapters(model, size=DEFAULT_SIZE)
    if workload.endswith("inference"):
        model.eval()
        return lambda: [model.forward(b["input_ids"], token_type_ids=b["token_type_ids"],
                                      attention_mask=b["attention_mask"], keep_cache=False) for b in batches]
    head = SequenceClassificationHead(model.config.hidden_size, 2)
    configure(model, head, "adapters" if workload == "adapter_step" else "full")
    optimizer = AdamW([model, head])
    return lambda: [train_step(model, head, b, optimizer, 1e-5) for b in batches]


def torch_workload(model_name, workload, batches):
    """The same step in PyTorch eager: transformers' BertModel, a linear head, AdamW; for the
    adapter step, Houlsby adapters hooked after each sub-layer's output dropout, and every
    frozen parameter with requires_grad=False."""
    import torch
    import transformers
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    config = config_of(model_name)
    if has_weights(model_name):
        model = transformers.BertModel.from_pretrained(str(folder_of(model_name)),
                                                       attn_implementation="eager")
    else:
        model = transformers.BertModel(transformers.BertConfig(**config.to_dict(),
                                                               attn_implementation="eager"))
    batches = [{k: torch.from_numpy(v) for k, v in b.items()} for b in batches]
    inputs = [{k: b[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
              for b in batches]
    C = config.hidden_size
    params = list(model.parameters())
    if workload.startswith("adapter"):
        for name, p in model.named_parameters():
            p.requires_grad_(is_layernorm(name))
        params = [p for p in model.parameters() if p.requires_grad]
        for layer in model.encoder.layer:
            for dropout in (layer.attention.output.dropout, layer.output.dropout):
                adapter = torch.nn.Sequential(torch.nn.Linear(C, DEFAULT_SIZE), torch.nn.GELU(),
                                              torch.nn.Linear(DEFAULT_SIZE, C))
                dropout.register_forward_hook(lambda m, i, out, a=adapter: out + a(out))
                params += list(adapter.parameters())
    if workload.endswith("inference"):
        model.eval()

        def infer():
            with torch.no_grad():
                for batch_inputs in inputs:
                    model(**batch_inputs)
        return infer
    model.train()
    head = torch.nn.Linear(C, 2)
    optimizer = torch.optim.AdamW(params + list(head.parameters()), lr=1e-5, eps=1e-6)

    def steps():
        for batch, batch_inputs in zip(batches, inputs):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(head(model(**batch_inputs).pooler_output),
                                                     batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params + list(head.parameters()), 1.0)
            optimizer.step()
    return steps


def worker(spec):
    """Run in a fresh process: build, warm up, time; report the median seconds, the peak
    resident memory, how much of it the workload added to the imported libraries, and for
    minibert the ways its speed layer's plan ran each op (the warm-up steps time new shapes)."""
    if spec["impl"] == "minibert":
        import minibert.train  # noqa: F401  (the libraries, before the baseline is read)
        speed.enable()
        build = minibert_workload
    else:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        build = torch_workload
    baseline = _peak_mib()
    step = build(spec["model"], spec["workload"], _worker_batches(spec))
    for _ in range(WARMUP_STEPS):
        step()
    times = [_timed(step) for _ in range(spec["repeats"])]
    report = {"seconds": float(np.median(times)), "peak_memory_mib": _peak_mib(),
              "workload_memory_mib": _peak_mib() - baseline}
    if spec["impl"] == "minibert":
        report["plan"] = speed.plan_used()
    return report


def _worker_batches(spec):
    """The batches a worker times: a task's real batches from the file the report made, or one
    random batch of the shape (batch_size, seq_length)."""
    if "batches_file" in spec:
        with np.load(spec["batches_file"]) as stored:
            return [{key: stored[f"{i}/{key}"] for key in BATCH_KEYS}
                    for i in range(spec["batches"])]
    return [random_batch(config_of(spec["model"]), spec["batch_size"], spec["seq_length"])]


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def run(spec):
    command = [sys.executable, "-m", "minibert.lab.bench", "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        ended = (f"killed by signal {-done.returncode}" if done.returncode < 0
                 else f"exit code {done.returncode}")    # a signal: out of memory, for one
        raise RuntimeError(f"benchmark worker {spec} failed ({ended}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # the speed layer's line when it times new shapes, for the progress lines
    report["speed_lines"] = [line for line in done.stderr.splitlines()
                             if line.startswith("speed: ")]
    return report


def check_arguments(models, batch_size, seq_lengths, repeats, task=None, batches=10,
                    data_dir=None):
    """benchmark's arguments, before any work: architectures alone are timed with random weights,
    every sequence length must fit every model's position table, and a task its files."""
    if isinstance(models, str) or not models:
        raise checks.BadValue("models", f"expected a list of one or more models, found {models!r}")
    configs = [check_model("models", model, weights=False) for model in models]
    checks.integer("batch_size", batch_size)
    if isinstance(seq_lengths, (str, int)) or not seq_lengths:
        raise checks.BadValue("seq_length", f"expected a list of one or more lengths, found "
                                            f"{seq_lengths!r}")
    for T in seq_lengths:
        checks.integer("seq_length", T, 1, min(config.max_position_embeddings for config in configs))
    checks.integer("repeats", repeats)
    checks.integer("batches", batches)
    if data_dir is not None:
        checks.existing_folder("data_dir", data_dir)
    if task is not None:
        data_checks.task_files("data_dir", data_checks.task("task", task), data_dir, ("train",))
        # real batches are tokenized with BERT's uncased WordPiece (30,522 ids) up to 128 tokens
        small = [m for m, c in zip(models, configs)
                 if c.vocab_size < 30522 or c.max_position_embeddings < 128]
        if small:
            raise checks.BadValue("models", f"expected models that take BERT's uncased "
                                            f"vocabulary and 128 positions for --task, found "
                                            f"{', '.join(small)}")


# the default finishes in minutes on two cores; LONG, every model at every length, in hours
DEFAULT_MODELS, DEFAULT_LENGTHS = (DEFAULT_MODEL,), (24, 128)
LONG_MODELS, LONG_LENGTHS = (DEFAULT_MODEL, "bert-base-random"), (24, 64, 128, 384)


def benchmark(models=DEFAULT_MODELS, batch_size=32, seq_lengths=DEFAULT_LENGTHS, repeats=3,
              with_torch=None, progress=print, task=None, batches=10, data_dir=None):
    """Every workload of every model, with minibert and (if importable) torch -> report dict.

    Random batches of each shape (batch_size, T), T in seq_lengths: report["models"][model][str(T)]
    holds one shape's rows. With `task`, the first `batches` batches of the task's training set
    instead, in the order training takes them (seed 0), each padded to its own longest sequence:
    report["models"][model][task] holds their rows, report["task"] the batches' widths and padding."""
    check_arguments(models, batch_size, seq_lengths, repeats, task, batches, data_dir)
    if with_torch is None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            with_torch = True
        except ImportError:
            with_torch = False
    peak = matmul_peak()
    report = {"batch_size": batch_size, "repeats": repeats,
              "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
              "matmul_peak_gflops": peak, "blas": blas_kernels(), "models": {},
              "plan": speed.plan_file()}
    counter = _Counter(len(models) * (1 if task else len(seq_lengths)) * len(WORKLOADS),
                       progress)
    if task is None:
        report["seq_lengths"] = list(seq_lengths)
        for model in models:
            report["models"][model] = {
                str(T): _rows(model, {"batch_size": batch_size, "seq_length": T}, [(batch_size, T)],
                              batch_size * T, repeats, with_torch, peak, counter, f"T={T}")
                for T in seq_lengths}
        return report
    real_batches, examples = _task_batches(task, batch_size, batches, data_dir)
    shapes = [b["input_ids"].shape for b in real_batches]
    real_tokens = int(sum(b["attention_mask"].sum() for b in real_batches))
    padded_tokens = sum(B * T for B, T in shapes)
    report["task"] = {"name": task, "batches": len(real_batches), "widths": [T for _, T in shapes],
                      "tokens": padded_tokens, "real_tokens": real_tokens,
                      "padding_share": 1.0 - real_tokens / padded_tokens,
                      "batches_per_epoch": -(-examples // batch_size)}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "batches.npz")
        np.savez(path, **{f"{i}/{key}": b[key] for i, b in enumerate(real_batches)
                          for key in BATCH_KEYS})
        for model in models:
            rows = _rows(model, {"batches_file": path, "batches": len(real_batches)}, shapes,
                         padded_tokens, repeats, with_torch, peak, counter, task)
            for workload in WORKLOADS:
                row = rows[workload]
                row["real_tokens_per_second"] = real_tokens / row["seconds"]
                row["epoch_seconds"] = (row["seconds"] / len(real_batches)
                                        * report["task"]["batches_per_epoch"])
            report["models"][model] = {task: rows}
    return report


def _task_batches(task, batch_size, count, data_dir, max_seq_length=128):
    """The first `count` training batches of a task as `minibert train` makes them (seed 0's
    order, BERT's uncased WordPiece, padded to each batch's longest), and the number of training
    examples."""
    from ..data.batching import epoch_batches
    from ..tokenizer import Tokenizer
    examples = tasks.load_examples(task, "train", data_dir)
    made = epoch_batches(Tokenizer.from_pretrained(DEFAULT_MODEL), examples, 0, seed=0,
                         batch_size=batch_size, max_length=max_seq_length)
    batches = [batch for batch, _ in zip(made, range(count))]
    for batch in batches:       # for the benchmark's 2-class head: the time does not depend on them
        batch["labels"] = np.arange(len(batch["labels"])) % 2
    return batches, len(examples)


def _rows(model, batches, shapes, tokens, repeats, with_torch, peak, progress, label):
    """Every workload of one model on the batches that `batches` names for the workers (a shape,
    or a task's batches file; (B, T) of each batch in `shapes`), and the ratios between them."""
    config = config_of(model)
    rows = {}
    for workload in WORKLOADS:
        spec = {"model": model, "workload": workload, "repeats": repeats, **batches}
        row = run({**spec, "impl": "minibert"})
        for line in row.pop("speed_lines"):
            progress.note(line)
        flops = sum(count_flops(config, B, T, workload) for B, T in shapes)
        row.update(tokens_per_second=tokens / row["seconds"],
                   gflops=flops / row["seconds"] / 1e9,
                   share_of_matmul_peak=flops / row["seconds"] / 1e9 / peak)
        if with_torch:
            reference = run({**spec, "impl": "torch"})
            reference.pop("speed_lines")
            row.update(torch_seconds=reference["seconds"],
                       torch_peak_memory_mib=reference["peak_memory_mib"],
                       torch_workload_memory_mib=reference["workload_memory_mib"],
                       speed_vs_torch=reference["seconds"] / row["seconds"])
        rows[workload] = row
        progress(f"{model} {label} {workload}: {row['seconds']:.3f} s"
                 + (f" (torch {row['torch_seconds']:.3f} s)" if with_torch else ""))
    rows["plan"] = _plan_summary([rows[workload].pop("plan") for workload in WORKLOADS])
    rows["adapter_inference_overhead"] = (rows["adapter_inference"]["seconds"]
                                          / rows["inference"]["seconds"] - 1.0)
    rows["adapter_vs_full_time"] = rows["adapter_step"]["seconds"] / rows["full_step"]["seconds"]
    full_memory = rows["full_step"]["workload_memory_mib"]
    rows["adapter_vs_full_memory"] = (rows["adapter_step"]["workload_memory_mib"] / full_memory
                                      if full_memory > 0 else None)   # None: too small to see
    return rows


class _Counter:
    """The progress callback, each line numbered: "[3/8] ..."."""

    def __init__(self, total, progress):
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, line):
        self.done += 1
        self.progress(f"[{self.done}/{self.total}] {line}")

    def note(self, line):
        """A line between the numbered ones."""
        self.progress(line)


def _plan_summary(plans):
    """{op: {way: how many of its shapes run that way}} over the workloads' plans."""
    ways = {}
    for plan in plans:
        ways.update(plan)
    summary = {}
    for shape, way in sorted(ways.items()):
        counts = summary.setdefault(shape.split("|")[0], {})
        counts[way] = counts.get(way, 0) + 1
    return summary


def format_report(report):
    lines = [f"batch {report['batch_size']}, float32, {report['threads']} threads; float32 matmul "
             f"peak {report['matmul_peak_gflops']:.0f} GFLOP/s",
             _blas_line(report["blas"]),
             f"speed layer's plan: {report['plan'] or 'not measured (its ways are fixed)'} "
             f"(per op: the ways its shapes run, and how many shapes run each)",
             "MiB: memory the workload adds to its process (peak resident minus the libraries); "
             "vs torch: PyTorch's time / minibert's"]
    if "task" in report:
        t = report["task"]
        lines.append(f"{t['name']}: the first {t['batches']} training batches, {min(t['widths'])} "
                     f"to {max(t['widths'])} tokens wide, {100 * t['padding_share']:.1f}% padding; "
                     f"epoch: {t['batches_per_epoch']} batches")
    lines.append(f"{'model':18s} {'T':>6s} {'workload':18s} {'seconds':>8s} {'tokens/s':>9s} "
                 f"{'GFLOP/s':>8s} {'% peak':>7s} {'MiB':>7s} {'torch s':>8s} {'torch MiB':>9s} "
                 f"{'vs torch':>8s}")
    for model, shapes in report["models"].items():
        for T, rows in shapes.items():
            for workload in WORKLOADS:
                r = rows[workload]
                torch_part = (f"{r['torch_seconds']:8.3f} {r['torch_workload_memory_mib']:9.0f} "
                              f"{r['speed_vs_torch']:7.2f}x"
                              if "torch_seconds" in r else f"{'-':>8s} {'-':>9s} {'-':>8s}")
                lines.append(f"{model:18s} {T:>6s} {workload:18s} {r['seconds']:8.3f} "
                             f"{r['tokens_per_second']:9.0f} {r['gflops']:8.1f} "
                             f"{100 * r['share_of_matmul_peak']:6.1f}% "
                             f"{r['workload_memory_mib']:7.0f} {torch_part}")
            lines.append(f"{model:18s} {T:>6s} adapter step / full step: time "
                         f"{rows['adapter_vs_full_time']:.2f}, memory "
                         f"{_ratio(rows['adapter_vs_full_memory'])}; adapters add "
                         f"{100 * rows['adapter_inference_overhead']:.1f}% to inference")
            lines.append(f"{model:18s} {T:>6s} plan: " + "; ".join(
                f"{op} " + ", ".join(f"{way} {n}" for way, n in ways.items())
                for op, ways in rows["plan"].items()))
            if "epoch_seconds" in rows["adapter_step"]:
                step = rows["adapter_step"]
                lines.append(f"{model:18s} {T:>6s} an adapter epoch at this pace: "
                             f"{step['epoch_seconds']:.0f} s" + (
                                 f" (torch {step['epoch_seconds'] * step['speed_vs_torch']:.0f} s)"
                                 if "speed_vs_torch" in step else ""))
    return "\n".join(lines)


def _blas_line(blas):
    line = f"BLAS: {blas['library']} {blas['version']}, {blas['kernels']} kernels"
    if "set_by" in blas:
        line += (f" (set by {blas['set_by']}; for this CPU by itself: {blas['own_kernels']} "
                 f"kernels)")
    return line


def _ratio(value):
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    print(json.dumps(worker(json.loads(sys.argv[2]))))
