"""Where NumPy's arrays get their memory: freed memory is kept for the next arrays.

A step of the model makes the same large arrays again and again (a layer's activations, an op's
temporaries). By default glibc's malloc hands a large freed block back to the system and asks
for it again at the next step, and the system then maps it in page by page, every step. Told to
keep what is freed (no trimming, and blocks up to 32 MiB from the heap rather than mapped one by
one), malloc reuses it, and steps take almost no page faults (docs/speed.md has the figures).
The process's memory then stays at its peak instead of shrinking between steps.

Only glibc (Linux) has these settings; elsewhere nothing changes.
"""
import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1        # mallopt's parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
TRIM_ABOVE = 2 ** 31 - 1      # free memory given back only beyond 2 GiB (mallopt's largest int)
LARGEST_FROM_HEAP = 32 << 20   # glibc's upper bound for the mmap threshold on 64-bit systems


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse; True if it took the settings."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE)
                and libc.mallopt(M_MMAP_THRESHOLD, LARGEST_FROM_HEAP))
