"""How each shared-out op runs on this machine, decided by timing it there: the plan.

`parallel` can run a row-wise op whole or cut into chunks of rows of one size or another. Which
is fastest depends on the CPU, its caches, the BLAS kernels, the thread count and the shape, so
it is measured rather than guessed: the first time an op meets a shape, every way of running it
is timed on the arguments at hand, in turns, and the fastest is written down (as FFTW's plans or cuDNN's
benchmark mode do). Every later call with that shape runs that way, without timing.

The plan is a file in $MINIBERT_CACHE/speed-plans/ ($MINIBERT_SPEED_PLANS when set), one per
machine: the CPU, the number of
threads and NumPy's BLAS build name it, so that a plan made on one machine is never used on
another. A way once written is never changed, by this process or any other: every later run on
this machine cuts that op the same way, so its results repeat (and resume) to the bit.
"""
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

from ..atomic import write_atomically
from ..cache import cache_dir

# the ways to run an op: whole, one block of rows per thread, or chunks of about this many
# bytes of its largest input (small enough for an op's temporaries to stay in the CPU cache)
WAYS = {"whole": None, "per-thread": "per-thread", "chunks-128K": 1 << 17,
        "chunks-512K": 1 << 19, "chunks-2M": 1 << 21}
RUNS = 3                  # timed runs of each way, in turns, after one untimed; the fastest counts


@dataclasses.dataclass
class Plan:
    path: object                        # the file, or None: kept in memory only
    machine: dict
    ways: dict                          # {shape key: the name of a way in WAYS}
    used: set = dataclasses.field(default_factory=set)     # keys looked up by this process
    announced: bool = False

    def way(self, key):
        """The way written down for `key`, or None when it has not been measured yet."""
        self.used.add(key)
        return self.ways.get(key)

    def add(self, key, way):
        """Write `key`'s way down; -> the way the plan keeps, which is another process's where
        one wrote it first (the file is read again under a lock before it is written)."""
        with _locked(self.path):
            if self.path is not None and self.path.is_file():
                self.ways.update(_read(self.path)["ways"])
            self.ways.setdefault(key, way)
            if self.path is not None:
                data = {"machine": self.machine, "ways": dict(sorted(self.ways.items()))}
                write_atomically(self.path, lambda tmp: tmp.write_text(json.dumps(data,
                                                                                 indent=1)))
        return self.ways[key]

    def announce(self):
        """One line, the first time this process measures a shape."""
        if not self.announced:
            self.announced = True
            where = self.path if self.path is not None else "memory"
            print(f"speed: timing the ways to run new shapes on this machine, once "
                  f"(kept in {where})", file=sys.stderr)


def key(op, rows, arguments):
    """What a way is chosen for: the op, the row count and the size of a row (in steps of about
    19%, so that lengths close together share a way), the dtype and the other arrays' shapes
    (a linear layer's weight)."""
    first = next(iter(rows.values()))
    N = first.shape[0]
    row_bytes = sum(a.nbytes for a in rows.values()) // N
    others = [f"{name}{list(value.shape)}" for name, value in arguments.items()
              if hasattr(value, "shape") and name not in rows]
    return "|".join([f"{op.__module__.rpartition('.')[2]}.{op.__name__}", str(first.dtype),
                     f"rows={N}", f"row_bytes~{2 ** (round(4 * math.log2(row_bytes)) / 4):.0f}"]
                    + others)


def fastest(runs):
    """{way: a callable that runs the op that way} -> the name of the fastest: each run once
    untimed (a first run pays for memory the others reuse), then timed RUNS times in turns,
    one of each way per turn (so that a slow moment of the machine slows every way alike), its
    fastest run kept."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(RUNS):
        for name, run in runs.items():
            best[name] = min(best[name], _seconds(run))
    return min(best, key=best.get)


def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


_current = {}
_lock = threading.Lock()


def current(threads):
    """This machine's plan for `threads` threads, read from its file once per process."""
    with _lock:
        if threads not in _current:
            machine = machine_fingerprint(threads)
            path = plan_path(machine)
            ways = _read(path)["ways"] if path.is_file() else {}
            _current[threads] = Plan(path, machine, ways)
        return _current[threads]


def forget():
    """Drop the plans read so far (the next call reads the files again)."""
    with _lock:
        _current.clear()


def plan_path(machine):
    """$MINIBERT_SPEED_PLANS (default speed-plans in the cache folder)/<machine's digest>.json"""
    folder = os.environ.get("MINIBERT_SPEED_PLANS") or cache_dir() / "speed-plans"
    digest = hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:16]
    return Path(folder) / f"{digest}.json"


def machine_fingerprint(threads):
    """What a plan depends on: the CPU (its name and instruction sets), the threads, NumPy's
    BLAS (library, version, the kernels it runs) and NumPy's version."""
    import numpy
    blas = numpys_blas()
    return {"cpu": cpu_name(), "cpu_features": _cpu_features(), "threads": threads,
            "blas": " ".join(str(blas.get(k)) for k in ("internal_api", "version",
                                                        "architecture")),
            "numpy": numpy.__version__}


def numpys_blas():
    """threadpoolctl's record of the BLAS that NumPy calls: the one NumPy's wheel ships, in
    numpy.libs beside the package (SciPy may load another), else the first one loaded (a NumPy
    linked to a system BLAS); {} when none is seen."""
    import numpy
    from threadpoolctl import threadpool_info
    loaded = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    numpys = os.path.dirname(numpy.__file__)
    return next((lib for lib in loaded if lib["filepath"].startswith(numpys)),
                loaded[0] if loaded else {})


def cpu_name():
    """The processor's name: /proc/cpuinfo on Linux, sysctl on macOS, else what `platform`
    knows."""
    if platform.system() == "Linux":
        for line in _proc_cpuinfo():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin":
        import subprocess
        done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                              text=True)
        if done.returncode == 0:
            return done.stdout.strip()
    return f"{platform.machine()} {platform.processor()}"


def _cpu_features():
    """A digest of the CPU's flags (two CPUs sold under one name may differ in them)."""
    flags = next((line.split(":", 1)[1] for line in _proc_cpuinfo()
                  if line.startswith(("flags", "Features"))), "")
    return hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]


def _proc_cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _read(path):
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("ways"), dict) or not all(
                way in WAYS for way in data["ways"].values()):
            raise ValueError("expected {'ways': {shape: way}}")
        return data
    except ValueError as error:
        raise ValueError(f"{path}: not a speed plan ({error}); delete it to measure again") \
            from None


class _locked:
    """An exclusive lock on the plan's folder while it is read and written (POSIX)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.file = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:           # Windows: no lock, the last writer keeps its ways
            return
        self.file = open(self.path.parent / ".lock", "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()         # closing releases the lock
