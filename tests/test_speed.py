"""The speed layer is applied from outside and only when asked: importing an op or the model
leaves the plain executor in place; minibert.speed.enable() sets the executor that shares the
row-wise ops out, once, and disable() puts the plain one back. No module's names change, and
each op's row-wise declaration fits its signature and the caches it is given."""
import inspect
import subprocess
import sys

import numpy as np

from minibert import speed
from minibert.ops import activations, layernorm, row_wise
from minibert.speed import parallel

from conftest import adapter_step, training_step

# A fresh process that imports the library, builds a model and runs it, as a notebook does.
IMPORT_AND_RUN = """
import sys
import numpy as np
import minibert
from minibert.ops import row_wise
model = minibert.BertModel(minibert.BertConfig(vocab_size=50, hidden_size=16,
    num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=16))
model.forward(np.ones((2, 5), dtype=np.int64))
print(row_wise.executor is row_wise.plain, "minibert.speed" in sys.modules)
"""


def test_importing_and_running_the_library_leaves_the_ops_plain():
    done = subprocess.run([sys.executable, "-c", IMPORT_AND_RUN], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_enable_sets_the_executor_and_disable_restores_it_and_no_name_is_swapped():
    was_on = speed.enabled()
    speed.disable()
    try:
        names = {op: getattr(sys.modules[op.__module__], op.__name__) for op in row_wise.DECLARED}
        assert all(found is op for op, found in names.items())
        assert row_wise.executor is row_wise.plain
        speed.enable()
        speed.enable()                                  # a second call changes nothing
        assert speed.enabled() and row_wise.executor is parallel.run_over_rows
        for op in row_wise.DECLARED:                    # the same functions, in every module
            assert getattr(sys.modules[op.__module__], op.__name__) is op, op.__name__
        speed.disable()
        assert not speed.enabled() and row_wise.executor is row_wise.plain
    finally:
        speed.disable()
        if was_on:
            speed.enable()


def test_every_declared_row_argument_is_in_the_signature_or_the_cache_it_is_given(config, batch):
    """A training step with dropout on, and one of each adapter placement, through an executor
    that notes which declared paths held an array: each declared path is an argument of the
    op, and each is found holding one (a cache key renamed in an op fails here)."""
    found = {op.__wrapped__: set() for op in row_wise.DECLARED}

    def noting(op, spec, args, kwargs):
        arguments = inspect.signature(op).bind(*args, **kwargs).arguments
        for path in spec.rows + spec.row_trees:
            value = arguments
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                found[op].add(path)
        return op(*args, **kwargs)

    for op in row_wise.DECLARED:
        parameters = inspect.signature(op.__wrapped__).parameters
        spec = op.row_wise
        for path in spec.rows + spec.row_trees + ((spec.module,) if spec.module else ()):
            assert path.split(".")[0] in parameters, (op.__name__, path)
    previous = row_wise.use(noting)
    try:
        training_step(config, batch, "numpy", train=True)
        for placement in ("houlsby", "pfeiffer", "parallel"):
            adapter_step(config, batch, {"placement": placement})
        y, cache = activations.gelu_forward(np.ones((2, 3)), "tanh")      # the tanh form's cache
        activations.gelu_backward(y, cache)
    finally:
        row_wise.use(previous)
    for op in row_wise.DECLARED:
        spec = op.row_wise
        missing = set(spec.rows + spec.row_trees) - found[op.__wrapped__]
        assert not missing, f"{op.__name__}: declared {sorted(missing)}, never found there"


def test_the_shared_out_op_gives_the_plain_ops_bits_on_rows(monkeypatch):
    x = np.random.default_rng(0).standard_normal((64, 7, 16), dtype=np.float32)
    w, b = np.ones(16, np.float32), np.zeros(16, np.float32)
    formula = layernorm.layernorm_forward.__wrapped__
    plain = formula(x, w, b, 1e-12)[0]
    speed.enable()
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    np.testing.assert_array_equal(layernorm.layernorm_forward(x, w, b, 1e-12)[0], plain)
