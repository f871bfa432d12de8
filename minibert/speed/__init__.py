"""The speed layer: how NumPy work is shared out over the CPU cores (`parallel`) and how
malloc keeps freed memory for the next step's arrays (`memory`).

Nothing here changes how an op reads. The ops stay their formulas, and the row-wise ones say so
where they are written (`minibert.ops.row_wise`); `enable()` sets the executor their calls go
through to one that shares their rows out over the cores. No function is replaced anywhere.
Importing an op or the model never turns it on: the `minibert` commands, `minibert.runs`'
entry points and `minibert bench` call `enable()`, and so may a notebook or a script that
wants the speed.

May import: the array switch and the ops (whose executor it sets), atomic writes and the cache
folder (where `plans` keeps what it measured), nothing above them.
"""
from . import memory, parallel, plans


def enable():
    """Share the row-wise ops out over the cores and keep freed memory for reuse; calling it
    again changes nothing. Returns True."""
    parallel.share_out()
    memory.keep_freed_memory()
    return True


def disable():
    """The plain ops again (malloc keeps its settings: they change no result)."""
    parallel.restore()


def enabled():
    """Whether the row-wise ops are shared out now."""
    return parallel.is_shared_out()


def plan_file():
    """The file of this machine's plan (a str), or None where the ways are fixed."""
    if not parallel.SETTINGS.measured:
        return None
    return str(plans.plan_path(machine()))


def machine():
    """What this process computes on, as its plan is named: the CPU (its name and a digest of
    its instruction sets), the threads, NumPy's BLAS and NumPy's version."""
    return plans.machine_fingerprint(parallel.SETTINGS.threads)


def plan_used():
    """{shape key: way} of every shape this process's shared-out ops met."""
    plan = plans.current(parallel.SETTINGS.threads)
    return {key: plan.ways[key] for key in sorted(plan.used) if key in plan.ways}
