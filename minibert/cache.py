"""Where minibert keeps what it fetches or measures once: $MINIBERT_CACHE, default
~/.cache/minibert (data wheels, the speed layer's plans, the interop tests' environment)."""
import os
from pathlib import Path


def cache_dir():
    """$MINIBERT_CACHE, default ~/.cache/minibert (not made here)."""
    return Path(os.environ.get("MINIBERT_CACHE", "~/.cache/minibert")).expanduser()
