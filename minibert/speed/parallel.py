"""How work is shared out over the CPU cores: the one place that knows about threads.

NumPy runs each operation on one core. Almost every op of BERT treats the rows of its arrays
independently (a row: one sequence of the batch), and says so where it is written
(`minibert.ops.row_wise`). Once `share_out()` is called (minibert.speed.enable does), every
call of such an op on NumPy goes through `run_over_rows`, this module's executor: the arrays are
cut into chunks of rows, the plain op runs on each chunk, and a pool of threads takes the chunks,
each thread a run of them. NumPy releases Python's lock inside its loops, so the threads
compute at once.

BLAS runs on one thread, from the first shared-out call on, for the rest of the process: each
pool thread's products stay on its own core, and a product too small to cut runs on one core,
where BLAS's own threads would cost more than they give. They would also keep spinning for a
while after each product, on the cores the pool's threads need next.

How an op is cut, for each shape it meets, is this machine's plan (`plans`): whole, one block
of rows per thread, or chunks small enough for an op's intermediate arrays to stay in the CPU
cache while the chunk's results are copied into the arrays that hold every row, whichever
timed fastest here. Each row is computed by the same NumPy calls in any chunk, so elementwise
results are the plain op's to the bit; a product or a sum over a chunk's rows may round
differently from one over all rows. Sums over rows (a weight gradient) are added in row order.

A block's end with its adapter (`adapters.block_end_forward` and `_backward`: the adapter's
products and nonlinearity, the residual adds, the LayerNorm) is declared row-wise too and cut as
one op, so the whole chain runs on a chunk while it is in the cache. Its gradients go into the model: each chunk
adds them into a copy of the model of its own, and the chunks' sums are added into the model's
in row order.

Anything but NumPy arrays (CuPy, the tests' strict device) gets the plain op, as do arrays too
small to be worth cutting and ops called from inside another shared-out op.
"""
import dataclasses
import functools
import inspect
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy

from ..ops import row_wise
from . import plans


def available_cores():
    """OMP_NUM_THREADS if set (as BLAS itself reads it), else the cores this process may use."""
    if os.environ.get("OMP_NUM_THREADS"):
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    if hasattr(os, "sched_getaffinity"):        # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1                  # macOS, Windows


@dataclasses.dataclass
class Settings:
    """How work is cut; the tests set these to cut tiny arrays too."""
    threads: int = available_cores()
    chunk_bytes: int = 1 << 19        # unmeasured: about this many bytes of the largest input
    min_bytes: int = 1 << 18          # inputs smaller in all are not cut: it would cost more
    measured: bool = True             # each op and shape cut the way plans measured as fastest


SETTINGS = Settings()


def share_out():
    """Run every row-wise op through over_rows, from now on; calling it again changes
    nothing."""
    row_wise.use(run_over_rows)


def restore():
    """The plain executor again: every op on all its rows at once."""
    row_wise.use(None)


def is_shared_out():
    return row_wise.executor is run_over_rows


_inside = threading.local()       # set while a thread computes chunks: nested ops run plain
_signatures = {}                  # op -> its inspect.Signature, read once


def over_rows(op, spec):
    """op (a formula) as a function computed in chunks of rows as `spec` (a RowWise) says."""
    return functools.wraps(op)(lambda *args, **kwargs: run_over_rows(op, spec, args, kwargs))


def run_over_rows(op, spec, args, kwargs):
    """The executor: op on its arguments, computed in chunks of rows as `spec` says when they
    are NumPy arrays large enough to be worth it; the plain op otherwise."""
    if getattr(_inside, "active", False):
        return op(*args, **kwargs)
    if op not in _signatures:
        _signatures[op] = inspect.signature(op)
    bound = _signatures[op].bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = bound.arguments
    rows = {path: value for path in spec.rows
            if isinstance(value := _get(arguments, path), numpy.ndarray)}
    if spec.rows[0] not in rows:
        return op(*args, **kwargs)
    N = rows[spec.rows[0]].shape[0]
    rows.update(_tree_rows(arguments, spec, N))
    _hold_blas_on_one_thread()
    if not _worth_cutting(rows):
        return op(*args, **kwargs)
    for path, array in rows.items():
        if array.shape[0] != N:
            raise ValueError(f"{op.__name__}: {path} has {array.shape[0]} rows, "
                             f"expected {N} like {next(iter(rows))}")
    if not SETTINGS.measured:
        return _run(op, arguments, rows, _chunks(rows, _fixed_way(spec), N), spec)
    plan = plans.current(SETTINGS.threads)
    key = plans.key(op, rows, arguments)
    way = plan.way(key)
    if way is None:                    # a shape not met before on this machine: time it
        plan.announce()
        ways = {}
        for name, size in plans.WAYS.items():
            chunks = _chunks(rows, size, N)
            if chunks not in ways.values():        # ways that cut alike are timed once
                ways[name] = chunks
        runs = {name: functools.partial(_run, op, arguments, rows, chunks, spec, timing=True)
                for name, chunks in ways.items()}
        way = plan.add(key, plans.fastest(runs))
    return _run(op, arguments, rows, _chunks(rows, plans.WAYS[way], N), spec)


def _worth_cutting(rows):
    first = next(iter(rows.values()))
    return (first.shape[0] > 1
            and sum(a.nbytes for a in rows.values()) >= SETTINGS.min_bytes)


def _fixed_way(spec):
    """The way of SETTINGS, when it is not measured: one block per thread for the ops that
    say so, else chunks of about chunk_bytes."""
    return "per-thread" if spec.per_thread else SETTINGS.chunk_bytes


def _chunks(rows, way, N):
    """[(start, stop)] covering 0..N, in order: one chunk for way None (whole), one per
    thread for "per-thread", else chunks of about `way` bytes of the largest input, as many
    for each thread."""
    if way is None:
        count = 1
    elif way == "per-thread":
        count = min(N, SETTINGS.threads)
    else:
        row_bytes = max(a.nbytes // N for a in rows.values())
        count = -(-N // max(1, way // max(1, row_bytes)))
        count = min(N, -(-count // SETTINGS.threads) * SETTINGS.threads)  # as many per thread
    bounds = [N * i // count for i in range(count + 1)]
    return list(zip(bounds, bounds[1:]))


def _run(op, arguments, rows, chunks, spec, timing=False):
    """op on its arguments, whole when there is one chunk, else in `chunks`. A run for timing
    leaves the module's gradients alone (they go to a copy of it)."""
    if timing and spec.module:
        arguments = {**arguments, spec.module: _module_copy(arguments[spec.module])}
    if len(chunks) == 1:
        return op(**arguments)
    return _run_in_chunks(op, arguments, rows, chunks, spec)


def _tree_rows(arguments, spec, N):
    """{path: array} of the arrays with N rows inside the arguments spec.row_trees names."""
    if not spec.row_trees:
        return {}
    parameters = {id(p) for p in arguments[spec.module].params.values()} if spec.module \
        else set()
    return {path: value for name in spec.row_trees
            for path, value in _array_paths(arguments[name], name)
            if value.ndim and value.shape[0] == N and id(value) not in parameters}


def _array_paths(tree, prefix):
    """(dotted path, array) of every NumPy array in nested dicts."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _array_paths(value, f"{prefix}.{key}")
    elif isinstance(tree, numpy.ndarray):
        yield prefix, tree


def _module_copy(module):
    """A shallow copy of a Module with gradients of its own (its parameters shared)."""
    copy = object.__new__(type(module))
    copy.__dict__.update(module.__dict__)
    copy.grads = {}
    return copy


def _run_in_chunks(op, arguments, rows, chunks, spec):
    whole_ids = {id(a) for a in _leaves(arguments) if isinstance(a, numpy.ndarray)}
    module = arguments[spec.module] if spec.module else None
    if module is not None:
        whole_ids |= {id(p) for p in module.params.values()}
    combined = _Combined(chunks[-1][1], len(chunks), spec.sums, whole_ids)
    chunk_grads = [None] * len(chunks)

    def compute(chunk_indices):
        _inside.active = True
        try:
            for index in chunk_indices:
                start, stop = chunks[index]
                chunk_args = dict(arguments)
                views = {}
                for path, array in rows.items():
                    views[path] = array[start:stop]
                    chunk_args = _set(chunk_args, path, views[path])
                if module is not None:
                    chunk_args[spec.module] = _module_copy(module)
                result = op(**chunk_args)
                if module is not None:
                    chunk_grads[index] = chunk_args[spec.module].grads
                combined.add(index, start, stop, result, {id(v): p for p, v in views.items()})
        finally:
            _inside.active = False

    threads = min(SETTINGS.threads, len(chunks))
    runs = [range(len(chunks) * t // threads, len(chunks) * (t + 1) // threads)
            for t in range(threads)]
    done = [_pool(threads).submit(compute, run) for run in runs[1:]]
    try:
        compute(runs[0])                   # this thread takes the first run itself
    finally:
        combined.ready.set()               # never leave the others waiting
        for future in done:
            future.result()                # waits, and raises what a chunk raised
    for name in chunk_grads[0] or ():
        module.accumulate(name, functools.reduce(numpy.add, [g[name] for g in chunk_grads]))
    return combined.result(rows)


class _Combined:
    """The results of every chunk, put together: rows into arrays for all N rows, sums added
    in chunk order, and arguments passed back (x in a cache) as the whole argument."""

    def __init__(self, N, chunk_count, sums, whole_ids):
        self.N, self.sums, self.whole_ids = N, sums, whole_ids
        self.partial_sums = [None] * chunk_count
        self.first = None               # the first chunk's result: the shape of the whole one
        self.roles = None               # per leaf of it: ("rows", array), ("sum",), ...
        # The calling thread computes chunk 0 and makes the whole arrays from it; the other
        # threads wait for them. Arrays that outlive the call are then all made by the
        # caller's thread, and memory that the pool's threads free stays theirs to reuse.
        self.ready = threading.Event()

    def add(self, index, start, stop, result, view_paths):
        leaves = _flatten(result)
        if index == 0:
            self.first = result
            self.roles = [self._role(leaf, top, view_paths, stop - start) for leaf, top in leaves]
            self.ready.set()
        self.ready.wait()
        if self.roles is None:          # chunk 0 raised: its error reaches the caller
            return
        sums = []
        for (leaf, _), role in zip(leaves, self.roles):
            if role[0] == "rows":
                role[1][start:stop] = leaf
            elif role[0] == "sum":
                sums.append(leaf)
        self.partial_sums[index] = sums

    def _role(self, leaf, top, view_paths, rows):
        if not isinstance(leaf, numpy.ndarray):
            return ("value", leaf)                      # a setting such as "erf", or None
        if top in self.sums:
            return ("sum",)
        if id(leaf) in view_paths:
            return ("argument", view_paths[id(leaf)])   # e.g. the input kept in a cache
        if id(leaf) in self.whole_ids:
            return ("value", leaf)                      # e.g. the weight kept in a cache
        if leaf.ndim == 0 or leaf.shape[0] != rows:
            raise ValueError(f"a result of shape {leaf.shape} is neither rows of the chunk "
                             f"({rows} rows) nor listed among the op's sums")
        return ("rows", numpy.empty((self.N,) + leaf.shape[1:], dtype=leaf.dtype))

    def result(self, rows):
        totals = iter([functools.reduce(numpy.add, column)
                       for column in zip(*self.partial_sums)])
        whole = []
        for role in self.roles:
            if role[0] == "sum":
                whole.append(next(totals))
            elif role[0] == "argument":
                whole.append(rows[role[1]])
            else:
                whole.append(role[1])
        return _unflatten(self.first, iter(whole))


def _flatten(result):
    """[(leaf, index of its top-level result)] of a result: an array, or tuples and dicts of
    arrays and settings; a result that is not a tuple is result 0."""
    if not isinstance(result, tuple):
        return [(leaf, 0) for leaf in _leaves(result)]
    return [(leaf, top) for top, part in enumerate(result) for leaf in _leaves(part)]


def _leaves(tree):
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in _leaves(t)]
    if isinstance(tree, dict):
        return [leaf for t in tree.values() for leaf in _leaves(t)]
    return [tree]


def _unflatten(tree, leaves):
    """tree's structure with its leaves replaced, in _leaves order, from the iterator."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(_unflatten(t, leaves) for t in tree)
    if isinstance(tree, dict):
        return {k: _unflatten(t, leaves) for k, t in tree.items()}
    return next(leaves)


def _get(arguments, path):
    value = arguments
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _set(arguments, path, value):
    """A copy of the (nested) dict with `path` replaced; the original is left alone."""
    key, _, rest = path.partition(".")
    return {**arguments, key: _set(arguments[key], rest, value) if rest else value}


_pools = {}


def _pool(threads):
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(max(1, threads - 1))
    return _pools[threads]


_blas_held = False


def _hold_blas_on_one_thread():
    """BLAS on one thread for the rest of the process (see the module's docstring)."""
    global _blas_held
    if not _blas_held:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1, user_api="blas")
        _blas_held = True
