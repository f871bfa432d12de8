"""One run at a time per output folder: a second run is refused naming the first one's process,
the refusal changes nothing, and the lock of a killed run is taken over."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from minibert.cli import main
from minibert.lab import analyses
from minibert.runs import launch
from minibert.runs.lock import LOCK, FolderInUse, locked

from conftest import snapshot

REPO = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time\n"
        "from minibert.runs.lock import locked\n"
        "with locked(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(120)\n")


def dead_pid():
    """The process id of a process that has ended (and been reaped)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def refuse_to_start(*args):
    raise AssertionError(f"work started: {args}")


def test_a_second_run_is_refused_naming_the_first_and_a_killed_runs_lock_is_taken_over(
        tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    with subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                          text=True, cwd=REPO) as holder:
        try:
            assert holder.stdout.readline() == "locked\n"
            monkeypatch.setattr(launch, "Run", refuse_to_start)
            monkeypatch.setitem(analyses.EXPERIMENTS, "init-scale", refuse_to_start)
            before = snapshot(tmp_path)
            for argv in (["train", "--out", str(folder), "--epochs", "1"],
                         ["experiment", "init-scale", "--tasks", "TREC-6", "--out", str(folder)]):
                assert main(argv) == 2
                err = capsys.readouterr().err
                assert len(err.splitlines()) == 1, err
                assert f"{folder}: in use by process {holder.pid} on {socket.gethostname()}" in err
                assert snapshot(tmp_path) == before
        finally:
            holder.kill()                   # SIGKILL: its lock stays behind, stale
    assert (folder / LOCK).read_text() == f"{holder.pid} {socket.gethostname()}\n"
    with locked(folder):
        assert (folder / LOCK).read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert not (folder / LOCK).exists()


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    (tmp_path / LOCK).write_text(f"{dead_pid()} {socket.gethostname()}\n")
    with locked(tmp_path):
        with pytest.raises(FolderInUse, match=f"in use by process {os.getpid()} "):
            with locked(tmp_path):          # this very process holds it
                pass
    assert list(tmp_path.iterdir()) == []


def test_a_lock_from_another_host_counts_as_live(tmp_path):
    (tmp_path / LOCK).write_text(f"{dead_pid()} another-host\n")
    with pytest.raises(FolderInUse, match="on another-host .*remove the lock file"):
        with locked(tmp_path):
            pass


def test_the_lock_goes_however_the_run_ends_and_folders_left_empty_go_too(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with locked(tmp_path / "a" / "b"):
            assert (tmp_path / "a" / "b" / LOCK).is_file()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with locked(tmp_path / "c") as folder:
        (folder / "results.json").write_text("{}\n")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["results.json"]
