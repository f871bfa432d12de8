"""The array-module switch: one set of op code for NumPy (CPU) and CuPy (CUDA).

Op and model files never import NumPy. They ask an array which module made it
(`get_array_module(x)`, Chainer's idea) and call that module, `xp`. The few things the
array modules spell differently -- erf, scatter-add, the copy back to the host -- live here, in
one `Device` per array library. (How NumPy work is shared out over the CPU cores is
`minibert.speed`'s business.)
"""
import os

import numpy
import scipy.special


class Device:
    """What minibert needs from an array library beyond the NumPy-style API of `xp`."""

    def __init__(self, name, xp, array_type, erf, scatter_add, to_host):
        self.name = name
        self.xp = xp                      # the module: numpy, cupy, ...
        self.array_type = array_type      # its array class, to recognise its arrays
        self.erf = erf                    # elementwise error function
        self.scatter_add = scatter_add    # target[indices] += values, repeated indices summed
        self.to_host = to_host            # device array -> numpy.ndarray

    def asarray(self, array, dtype=None):
        """Move a host (or same-device) array onto this device."""
        return self.xp.asarray(array, dtype=dtype)

    def __repr__(self):
        return f"Device({self.name!r})"


def _numpy_scatter_add(target, indices, values):
    numpy.add.at(target, indices, values)


# erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0: Numerical Recipes' erfcc form, with P
# fitted for erf's absolute error (scripts/fit_erf.py), which needs degree 6 where erfcc's fit
# for erfc's relative error takes 9. P's coefficients, t^0 first:
_ERFC_FIT = (-1.27621123, 1.11824249, -0.16560040, 1.38617492, -1.79126672, 0.89570763,
             -0.16704668)
_ERF_BLOCK = 1 << 16      # elements per block: the fit's passes over it stay in the CPU cache


def numpy_erf(x):
    """erf on NumPy arrays. float64 (gradient checks): SciPy's, exact to rounding. float32:
    the fit above, within 5e-7 of the exact value and faster than SciPy, whose float32 erf
    computes in double precision."""
    if x.dtype != numpy.float32:
        return scipy.special.erf(x)
    out = numpy.empty(x.shape, dtype=numpy.float32)
    flat, flat_out = numpy.ascontiguousarray(x).reshape(-1), out.reshape(-1)
    for start in range(0, x.size, _ERF_BLOCK):
        block, result = flat[start:start + _ERF_BLOCK], flat_out[start:start + _ERF_BLOCK]
        z = numpy.abs(block)
        t = z * numpy.float32(0.5)
        t += 1
        numpy.reciprocal(t, out=t)
        p = t * numpy.float32(_ERFC_FIT[-1])
        for c in _ERFC_FIT[-2:0:-1]:             # Horner, in place
            p += numpy.float32(c)
            p *= t
        p += numpy.float32(_ERFC_FIT[0])
        with numpy.errstate(over="ignore"):     # z^2 = inf for huge |x|: exp(-inf) = 0, right
            z *= z
        p -= z
        numpy.exp(p, out=p)
        p *= t                                   # erfc(|x|)
        numpy.subtract(1, p, out=result)
        numpy.copysign(result, block, out=result)   # erf is odd
    return out


_DEVICES = {"numpy": Device("numpy", numpy, numpy.ndarray, numpy_erf,
                            _numpy_scatter_add, numpy.asarray)}
_default_name = os.environ.get("MINIBERT_DEVICE", "numpy")


def _load_cupy():
    try:
        import cupy
        import cupyx
        import cupyx.scipy.special
    except ImportError as e:
        raise RuntimeError(f"device 'cupy': CuPy is not installed ({e}); install the extra for "
                           "your CUDA version (nvidia-smi shows it): pip install 'minibert[gpu]' "
                           "for CUDA 12, 'minibert[gpu-cuda13]' for CUDA 13; or use device "
                           "'numpy'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:   # no driver, or a driver older than the CuPy wheel's CUDA
        raise RuntimeError(f"device 'cupy': CuPy is installed but finds no usable CUDA GPU "
                           f"({type(e).__name__}: {e}); check nvidia-smi, and that the CuPy "
                           "wheel's CUDA version (cupy-cuda12x or cupy-cuda13x) matches the "
                           "driver; or use device 'numpy'") from None
    if count == 0:
        raise RuntimeError("device 'cupy': CuPy is installed but this machine has no CUDA GPU; "
                           "use device 'numpy'")
    return Device("cupy", cupy, cupy.ndarray, cupyx.scipy.special.erf, cupyx.scatter_add,
                  cupy.asnumpy)


def register(device):
    """Make another array library available by name (tests register a strict one)."""
    _DEVICES[device.name] = device


def get_device(name=None):
    """The Device called `name` (default: `use(...)`, else $MINIBERT_DEVICE, else numpy)."""
    name = _default_name if name is None else name
    if isinstance(name, Device):
        return name
    if name == "cupy" and "cupy" not in _DEVICES:
        register(_load_cupy())
    if name not in _DEVICES:
        raise ValueError(f"device: expected one of {sorted(set(_DEVICES) | {'cupy'})}, "
                         f"found {name!r}")
    return _DEVICES[name]


def use(name):
    """Set the device that new models are created on."""
    global _default_name
    _default_name = get_device(name).name


def device_of(array):
    for device in _DEVICES.values():
        if isinstance(array, device.array_type):
            return device
    raise TypeError(f"expected an array of one of the devices {sorted(_DEVICES)}, "
                    f"found {type(array).__module__}.{type(array).__name__}")


def get_array_module(array):
    """The module (numpy, cupy, ...) that made `array`: op code calls it `xp`."""
    return device_of(array).xp


def erf(x):
    return device_of(x).erf(x)


def scatter_add(target, indices, values):
    device_of(target).scatter_add(target, indices, values)


def host_generator(seed):
    """A NumPy random generator for host-side work such as weight init, the same on every device."""
    return numpy.random.default_rng(seed)


def to_host(array):
    """A numpy.ndarray copy (or view, on the CPU) of a device array."""
    return device_of(array).to_host(array)
