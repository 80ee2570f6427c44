"""Tests for dpm.base.atomic: outputs appear whole or not at all, and leftovers never look like data."""

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dpm.base.atomic import atomic_path, atomic_torch_save, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = (".png", ".jpg", ".npz", ".npy", ".pt", ".json", ".csv", ".md", ".txt")


@pytest.mark.parametrize("name", ["x.png", "x.jpg", "data.npz", "model.pt", "meta.json"])
def test_an_interrupted_write_leaves_nothing_and_its_temp_name_is_no_data_name(tmp_path, name):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / name) as tmp:
            tmp.write_bytes(b"half a file")
            seen = tmp
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    assert seen.parent == tmp_path and seen.name.startswith(f".{name}.")  # hidden, beside it
    assert seen.suffix == ".tmp" and not seen.name.endswith(DATA_SUFFIXES)


def test_a_killed_write_leaves_only_a_hidden_tmp_file_that_no_png_glob_finds(tmp_path):
    # SIGKILL runs no cleanup: whatever the temporary file is named stays behind.
    child = ("import os, signal, sys\n"
             "from dpm.base.atomic import atomic_path\n"
             "with atomic_path(sys.argv[1]) as tmp:\n"
             "    tmp.write_bytes(b'half a png')\n"
             "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path / "x.png")], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    [leftover] = tmp_path.iterdir()
    assert leftover.name.startswith(".x.png.") and leftover.suffix == ".tmp"
    assert list(tmp_path.glob("*.png")) == []
    assert list(tmp_path.glob("*.png*")) == [leftover]  # pathlib's glob does see hidden files


def test_a_finished_write_is_renamed_into_place_with_a_plain_mode(tmp_path):
    target = tmp_path / "meta.json"
    atomic_write_text(target, "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"] and target.read_text() == "{}\n"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_same_object_saved_twice_gives_the_same_bytes(tmp_path):
    """No temporary name inside the archive: an identical model file is byte-identical."""
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    atomic_torch_save(state, tmp_path / "a.pt")
    first = (tmp_path / "a.pt").read_bytes()
    atomic_torch_save(state, tmp_path / "a.pt")
    assert (tmp_path / "a.pt").read_bytes() == first


def test_a_write_that_finds_no_room_names_the_file_in_one_line_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError) as raised:
        with atomic_path(tmp_path / "models" / "x.pt") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'models' / 'x.pt'}: cannot be written (No space left on device; ")
    assert "MiB free on its filesystem)" in message and "\n" not in message
    assert list((tmp_path / "models").iterdir()) == []
    with pytest.raises(FileNotFoundError):  # not about room: as it was
        with atomic_path(tmp_path / "y.txt"):
            open(tmp_path / "missing")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB filesystem (tmpfs; needs root), unmounted after the test."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_on_a_full_disk_every_writer_names_the_file(full_disk):
    """torch.save says only ``unexpected pos``; a text write says ``[Errno 28]``: both become one
    line naming the file, and nothing is left on the disk."""
    for name, write in (("model.pt", lambda p: atomic_torch_save({"x": torch.zeros(100_000)}, p)),
                        ("metrics.json", lambda p: atomic_write_text(p, "x" * 200_000))):
        with pytest.raises(OSError, match=rf"^{full_disk / name}: cannot be written \(.*MiB free on its filesystem\)$"):
            write(full_disk / name)
    assert list(full_disk.iterdir()) == []

