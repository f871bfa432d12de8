"""The speed layer: how NumPy work is shared out over the CPU cores (`parallel`) and how
malloc keeps freed memory for the next step's arrays (`memory`).

Nothing here changes how an op reads. The ops stay their formulas; `enable()` wraps the
row-wise ones from outside, in their modules, so that every caller that looks them up there
(the model, its modules, the heads, the adapters) gets the shared-out version. Importing an op
or the model never turns it on: the `minibert` commands, `minibert.runs`' entry points and
`minibert bench` call `enable()`, and so may a notebook or a script that wants the speed.

May import: the array switch and the ops (what it wraps), nothing above them.
"""
from . import memory, parallel


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
