"""AdapterHub's own environment for the tests that compare with it: `adapters` pins
transformers~=4.57.6, not the reference extra's, so it gets a virtual environment of its own,
pinned, made once in $MINIBERT_CACHE (pip reaches PyPI; torch is the CPU wheel pip finds).
`python()` gives its interpreter, or skips the test saying why it cannot be had."""
import subprocess
import sys
from pathlib import Path

import pytest

from minibert.cache import cache_dir

PINS = ("adapters==1.3.0", "transformers==4.57.6", "torch==2.13.0", "safetensors", "numpy")
FORWARD = Path(__file__).with_name("adapterhub_forward.py")


def folder():
    cache = cache_dir()
    return cache / ("adapterhub-" + "-".join(p.split("==")[-1] for p in PINS[:3]))


def python():
    """The environment's python, made when missing; a skip naming the step that failed."""
    env = folder()
    ready, interpreter = env / ".ready", env / "bin" / "python"
    if ready.is_file() and interpreter.is_file():
        return interpreter
    for step in ([sys.executable, "-m", "venv", "--clear", str(env)],
                 [str(interpreter), "-m", "pip", "install", "-q", *PINS]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"AdapterHub's environment could not be made: `{' '.join(step[:4])} "
                        f"...` exited with {done.returncode}: {last}")
    ready.write_text("\n".join(PINS) + "\n")
    return interpreter


def forward(work):
    """Run adapterhub_forward.py on the cases in folder `work` (see there) in AdapterHub's
    environment; its output is written into `work`."""
    done = subprocess.run([str(python()), str(FORWARD), str(work)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
