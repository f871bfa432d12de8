"""A test array library that is not NumPy, and behaves like CuPy where it matters.

StrictArray wraps a numpy.ndarray but refuses to be handed to NumPy: NumPy functions and
ufuncs called on it, np.asarray(it) and mixing it with numpy arrays all raise TypeError, as
CuPy's "implicit conversion to a NumPy array is not allowed" does. Its module, `strict`,
offers the NumPy API by wrapping NumPy, so code that goes through `xp` works and gives
NumPy's numbers bit for bit. Running minibert on it proves every op reaches its array
module through the backend switch, which is what makes the CuPy path work on a GPU.
"""
import operator
import types

import numpy

from minibert.backend import Device, numpy_erf


class HostConversionError(TypeError):
    pass


def _unwrap(value):
    if isinstance(value, StrictArray):
        return value.a
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, (numpy.ndarray, numpy.generic)) and not isinstance(value, numpy.dtype):
        return StrictArray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _wrapped(function):
    def call(*args, **kwargs):
        result = function(*_unwrap(args), **_unwrap(kwargs))
        if isinstance(result, numpy.random.Generator):
            return _Namespace("strict.random.Generator", result)
        return _wrap(result)
    return call


class StrictArray:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    # --- what CuPy refuses ---
    def __array__(self, *args, **kwargs):
        raise HostConversionError("implicit conversion of a device array to a NumPy array")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise HostConversionError(f"NumPy ufunc {ufunc.__name__} called on a device array")

    def __array_function__(self, func, types, args, kwargs):
        raise HostConversionError(f"NumPy function {func.__name__} called on a device array")

    def __iter__(self):
        raise HostConversionError("iterating over a device array on the host")

    # --- what CuPy allows: scalars out (a synchronising copy), shapes, views ---
    def __float__(self):
        return float(self.a)

    def __int__(self):
        return int(self.a)

    def __bool__(self):
        return bool(self.a)

    def __index__(self):
        return operator.index(self.a)

    def item(self):
        return self.a.item()

    def get(self):
        return self.a.copy()

    shape = property(lambda self: self.a.shape)
    ndim = property(lambda self: self.a.ndim)
    size = property(lambda self: self.a.size)
    dtype = property(lambda self: self.a.dtype)
    T = property(lambda self: StrictArray(self.a.T))

    def __len__(self):
        return len(self.a)

    def __repr__(self):
        return f"StrictArray({self.a!r})"

    def __getitem__(self, key):
        return _wrap(self.a[_unwrap(key)])

    def __setitem__(self, key, value):
        self.a[_unwrap(key)] = _unwrap(value)

    def __getattr__(self, name):          # methods: reshape, sum, astype, copy, ...
        if name.startswith("__"):         # NumPy probing __array_interface__ & co.: not here
            raise AttributeError(name)
        value = getattr(self.a, name)
        return _wrapped(value) if callable(value) else _wrap(value)


def _binary(op):
    return lambda self, other: _wrap(op(self.a, _unwrap(other)))


def _reflected(op):
    return lambda self, other: _wrap(op(_unwrap(other), self.a))


def _inplace(op):
    def apply(self, other):
        op(self.a, _unwrap(other))
        return self
    return apply


for _name, _op, _iop in [("add", operator.add, operator.iadd), ("sub", operator.sub, operator.isub),
                         ("mul", operator.mul, operator.imul),
                         ("truediv", operator.truediv, operator.itruediv),
                         ("floordiv", operator.floordiv, operator.ifloordiv),
                         ("pow", operator.pow, operator.ipow), ("mod", operator.mod, operator.imod),
                         ("matmul", operator.matmul, operator.imatmul),
                         ("and", operator.and_, operator.iand), ("or", operator.or_, operator.ior)]:
    setattr(StrictArray, f"__{_name}__", _binary(_op))
    setattr(StrictArray, f"__r{_name}__", _reflected(_op))
    setattr(StrictArray, f"__i{_name}__", _inplace(_iop))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(StrictArray, f"__{_name}__", _binary(getattr(operator, _name)))
StrictArray.__neg__ = lambda self: StrictArray(-self.a)
StrictArray.__invert__ = lambda self: StrictArray(~self.a)
StrictArray.__hash__ = None


class _Namespace(types.ModuleType):
    """NumPy's API with arrays wrapped: `strict.exp(x)`, `strict.random.default_rng(0)`, ..."""

    def __init__(self, name, target):
        super().__init__(name)
        self._target = target

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if isinstance(value, types.ModuleType):                # strict.random, strict.linalg
            return _Namespace(f"{self.__name__}.{name}", value)
        if isinstance(value, type) or not callable(value):     # dtypes, finfo, pi, newaxis
            return value
        return _wrapped(value)


strict = _Namespace("strict", numpy)


def _scatter_add(target, indices, values):
    numpy.add.at(target.a, _unwrap(indices), _unwrap(values))


STRICT = Device("strict", strict, StrictArray,
                lambda x: StrictArray(numpy_erf(x.a)),
                _scatter_add, lambda x: x.a.copy())
