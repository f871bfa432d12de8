# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. The same code on a GPU
#
# minibert's ops are written once, against an *array module* `xp` that is NumPy on the CPU and
# CuPy on an NVIDIA GPU. CuPy copies NumPy's API, so `xp.exp`, `x @ w`, `x.mean(axis=-1)` mean
# the same on both; the few things the two spell differently (erf, scatter-add, copying back to
# the host) live in one place, `minibert/backend.py`. This notebook shows the switch, checks
# that CPU and GPU compute the same numbers, and times a forward/backward pass on each.
#
# Cells that need a GPU are tagged `gpu`. On a machine without one they say so and do nothing,
# so the notebook runs top to bottom anywhere. (`pip install -e '.[gpu]'` installs CuPy.)

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

import minibert
import minibert.speed
from minibert.backend import get_array_module, to_host
from minibert.lab import exercises, provenance
from minibert.ops.layernorm import layernorm_forward
from minibert.train import configure

try:
    minibert.get_device("cupy")
    GPU = True
    print("CuPy and a CUDA GPU are available: the gpu cells below will run.")
except RuntimeError as error:
    GPU = False
    print("There is no GPU here, so the cells tagged 'gpu' are skipped.")
    print(f"(minibert says: {error})")
print("Outputs made with", provenance.describe())

# %% [markdown]
# ## One code path, two array modules
#
# Every op asks its input which module made it, `xp = get_array_module(x)` (Chainer's idea),
# and calls that module. Here is LayerNorm's forward exactly as minibert has it — no `np.`
# anywhere:

# %%
print(inspect.getsource(layernorm_forward))

# %% [markdown]
# On NumPy, the speed layer (`minibert.speed`) can also cut each row-wise op's arrays into chunks
# of rows and hand them to a thread per CPU core (NumPy alone would use one core). It wraps the
# ops from outside, and only when asked: `minibert.speed.enable()`, which every `minibert`
# command calls, and which this notebook calls next. On CuPy an op runs once on the whole
# arrays, as written above, since the GPU spreads every operation over its cores by itself.

# %%
minibert.speed.enable()

# %% [markdown]
# A model lives on a device; its parameters are arrays of that device's module, and so is
# everything computed from them. Inputs may be NumPy arrays: the model moves them.

# %%
model = minibert.BertModel.from_pretrained("minilm-l6")
tok = minibert.Tokenizer.from_pretrained("minilm-l6")
weight = model.params["encoder.layer.0.attention.self.query.weight"]
print("device:", model.device, "| parameter type:", type(weight).__module__ + "." + type(weight).__name__,
      "| module:", get_array_module(weight).__name__)

# %% [markdown]
# ## Timing a forward and a backward pass
#
# One timing helper for both devices. GPU work is asynchronous — a call returns before the GPU
# has finished — so before reading the clock we wait for the device (`synchronize`); without
# that, a GPU timing measures only how fast Python can queue work.
#
# The workload is one training step's worth of model work on a batch of 16 sequences of 64
# tokens: a forward pass, then the backward pass, for two methods. With **adapters** only the
# adapters, LayerNorms and head learn, so the backward pass skips the weight gradients of
# every frozen matrix; with **full** fine-tuning it computes them all.

# %%
B, T = 16, 64
rng = np.random.default_rng(0)
batch = {"input_ids": rng.integers(1000, model.config.vocab_size, (B, T)),
         "token_type_ids": np.zeros((B, T), dtype=np.int64),
         "attention_mask": np.ones((B, T), dtype=np.int64)}
labels = rng.integers(0, 6, B)


def synchronize(device):
    if device.name == "cupy":
        device.xp.cuda.Device().synchronize()


def time_step(model, head, repeats=3):
    """Median seconds of (forward only, forward + backward) over `repeats` runs, after a warm-up."""
    forward_times, step_times = [], []
    for i in range(repeats + 1):
        synchronize(model.device)
        start = time.perf_counter()
        _, pooled = model.forward(**batch)
        _, loss = head.forward(pooled, labels)
        synchronize(model.device)
        middle = time.perf_counter()
        model.zero_grad()
        head.zero_grad()
        model.backward(None, head.backward())
        synchronize(model.device)
        end = time.perf_counter()
        if i:                                     # the first run warms up caches (and GPU kernels)
            forward_times.append(middle - start)
            step_times.append(end - start)
    return float(np.median(forward_times)), float(np.median(step_times))


def adapter_model(device):
    model = minibert.BertModel.from_pretrained("minilm-l6", device=device)
    minibert.add_adapters(model, size=64)
    head = minibert.SequenceClassificationHead(model.config.hidden_size, 6, device=model.device)
    return model, head


timings = {}


def measure(label, model, head, repeats):
    for method in ("adapters", "full"):
        configure(model, head, method)
        forward_s, step_s = time_step(model, head, repeats)
        timings[f"{label}\n{method}"] = (forward_s, step_s)
        print(f"{label:12s} {method:8s}: forward {forward_s * 1000:7.1f} ms, "
              f"forward + backward {step_s * 1000:7.1f} ms  ({B} x {T} tokens)")


cpu_model, cpu_head = adapter_model("numpy")
measure("CPU (NumPy)", cpu_model, cpu_head, repeats=2)
cpu = timings["CPU (NumPy)\nadapters"][1], timings["CPU (NumPy)\nfull"][1]
print(f"on the CPU, full fine-tuning's step costs {cpu[1] / cpu[0]:.1f}x an adapter step")

# %% [markdown]
# ## On the GPU
#
# The same model, created on device `"cupy"` (or moved there with `model.to("cupy")`). First
# we check that it computes what the CPU computes — float32 on two different machines, so the
# numbers agree to round-off, not bit for bit — then we time it.

# %% tags=["gpu"]
if GPU:
    gpu_model, gpu_head = adapter_model("cupy")
    for m in (cpu_model, gpu_model):
        m.eval()
    cpu_seq, cpu_pooled = cpu_model.forward(**batch)
    gpu_seq, gpu_pooled = gpu_model.forward(**batch)
    print("parameter type on the GPU:", type(gpu_model.params["pooler.dense.weight"]))
    difference = np.abs(to_host(gpu_seq) - cpu_seq).max()
    print(f"max |GPU - CPU| over the final hidden states: {difference:.1e}")
    assert difference < 1e-4
else:
    print("skipped: no GPU on this machine")

# %% tags=["gpu"]
if GPU:
    measure("GPU (CuPy)", gpu_model, gpu_head, repeats=10)
    speedup = timings["CPU (NumPy)\nadapters"][1] / timings["GPU (CuPy)\nadapters"][1]
    print(f"an adapter step is {speedup:.0f}x faster on this GPU than on this CPU")
else:
    print("skipped: no GPU on this machine")

# %% [markdown]
# ## The picture
#
# Seconds per forward and per forward + backward pass, for every device and method measured
# here. On a machine without a GPU the plot shows the CPU alone and says so.

# %%
fig, ax = plt.subplots(figsize=(3 + 2 * len(timings), 4))
names = list(timings)
x = np.arange(len(names))
ax.bar(x - 0.2, [timings[n][0] for n in names], width=0.4, label="forward")
ax.bar(x + 0.2, [timings[n][1] for n in names], width=0.4, label="forward + backward")
for i, n in enumerate(names):
    for offset, seconds in zip((-0.2, 0.2), timings[n]):
        ax.text(i + offset, seconds, f"{seconds:.3g} s", ha="center", va="bottom", fontsize=8)
ax.set_xticks(x)
ax.set_xticklabels(names)
ax.set_ylabel("seconds (median)")
ax.set_title(f"minilm-l6 + adapters, one step on {B} x {T} tokens, by device and method"
             + ("" if GPU else "\n(no GPU on this machine: CPU only)"))
slowest = max(seconds for pair in timings.values() for seconds in pair)
if GPU:
    ax.set_yscale("log")
    ax.set_ylim(top=slowest * 8)
else:
    ax.set_ylim(0, slowest * 1.35)
ax.legend(loc="upper center", ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Moving between devices
#
# `model.to(device)` moves every parameter (and every adapter set); `to_host` copies any
# array back to NumPy. A round trip must leave the weights bit-identical.

# %% tags=["gpu"]
if GPU:
    before = to_host(cpu_model.params["encoder.layer.0.output.adapter.up.weight"]).copy()
    cpu_model.to("cupy").to("numpy")
    after = cpu_model.params["encoder.layer.0.output.adapter.up.weight"]
    assert isinstance(after, np.ndarray) and np.array_equal(before, after)
    print("numpy -> cupy -> numpy round trip: bit-identical")
else:
    print("skipped: no GPU on this machine")

# %% [markdown]
# ## Summary
#
# * minibert's ops call `xp = get_array_module(x)`, so one implementation runs on NumPy and
#   on CuPy; `minibert/backend.py` holds the few device-specific pieces.
# * Pick the device when you create a model (`device="cupy"`), move it with `model.to(...)`,
#   or set a default with `minibert.use("cupy")` or `MINIBERT_DEVICE=cupy`.
# * `minibert.get_device("cupy")` raises `RuntimeError` where there is no usable GPU: this
#   notebook uses that to skip its GPU cells.
# * Time GPU code only after synchronizing the device.
#
# ## Exercises
#
# 1. Time the forward pass for T = 16, 32, 64, 128 on the CPU. Is the cost linear in T? Which
#    part of a layer grows like $T^2$?
# 2. Time the methods `"layernorm"` and `"top-k"` (with `top_k=2`). Why is the top-2 step so
#    much cheaper than the others? (Hint: where does the backward pass stop?) Check the lowest
#    layer whose backward still runs with `exercises.top_k_backward_stops(layer)`.
# 3. Cast the model to float64 (`model.astype("float64")`) and time it again on the CPU. Why do
#    the gradient checks use float64, and training float32?
# 4. On a GPU, run `minibert gradcheck --device cupy`: the whole-model gradient check, on CuPy.
# 5. With a GPU, find the batch size at which the GPU's advantage stops growing.
