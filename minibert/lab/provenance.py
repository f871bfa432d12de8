"""What produced a result: the minibert, Python and NumPy versions and the machine, in one line.
The notebooks print it first, so a page of outputs says where its numbers come from."""
import importlib.metadata
import os
import platform

import numpy

from ..speed.plans import cpu_name


def describe():
    """e.g. 'minibert 0.1.0, Python 3.11.7, NumPy 2.4.6 on Linux x86_64, AMD EPYC 7B13, 2 cores'"""
    return (f"minibert {importlib.metadata.version('minibert')}, Python {platform.python_version()}, "
            f"NumPy {numpy.__version__} on {platform.system()} {platform.machine()}, {cpu_name()}, "
            f"{os.cpu_count()} cores")
