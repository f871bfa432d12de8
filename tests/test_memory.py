"""malloc keeps the memory freed by one step's arrays for the next step's: steps on the same
shapes stop taking page faults (glibc only; elsewhere nothing is asked of malloc)."""
import platform
import subprocess
import sys

import pytest

from minibert.speed import memory

# MiniLM-L6 inference on 32 x 24 tokens in a fresh process (minibert.speed.enable applies the
# setting, as the commands do): 3 steps to warm up, then the minor page faults of the next 3. Without the setting
# they are about 30,000: the activations' memory given back after each step, mapped in again.
INFERENCE = """
import resource
import numpy as np
import minibert.speed
from minibert.model import BertModel
minibert.speed.enable()
model = BertModel.from_pretrained("minilm-l6", allow_random=True).eval()
ids = np.random.default_rng(0).integers(1, 1000, (32, 24))
for step in range(6):
    if step == 3:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.forward(ids, keep_cache=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc's settings are glibc's")
@pytest.mark.slow
def test_steps_reuse_freed_memory_instead_of_mapping_it_again():
    done = subprocess.run([sys.executable, "-c", INFERENCE], capture_output=True, text=True,
                          check=True)
    assert int(done.stdout) < 300, f"{done.stdout.strip()} page faults in 3 inference steps"


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert memory.keep_freed_memory() is False
