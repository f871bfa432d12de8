"""The array-module switch: one set of op code for NumPy (CPU) and CuPy (CUDA).

Op and model files never import NumPy. They ask an array which module made it
(`get_array_module(x)`, Chainer's idea) and call that module, `xp`. The few things the
array modules spell differently -- erf, scatter-add, the copy back to the host -- live
here, in one `Device` per array library.
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


_DEVICES = {"numpy": Device("numpy", numpy, numpy.ndarray, scipy.special.erf,
                            _numpy_scatter_add, numpy.asarray)}
_default_name = os.environ.get("MINIBERT_DEVICE", "numpy")


def _load_cupy():
    try:
        import cupy
        import cupyx
        import cupyx.scipy.special
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:   # not installed, or installed without a usable GPU
        raise RuntimeError(f"device 'cupy' is not available ({type(e).__name__}: {e}); "
                           "install the gpu extra (pip install 'minibert[gpu]') on a machine "
                           "with a CUDA GPU, or use device 'numpy'") from None
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
