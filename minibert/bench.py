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
import time

import numpy as np

from . import checks
from .named_models import config_of, folder_of, has_weights
from .names import is_layernorm

WORKLOADS = ("inference", "adapter_inference", "full_step", "adapter_step")
WARMUP_STEPS = 2


def count_flops(config, B, T, workload, adapter_size=64):
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


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _batch(config, B, T, seed=0):
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(1, config.vocab_size, (B, T)),
            "token_type_ids": np.zeros((B, T), dtype=np.int64),
            "attention_mask": np.ones((B, T), dtype=np.int64),
            "labels": rng.integers(0, 2, B)}


def minibert_workload(model_name, workload, B, T):
    """A callable that runs one step of `workload` with minibert."""
    from .adapters import add_adapters
    from .heads import SequenceClassificationHead
    from .model import BertModel
    from .optim import AdamW
    from .train import configure, train_step
    model = BertModel.from_pretrained(model_name, allow_random=True)
    config = model.config
    batch = _batch(config, B, T)
    if workload.startswith("adapter"):
        add_adapters(model, size=64)
    if workload.endswith("inference"):
        model.eval()
        return lambda: model.forward(batch["input_ids"], batch["token_type_ids"],
                                     batch["attention_mask"], keep_cache=False)
    head = SequenceClassificationHead(config.hidden_size, 2)
    configure(model, head, "adapters" if workload == "adapter_step" else "full")
    optimizer = AdamW([model, head])
    return lambda: train_step(model, head, batch, optimizer, 1e-5)


def torch_workload(model_name, workload, B, T):
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
    batch = {k: torch.from_numpy(v) for k, v in _batch(config, B, T).items()}
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    C = config.hidden_size
    params = list(model.parameters())
    if workload.startswith("adapter"):
        for name, p in model.named_parameters():
            p.requires_grad_(is_layernorm(name))
        params = [p for p in model.parameters() if p.requires_grad]
        for layer in model.encoder.layer:
            for dropout in (layer.attention.output.dropout, layer.output.dropout):
                adapter = torch.nn.Sequential(torch.nn.Linear(C, 64), torch.nn.GELU(),
                                              torch.nn.Linear(64, C))
                dropout.register_forward_hook(lambda m, i, out, a=adapter: out + a(out))
                params += list(adapter.parameters())
    if workload.endswith("inference"):
        model.eval()

        def infer():
            with torch.no_grad():
                model(**inputs)
        return infer
    model.train()
    head = torch.nn.Linear(C, 2)
    optimizer = torch.optim.AdamW(params + list(head.parameters()), lr=1e-5, eps=1e-6)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(model(**inputs).pooler_output),
                                                 batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params + list(head.parameters()), 1.0)
        optimizer.step()
    return step


def worker(spec):
    """Run in a fresh process: build, warm up, time; report the median seconds, the peak
    resident memory, and how much of it the workload added to the imported libraries."""
    if spec["impl"] == "minibert":
        import minibert.train  # noqa: F401  (the libraries, before the baseline is read)
        build = minibert_workload
    else:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        build = torch_workload
    baseline = _peak_mib()
    step = build(spec["model"], spec["workload"], spec["batch_size"], spec["seq_length"])
    for _ in range(WARMUP_STEPS):
        step()
    times = [_timed(step) for _ in range(spec["repeats"])]
    return {"seconds": float(np.median(times)), "peak_memory_mib": _peak_mib(),
            "workload_memory_mib": _peak_mib() - baseline}


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def run(spec):
    command = [sys.executable, "-m", "minibert.bench", "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_arguments(models, batch_size, seq_lengths, repeats):
    """benchmark's arguments, before any work: architectures alone are timed with random weights,
    and every sequence length must fit every model's position table."""
    if isinstance(models, str) or not models:
        raise checks.BadValue("models", f"expected a list of one or more models, found {models!r}")
    configs = [checks.model_config("models", model, weights=False) for model in models]
    checks.integer("batch_size", batch_size)
    if isinstance(seq_lengths, (str, int)) or not seq_lengths:
        raise checks.BadValue("seq_length", f"expected a list of one or more lengths, found "
                                            f"{seq_lengths!r}")
    for T in seq_lengths:
        checks.integer("seq_length", T, 1, min(config.max_position_embeddings for config in configs))
    checks.integer("repeats", repeats)


def benchmark(models=("minilm-l6", "bert-base-random"), batch_size=32, seq_lengths=(24, 64, 128),
              repeats=3, with_torch=None, progress=print):
    """Every workload of every model at every sequence length, with minibert and (if importable)
    torch -> report dict: report["models"][model][str(T)] holds one shape's rows."""
    check_arguments(models, batch_size, seq_lengths, repeats)
    if with_torch is None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            with_torch = True
        except ImportError:
            with_torch = False
    peak = matmul_peak()
    report = {"batch_size": batch_size, "seq_lengths": list(seq_lengths), "repeats": repeats,
              "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
              "matmul_peak_gflops": peak, "models": {}}
    for model in models:
        report["models"][model] = {str(T): _shape_rows(model, batch_size, T, repeats, with_torch,
                                                       peak, progress)
                                   for T in seq_lengths}
    return report


def _shape_rows(model, batch_size, T, repeats, with_torch, peak, progress):
    """Every workload of one model at one shape (B, T), and the ratios between them."""
    config = config_of(model)
    rows = {}
    for workload in WORKLOADS:
        spec = {"model": model, "workload": workload, "batch_size": batch_size,
                "seq_length": T, "repeats": repeats}
        row = run({**spec, "impl": "minibert"})
        flops = count_flops(config, batch_size, T, workload)
        row.update(tokens_per_second=batch_size * T / row["seconds"],
                   gflops=flops / row["seconds"] / 1e9,
                   share_of_matmul_peak=flops / row["seconds"] / 1e9 / peak)
        if with_torch:
            reference = run({**spec, "impl": "torch"})
            row.update(torch_seconds=reference["seconds"],
                       torch_peak_memory_mib=reference["peak_memory_mib"],
                       torch_workload_memory_mib=reference["workload_memory_mib"],
                       speed_vs_torch=reference["seconds"] / row["seconds"])
        rows[workload] = row
        progress(f"{model} T={T} {workload}: {row['seconds']:.3f} s"
                 + (f" (torch {row['torch_seconds']:.3f} s)" if with_torch else ""))
    rows["adapter_inference_overhead"] = (rows["adapter_inference"]["seconds"]
                                          / rows["inference"]["seconds"] - 1.0)
    rows["adapter_vs_full_time"] = rows["adapter_step"]["seconds"] / rows["full_step"]["seconds"]
    full_memory = rows["full_step"]["workload_memory_mib"]
    rows["adapter_vs_full_memory"] = (rows["adapter_step"]["workload_memory_mib"] / full_memory
                                      if full_memory > 0 else None)   # None: too small to see
    return rows


def format_report(report):
    lines = [f"batch {report['batch_size']}, float32, {report['threads']} threads; float32 matmul "
             f"peak {report['matmul_peak_gflops']:.0f} GFLOP/s",
             "MiB: memory the workload adds to its process (peak resident minus the libraries); "
             "vs torch: PyTorch's time / minibert's",
             f"{'model':18s} {'T':>4s} {'workload':18s} {'seconds':>8s} {'tokens/s':>9s} "
             f"{'GFLOP/s':>8s} {'% peak':>7s} {'MiB':>7s} {'torch s':>8s} {'torch MiB':>9s} "
             f"{'vs torch':>8s}"]
    for model, shapes in report["models"].items():
        for T, rows in shapes.items():
            for workload in WORKLOADS:
                r = rows[workload]
                torch_part = (f"{r['torch_seconds']:8.3f} {r['torch_workload_memory_mib']:9.0f} "
                              f"{r['speed_vs_torch']:7.2f}x"
                              if "torch_seconds" in r else f"{'-':>8s} {'-':>9s} {'-':>8s}")
                lines.append(f"{model:18s} {T:>4s} {workload:18s} {r['seconds']:8.3f} "
                             f"{r['tokens_per_second']:9.0f} {r['gflops']:8.1f} "
                             f"{100 * r['share_of_matmul_peak']:6.1f}% "
                             f"{r['workload_memory_mib']:7.0f} {torch_part}")
            lines.append(f"{model:18s} {T:>4s} adapter step / full step: time "
                         f"{rows['adapter_vs_full_time']:.2f}, memory "
                         f"{_ratio(rows['adapter_vs_full_memory'])}; adapters add "
                         f"{100 * rows['adapter_inference_overhead']:.1f}% to inference")
    return "\n".join(lines)


def _ratio(value):
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    print(json.dumps(worker(json.loads(sys.argv[2]))))
