"""Writing files so that a crash never leaves half of one."""
import os
import shutil
import uuid


def write_atomically(target, write):
    """write(tmp) into a temporary file beside target, make it durable, then rename it over
    target: a reader sees the old file or the new one, never half of one. The file gets the
    mode the umask gives new files, whatever mode the writer made it with."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())          # safetensors writes 0600
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if os.name == "posix":          # make the rename itself durable
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def current_umask():
    mask = os.umask(0o022)        # reading it means setting it: set it straight back
    os.umask(mask)
    return mask


def write_folder_atomically(target, write):
    """write(tmp) fills a temporary folder beside target, which then replaces target (absent,
    or an empty folder): a reader sees no folder or the whole of it. Its files get the mode
    the umask gives new files."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~current_umask())
            with open(file, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
