"""`minibert bench` runs on a tiny model and emits its documented fields (no timing asserted)."""
import json

import pytest

from minibert.bench import WORKLOADS, count_flops, minibert_workload, torch_workload
from minibert.cli import main
from minibert.named_models import config_of


def test_bench_json_fields(capsys):
    assert main(["bench", "--models", "tiny-random", "--batch-size", "2", "--seq-length", "8",
                 "--repeats", "1", "--no-torch", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["matmul_peak_gflops"] > 0
    rows = report["models"]["tiny-random"]
    for workload in WORKLOADS:
        for field in ("seconds", "tokens_per_second", "gflops", "share_of_matmul_peak",
                      "peak_memory_mib", "workload_memory_mib"):
            assert rows[workload][field] >= 0, (workload, field)
    for field in ("adapter_vs_full_time", "adapter_vs_full_memory", "adapter_inference_overhead"):
        assert field in rows


def test_flop_count_of_bert_base_forward():
    # 12 layers x (8C^2 + 4CF) x 4096 tokens + attention 12 x 4TC x 4096 + pooler
    config = config_of("bert-base-random")
    expected = 4096 * 12 * (8 * 768 ** 2 + 4 * 768 * 3072 + 4 * 128 * 768) + 32 * 2 * 768 ** 2
    assert count_flops(config, 32, 128, "inference") == expected
    assert count_flops(config, 32, 128, "adapter_step") < count_flops(config, 32, 128, "full_step")


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_workload_runs_in_both_implementations(workload):
    minibert_workload("tiny-random", workload, 2, 8)()
    pytest.importorskip("transformers")
    torch_workload("tiny-random", workload, 2, 8)()
