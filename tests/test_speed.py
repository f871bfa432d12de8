"""The speed layer is applied from outside and only when asked: importing an op or the model
changes nothing in the process; minibert.speed.enable() shares the row-wise ops out in their
own modules, once, and disable() puts the plain formulas back."""
import subprocess
import sys

import numpy as np

from minibert import speed
from minibert.ops import activations, layernorm
from minibert.speed import parallel

# A fresh process that imports the library, builds a model and runs it, as a notebook does.
IMPORT_AND_RUN = """
import sys
import numpy as np
import minibert
from minibert.ops.layernorm import layernorm_forward
from minibert.ops import linear
model = minibert.BertModel(minibert.BertConfig(vocab_size=50, hidden_size=16,
    num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=16))
model.forward(np.ones((2, 5), dtype=np.int64))
print(hasattr(layernorm_forward, "__wrapped__"), hasattr(linear.linear_forward, "__wrapped__"),
      "minibert.speed" in sys.modules)
"""


def test_importing_and_running_the_library_leaves_the_ops_plain():
    done = subprocess.run([sys.executable, "-c", IMPORT_AND_RUN], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]


def test_enable_shares_the_row_wise_ops_out_in_their_modules_and_disable_restores_them():
    was_on = speed.enabled()
    speed.disable()
    try:
        ops = parallel.row_wise_ops()
        assert all(getattr(sys.modules[op.__module__], op.__name__) is op for op in ops)
        tanh = activations.tanh_forward
        speed.enable()
        first = {op: getattr(sys.modules[op.__module__], op.__name__) for op in ops}
        speed.enable()                                  # a second call changes nothing
        assert speed.enabled()
        for op, shared in first.items():
            assert shared is not op and shared.__wrapped__ is op, op.__name__
            assert getattr(sys.modules[op.__module__], op.__name__) is shared, op.__name__
        assert activations.tanh_forward is tanh         # not row-wise: never wrapped
        speed.disable()
        assert not speed.enabled()
        assert all(getattr(sys.modules[op.__module__], op.__name__) is op for op in ops)
    finally:
        speed.disable()
        if was_on:
            speed.enable()


def test_the_shared_out_op_gives_the_plain_ops_bits_on_rows(monkeypatch):
    x = np.random.default_rng(0).standard_normal((64, 7, 16), dtype=np.float32)
    w, b = np.ones(16, np.float32), np.zeros(16, np.float32)
    formula = next(op for op in parallel.row_wise_ops() if op.__name__ == "layernorm_forward")
    plain = formula(x, w, b, 1e-12)[0]
    speed.enable()
    monkeypatch.setattr(parallel.SETTINGS, "threads", 2)
    monkeypatch.setattr(parallel.SETTINGS, "min_bytes", 0)
    monkeypatch.setattr(parallel.SETTINGS, "measured", False)
    monkeypatch.setattr(parallel.SETTINGS, "chunk_bytes", 1)
    np.testing.assert_array_equal(layernorm.layernorm_forward(x, w, b, 1e-12)[0], plain)
