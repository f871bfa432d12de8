"""The speed layer's plans: a shape is timed once per machine, its way is kept in a file of that
machine's own and never changed, and every way gives the plain op's numbers."""
import json

import numpy as np
import pytest

from minibert import speed
from minibert.ops import activations, layernorm, linear
from minibert.speed import parallel, plans

from closeness import assert_close
from conftest import adapter_step

TOL = 1e-5          # as in test_parallel.py: float32 sums added in other blocks


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """The speed layer on, measuring every shape however small, its plans in a folder of the
    test's own; -> the list of the timings made (one entry per shape timed)."""
    monkeypatch.setenv("MINIBERT_SPEED_PLANS", str(tmp_path))
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", True)
    timed = []
    original = plans.fastest
    monkeypatch.setattr(plans, "fastest", lambda runs: timed.append(sorted(runs))
                        or original(runs))
    plans.forget()
    speed.enable()
    yield timed
    speed.disable()
    plans.forget()


def float32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def the_plan_file():
    return speed.plan_file() and json.loads(open(speed.plan_file()).read())


def test_a_shape_is_timed_once_and_its_way_kept_for_the_next_process(measured, capsys):
    # 64 rows of 128 KiB: whole, 2 blocks, 4, 16 or 64 chunks
    x, w, b = float32(64, 32, 1024), np.ones(1024, np.float32), np.zeros(1024, np.float32)
    plain = layernorm.layernorm_forward.__wrapped__(x, w, b, 1e-12)[0]
    for _ in range(3):
        np.testing.assert_array_equal(layernorm.layernorm_forward(x, w, b, 1e-12)[0], plain)
    assert len(measured) == 1                      # timed at the first call only
    assert measured[0] == sorted(plans.WAYS)      # every way cuts them differently
    assert "timing the ways to run new shapes" in capsys.readouterr().err
    ways = the_plan_file()["ways"]
    assert list(ways) == list(speed.plan_used()) and len(ways) == 1
    assert ways[next(iter(ways))] in plans.WAYS
    plans.forget()                                 # as a new process: the file is read
    layernorm.layernorm_forward(x, w, b, 1e-12)
    layernorm.layernorm_forward(float32(64, 32, 1024, seed=1), w, b, 1e-12)   # same shape
    assert len(measured) == 1 and capsys.readouterr().err == ""
    layernorm.layernorm_forward(float32(64, 48, 1024), w, b, 1e-12)   # longer rows: a new shape
    assert len(measured) == 2 and len(the_plan_file()["ways"]) == 2


def test_ways_that_cut_alike_are_timed_once(measured):
    # 2 small rows on 2 threads: every chunk size gives one row per chunk, as per thread does
    activations.gelu_forward(float32(2, 3, 4))
    assert measured == [["per-thread", "whole"]]


@pytest.mark.parametrize("way", list(plans.WAYS))
def test_every_way_gives_the_plain_ops_numbers(measured, way, monkeypatch):
    monkeypatch.setattr(plans, "fastest", lambda runs: way if way in runs else "whole")
    x, dy = float32(12, 7, 16), float32(12, 7, 24, seed=1)
    weight, bias = float32(24, 16, seed=2), float32(24, seed=3)
    gelu = activations.gelu_forward(x)[0]
    np.testing.assert_array_equal(gelu, activations.gelu_forward.__wrapped__(x)[0])
    assert_close(linear.linear_forward(x, weight, bias)[0],
                 linear.linear_forward.__wrapped__(x, weight, bias)[0], TOL, "x W^T + b")
    assert_close(linear.linear_weight_grad(dy, x), linear.linear_weight_grad.__wrapped__(dy, x),
                 TOL, "dW")
    _, cache = layernorm.layernorm_forward(x, np.ones(16, np.float32), np.zeros(16, np.float32),
                                           1e-12)
    for got, expected, name in zip(layernorm.layernorm_backward(x, cache),
                                   layernorm.layernorm_backward.__wrapped__(x, cache),
                                   ("dx", "dgain", "dbias")):
        assert_close(got, expected, TOL, name)
    assert set(the_plan_file()["ways"].values()) <= {way, "whole"}


def test_the_way_written_first_is_kept(tmp_path):
    path = tmp_path / "plan.json"
    first = plans.Plan(path, {"cpu": "x"}, {})
    second = plans.Plan(path, {"cpu": "x"}, {})           # another process, at the same time
    assert first.add("op|shape", "whole") == "whole"
    assert second.add("op|shape", "per-thread") == "whole"
    assert second.add("op|other", "chunks-2M") == "chunks-2M"
    assert json.loads(path.read_text())["ways"] == {"op|other": "chunks-2M", "op|shape": "whole"}


def test_a_plan_belongs_to_one_machine(monkeypatch):
    machine = plans.machine_fingerprint(2)
    assert set(machine) == {"cpu", "cpu_features", "threads", "blas", "numpy"}
    paths = {plans.plan_path(machine), plans.plan_path(plans.machine_fingerprint(1)),
             plans.plan_path({**machine, "blas": "openblas 0.3.31 Haswell"}),
             plans.plan_path({**machine, "cpu_features": "0"})}
    assert len(paths) == 4
    assert plans.plan_path(machine) == plans.plan_path(plans.machine_fingerprint(2))


def test_a_file_that_is_not_a_plan_is_named(measured):
    path = plans.plan_path(plans.machine_fingerprint(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ways": {"op|shape": "chunks-3M"}}))
    with pytest.raises(ValueError, match=f"{path}: not a speed plan .*delete it"):
        activations.gelu_forward(float32(2, 3, 4))


def test_timing_an_adapters_block_end_leaves_one_calls_gradients(measured, config, batch,
                                                                 monkeypatch):
    # block_end_backward adds its gradients into the model: the timed runs must not
    speed.disable()
    seq, grads = adapter_step(config, batch, {})        # the plain ops
    speed.enable()
    timed_seq, timed_grads = adapter_step(config, batch, {})    # every shape timed first
    assert any(shape.startswith("adapters.block_end_backward") for shape in speed.plan_used())
    assert len(measured) == len(speed.plan_used())
    assert grads.keys() == timed_grads.keys()
    assert_close(timed_seq, seq, TOL, "sequence output")
    for name in grads:
        assert_close(timed_grads[name], grads[name], TOL, name)
