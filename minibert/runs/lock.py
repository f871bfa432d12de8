"""One run at a time in an output folder: a lock file in it, made atomically, naming its holder.

`locked(folder)` makes `LOCK` with O_CREAT | O_EXCL, which only one process can do, and writes
its process id and host name into it; the lock goes when the block ends, however it ends. A
second run on the folder is refused at once, naming the holder. A lock whose process is gone
(a run killed with SIGKILL, or a machine that crashed) is stale: it is taken over.
"""
import contextlib
import os
import socket
from pathlib import Path

LOCK = ".minibert.lock"


class FolderInUse(RuntimeError):
    """Another live process holds the folder's lock."""


def _holder(lock):
    """(pid, host) written in a lock file; (None, None) if it cannot be read."""
    try:
        pid, host = lock.read_text("utf-8").split()
        return int(pid), host
    except (OSError, ValueError):
        return None, None


def _alive(pid, host):
    """Whether the lock's process may still run. A process on another host cannot be seen from
    here, so it counts as alive; so does an unreadable lock (it may be half-written)."""
    if pid is None or host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)                    # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:                # it exists, under another user
        return True
    return True


def _take(lock):
    for _ in range(2):                     # a stale lock is removed, then taken again
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid, host = _holder(lock)
            if _alive(pid, host):
                holder = "an unknown process" if pid is None else f"process {pid} on {host}"
                raise FolderInUse(f"{lock.parent}: in use by {holder} (its lock is {lock}); "
                                  "wait for that run to end, or choose another folder; if no "
                                  "run is going, remove the lock file") from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        return
    raise FolderInUse(f"{lock.parent}: another run took its stale lock {lock} over just now")


@contextlib.contextmanager
def locked(folder):
    """While inside, `folder` (made if missing) belongs to this process: locked(folder) in any
    other process raises FolderInUse. Folders made here that are still empty at the end (a run
    that failed before writing anything) are removed again."""
    folder = Path(folder)
    made = []                              # the folders mkdir will make, deepest first
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        made.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _take(folder / LOCK)
        try:
            yield folder
        finally:
            (folder / LOCK).unlink(missing_ok=True)
    finally:
        for empty in made:
            with contextlib.suppress(OSError):     # not empty: something was written there
                empty.rmdir()
