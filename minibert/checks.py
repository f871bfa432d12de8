"""Checks of settings and arguments: what a number, a choice, a path or a device may be.

Every check names the setting (as the Python API calls it: `batch_size`), what was expected
and what was found, and raises `BadValue`, a ValueError. `minibert` commands call the same
checks before any work starts and print the option's name in place of the setting's
(`--batch-size: expected a positive integer, found 0`). These checks know values only; a check
that knows tasks, data files or models lives with what it checks (`minibert.data.checks`,
`named_models.check_model`, `minibert.runs.settings`).
"""
import difflib
import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path

from . import backend


class BadValue(ValueError):
    """A setting outside what it may be. `name` is the setting, `problem` says why."""

    def __init__(self, name, problem):
        super().__init__(f"{name}: {problem}")
        self.name, self.problem = name, problem


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(name, value, minimum=1, maximum=None):
    """An integer (not a bool) in [minimum, maximum]; no maximum by default."""
    if _is_integer(value) and minimum <= value and (maximum is None or value <= maximum):
        return value
    if maximum is not None:
        expected = f"an integer in [{minimum}, {maximum}]"
    else:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    raise BadValue(name, f"expected {expected}, found {value!r}")


def example_count(name, value):
    """How many examples to use: None or 0 mean all of them (returned as None)."""
    if value is None or (_is_integer(value) and value == 0):
        return None
    if _is_integer(value) and value > 0:
        return value
    raise BadValue(name, f"expected an integer >= 0 (0: all examples), found {value!r}")


def positive(name, value):
    """A finite number > 0."""
    if _is_finite(value) and value > 0:
        return value
    raise BadValue(name, f"expected a finite number > 0, found {value!r}")


def finite(name, value):
    """A finite number."""
    if _is_finite(value):
        return value
    raise BadValue(name, f"expected a finite number, found {value!r}")


def boolean(name, value):
    """True or False."""
    if isinstance(value, bool):
        return value
    raise BadValue(name, f"expected true or false, found {value!r}")


def non_negative(name, value):
    """A finite number >= 0."""
    if _is_finite(value) and value >= 0:
        return value
    raise BadValue(name, f"expected a finite number >= 0, found {value!r}")


def probability(name, value, below_one=False):
    """A number in [0, 1], or [0, 1) with below_one."""
    if _is_finite(value) and 0 <= value and (value < 1 if below_one else value <= 1):
        return value
    raise BadValue(name, f"expected a number in [0, {'1)' if below_one else '1]'}, found {value!r}")


def choice(name, value, choices):
    """One of `choices` (any iterable of names)."""
    choices = list(choices)
    if value in choices:
        return value
    raise BadValue(name, f"expected one of {', '.join(map(str, choices))}, found {value!r}")


def plural(count, noun):
    """"1 epoch", "3 epochs": a count in a message."""
    return f"{count:,d} {noun}{'' if count == 1 else 's'}"


def name_among(name, value, names):
    """One of `names`, matched without regard to case or dashes ("sst-2", "sst2": SST-2) ->
    the name as `names` spells it; else refused with the nearest name, where one is close."""
    names = list(names)
    key = lambda n: str(n).lower().replace("-", "").replace("_", "")
    matches = [n for n in names if isinstance(value, str) and key(n) == key(value)]
    if len(matches) == 1:
        return matches[0]
    raise BadValue(name, f"expected one of {', '.join(map(str, names))}, found {value!r}"
                         f"{nearest(value, names)}")


def nearest(value, names):
    """"; did you mean 'X'?" when one of names is close to value, else ""."""
    close = difflib.get_close_matches(str(value).lower(), [str(n).lower() for n in names], n=1,
                                      cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {next(n for n in names if str(n).lower() == close[0])!r}?"


def layers(name, values, num_layers):
    """Layer indices, each in [0, num_layers - 1]."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise BadValue(name, f"expected a list of layer indices, found {values!r}")
    bad = [l for l in values if not (_is_integer(l) and 0 <= l < num_layers)]
    if bad:
        raise BadValue(name, f"expected layer indices in [0, {num_layers - 1}], found {bad}")
    return values


def device(name, value):
    """A device name minibert knows and this machine can use; None is the default device."""
    if value is not None and not isinstance(value, str):
        raise BadValue(name, f"expected a device name, found {value!r}")
    try:
        backend.get_device(value)
    except ValueError as e:           # "device: expected one of [...], found ..."
        raise BadValue(name, str(e).partition(": ")[2]) from None
    except RuntimeError as e:         # known, but not usable here (CuPy without a GPU)
        raise BadValue(name, str(e)) from None
    return value


def _path(name, value):
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise BadValue(name, f"expected a path, found {value!r}")
    return Path(value).expanduser()


def _what_is_at(path):
    return "a file" if path.is_file() else "a folder" if path.is_dir() else "nothing"


def existing_folder(name, value):
    path = _path(name, value)
    if not path.is_dir():
        raise BadValue(name, f"expected a folder, found {_what_is_at(path)} at {value}")
    return path


def existing_file(name, value):
    path = _path(name, value)
    if not path.is_file():
        raise BadValue(name, f"expected a file, found {_what_is_at(path)} at {value}")
    return path


def output_folder(name, value):
    """A folder to write into: one that exists, or one that can be made (the nearest existing
    folder above it is a folder, not a file)."""
    path = _path(name, value).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise BadValue(name, f"expected a folder or a path where one can be made, found a file "
                             f"at {existing}")
    return path


def output_file(name, value):
    """A file to write: not a folder, in a folder that exists or can be made."""
    path = _path(name, value).absolute()
    if path.is_dir():
        raise BadValue(name, f"expected a file to write, found a folder at {value}")
    output_folder(name, path.parent)
    return path


def sequence_length(name, value, config, minimum=1):
    """A token count the model's position table holds."""
    return integer(name, value, minimum, config.max_position_embeddings)
