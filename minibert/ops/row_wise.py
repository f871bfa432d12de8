"""Row-wise ops, declared where they are written, and the one executor every call of them goes
through.

Most of BERT's ops treat the rows of their arrays independently (a row: one sequence of the
batch). `@row_wise(...)` above such an op says which of its arguments carry rows ("cache.xhat"
names an entry of a dict argument) and which of its results are sums over the rows. A call of
the op is then `executor(op, spec, args, kwargs)`: the plain executor below calls the formula as
written; `minibert.speed.enable()` sets one that cuts the rows into chunks and shares them out
over the CPU cores. Nothing is swapped in any module's namespace: the name an op is imported
under is the op, wherever it is called from.
"""
import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class RowWise:
    """How an op may be cut: the arguments whose first axis is the rows, and which results are
    sums over them. It is cut only when the first of `rows` is an array (dropout without a mask
    has nothing to share out)."""
    rows: tuple
    sums: tuple = ()              # indices of results that are sums (parameter gradients)
    per_thread: bool = False      # one block per thread instead of cache-sized chunks
    # arguments (caches) whose every array with as many rows as the first of `rows` is rows,
    # the module's parameters excepted
    row_trees: tuple = ()
    # the argument that is a Module: each chunk runs on a copy of its own, whose gradients
    # (sums over rows) are added in chunk order into the module's when every chunk is done
    module: str = None


def plain(op, spec, args, kwargs):
    """The op as written, on all rows at once."""
    return op(*args, **kwargs)


executor = plain
DECLARED = []            # every row-wise op, as its module exports it


def use(new_executor):
    """Run every row-wise op through `new_executor(op, spec, args, kwargs)`; None: the plain
    one. Returns the executor it replaces."""
    global executor
    previous, executor = executor, plain if new_executor is None else new_executor
    return previous


def row_wise(*rows, sums=(), per_thread=False, row_trees=(), module=None):
    """Declare the op below row-wise (RowWise's fields): its calls go through the executor; the
    formula itself stays reachable as `.__wrapped__`, its declaration as `.row_wise`."""
    spec = RowWise(rows, sums, per_thread, row_trees, module)

    def declare(op):
        @functools.wraps(op)
        def call(*args, **kwargs):
            return executor(op, spec, args, kwargs)
        call.row_wise = spec
        DECLARED.append(call)
        return call
    return declare
