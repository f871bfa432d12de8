"""`minibert bench`: every number of its report is what the report says it is, and the FLOP counts
its GFLOP/s rest on agree with a count made by hand from the shapes."""
import itertools
import json

import pytest

from minibert.data import tasks
from minibert.data.batching import epoch_batches
from minibert.lab.bench import WORKLOADS, blas_kernels, count_flops
from minibert.speed import plans
from minibert.cli import main
from minibert.named_models import config_of
from minibert.tokenizer import Tokenizer

B, LENGTHS = 2, (8, 12)
RATIOS = ("adapter_inference_overhead", "adapter_vs_full_time", "adapter_vs_full_memory")


def same_quotient(value):
    # float64 quotients of the same measured numbers, perhaps divided in another order: a few
    # roundings of 1.1e-16 apart
    return pytest.approx(value, rel=1e-12)


def run_bench(capsys, models, with_torch):
    assert main(["bench", "--models", *models, "--batch-size", str(B), "--seq-length",
                 *map(str, LENGTHS), "--repeats", "1", "--json",
                 *([] if with_torch else ["--no-torch"])]) == 0
    return json.loads(capsys.readouterr().out)


def check_report(report, models, with_torch):
    assert (report["batch_size"], report["seq_lengths"], report["repeats"]) == (B, list(LENGTHS), 1)
    peak = report["matmul_peak_gflops"]
    assert peak > 0
    assert report["blas"] == blas_kernels()
    assert report["plan"].endswith(".json")
    assert list(report["models"]) == list(models)
    for model, shapes in report["models"].items():
        assert list(shapes) == [str(T) for T in LENGTHS], model
        for T in LENGTHS:
            check_shape(shapes[str(T)], model, T, peak, with_torch)


def check_shape(rows, model, T, peak, with_torch):
    assert set(rows) == set(WORKLOADS) | set(RATIOS) | {"plan"}, (model, T)
    # the speed layer's ways, per op: each a way plans knows, each shape counted once
    for op, ways in rows["plan"].items():
        assert set(ways) <= set(plans.WAYS) and all(n >= 1 for n in ways.values()), (op, ways)
    for workload in WORKLOADS:
        row, where = rows[workload], (model, T, workload)
        seconds = row["seconds"]
        assert seconds > 0 and row["peak_memory_mib"] >= row["workload_memory_mib"] >= 0, where
        assert row["tokens_per_second"] == same_quotient(B * T / seconds), where
        flops = count_flops(config_of(model), B, T, workload)
        assert row["gflops"] == same_quotient(flops / seconds / 1e9), where
        assert row["share_of_matmul_peak"] == same_quotient(row["gflops"] / peak), where
        if with_torch:
            assert row["torch_seconds"] > 0 and row["torch_workload_memory_mib"] >= 0, where
            assert row["speed_vs_torch"] == same_quotient(row["torch_seconds"] / seconds), where
        else:
            assert not any(field.startswith("torch") for field in row), where
    seconds = {w: rows[w]["seconds"] for w in WORKLOADS}
    assert rows["adapter_vs_full_time"] == same_quotient(seconds["adapter_step"]
                                                         / seconds["full_step"]), (model, T)
    assert rows["adapter_inference_overhead"] == same_quotient(
        seconds["adapter_inference"] / seconds["inference"] - 1), (model, T)
    memory = {w: rows[w]["workload_memory_mib"] for w in ("adapter_step", "full_step")}
    assert rows["adapter_vs_full_memory"] == (
        same_quotient(memory["adapter_step"] / memory["full_step"]) if memory["full_step"] > 0
        else None), (model, T)


@pytest.mark.slow
def test_report_of_two_models(capsys):
    models = ["tiny-random", "minilm-l6"]
    check_report(run_bench(capsys, models, with_torch=False), models, False)


@pytest.mark.slow
def test_report_beside_torch(capsys):
    pytest.importorskip("transformers")
    check_report(run_bench(capsys, ["tiny-random"], with_torch=True), ["tiny-random"], True)


def flops_by_hand(config, B, T, workload, M=64):
    """2 x multiply-adds of every matrix product of the encoder and pooler, from the shapes."""
    C, F, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = B * T
    linear = (tokens * L * (4 * 2 * C * C          # q, k, v and the attention output: (C, C)
                            + 2 * 2 * C * F)        # the feed-forward in and out: (C, F)
              + B * 2 * C * C)                      # the pooler, on [CLS] only
    attention = tokens * L * 2 * 2 * T * C          # q k^T and probs v: T x D per head, H heads
    adapters = tokens * L * 2 * 2 * 2 * C * M       # two per layer, down (C -> M) and up (M -> C)
    # A linear's backward is two products, dx and dW, and one (dx) when its weight is frozen.
    # Both factors of an attention product are activations: always two products (dq and dk,
    # dprobs and dv). The adapter step's gradient reaches the embedding LayerNorm, so every dx
    # is computed. The head (C -> 2 labels, three tiny products) is not counted.
    return {"inference": linear + attention,
            "adapter_inference": linear + attention + adapters,
            "full_step": 3 * (linear + attention),
            "adapter_step": 2 * linear + 3 * attention + 3 * adapters}[workload]


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("model, batch, tokens", [("tiny-random", B, LENGTHS[0]),
                                                  ("bert-base-random", 32, 128)])
def test_flop_counts_match_a_count_by_hand(model, batch, tokens, workload):
    config = config_of(model)
    assert count_flops(config, batch, tokens, workload) == flops_by_hand(config, batch, tokens,
                                                                         workload)


@pytest.mark.slow
def test_report_of_a_tasks_real_batches(capsys):
    # the batches `minibert train` makes first: seed 0's order, each padded to its longest
    examples = tasks.load_examples("TREC-6", "train")
    first = list(itertools.islice(epoch_batches(Tokenizer.from_pretrained("minilm-l6"), examples,
                                                0, seed=0, batch_size=4, max_length=128), 2))
    shapes = [b["input_ids"].shape for b in first]
    real = sum(int(b["attention_mask"].sum()) for b in first)
    padded = sum(B * T for B, T in shapes)
    assert main(["bench", "--models", "minilm-l6", "--task", "TREC-6", "--batches", "2",
                 "--batch-size", "4", "--repeats", "1", "--no-torch", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == {"name": "TREC-6", "batches": 2, "widths": [T for _, T in shapes],
                              "tokens": padded, "real_tokens": real,
                              "padding_share": pytest.approx(1 - real / padded, rel=1e-12),
                              "batches_per_epoch": 1363}     # 5,452 questions in batches of 4
    rows = report["models"]["minilm-l6"]["TREC-6"]
    for workload in WORKLOADS:
        row = rows[workload]
        flops = sum(count_flops(config_of("minilm-l6"), B, T, workload) for B, T in shapes)
        assert row["gflops"] == same_quotient(flops / row["seconds"] / 1e9), workload
        assert row["tokens_per_second"] == same_quotient(padded / row["seconds"]), workload
        assert row["real_tokens_per_second"] == same_quotient(real / row["seconds"]), workload
        assert row["epoch_seconds"] == same_quotient(row["seconds"] / 2 * 1363), workload


def test_blas_kernels_set_by_the_environment_are_named(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    blas = blas_kernels()
    if blas["library"] != "openblas":
        pytest.skip(f"NumPy's BLAS here is {blas['library']}, which OPENBLAS_CORETYPE does not steer")
    assert blas["set_by"] == "OPENBLAS_CORETYPE=Haswell" and blas["own_kernels"]
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "set_by" not in blas_kernels() and "own_kernels" not in blas_kernels()


def test_a_failed_worker_says_how_it_ended():
    from minibert.lab.bench import run
    spec = {"impl": "minibert", "model": "no-such-model", "workload": "inference", "repeats": 1,
            "batch_size": 1, "seq_length": 4}
    with pytest.raises(RuntimeError, match=r"failed \(exit code 1\):\n(.|\n)*no-such-model"):
        run(spec)


@pytest.mark.slow
def test_progress_is_numbered_and_says_when_the_plan_times_new_shapes(capsys, monkeypatch,
                                                                      tmp_path):
    monkeypatch.setenv("MINIBERT_SPEED_PLANS", str(tmp_path))       # no shape timed yet
    args = ["bench", "--models", "minilm-l6", "--seq-length", "24", "--repeats", "1",
            "--no-torch"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    numbered = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in numbered] == [f"[{i}/4]" for i in (1, 2, 3, 4)]
    assert [line.split()[3].rstrip(":") for line in numbered] == list(WORKLOADS)
    assert err.count("speed: timing the ways to run new shapes") >= 1
    assert f"speed layer's plan: {tmp_path}" in out and "T=24" not in out
    plan_line = next(line for line in out.splitlines()
                     if line.startswith("minilm-l6") and " plan: " in line)
    assert "linear.linear_forward" in plan_line
    assert main(args) == 0                       # the plan is made: nothing timed again
    assert "speed: timing" not in capsys.readouterr().err
