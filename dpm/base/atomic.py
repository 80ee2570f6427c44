"""Outputs appear whole or not at all: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it to ``path`` if the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was. The temporary
    name, ``.{name}.XXXXXXXX.tmp``, is hidden and ends in ``.tmp``, so that a file left behind
    by a killed process never looks like data to a reader that globs ``*.png`` or ``*.npz``.
    Writers must therefore not choose their format by the name they are given: pass it
    (``savefig(tmp, format="png")``) or write to an open file (``np.save(f, ...)``, which would
    otherwise append ``.npy`` to the name).

    A write that fails for want of room (a full disk or quota, a file too large, a read-only
    filesystem) raises OSError naming ``path`` and the room left, in one line, whatever wrote it
    (torch.save's archive writer says only ``unexpected pos``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _unwritable(path, error) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in _NO_ROOM:
            raise
        raise _unwritable(path, error) from None
    except RuntimeError as error:  # torch.save's writer: "unexpected pos 704 vs 598" on a full disk
        if "unexpected pos" not in str(error) and "failed writing" not in str(error):
            raise
        raise _unwritable(path, error) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _unwritable(path: Path, error: Exception) -> OSError:
    """``error`` as one line naming ``path``, and how much room its filesystem has left."""
    if isinstance(error, OSError) and error.strerror:
        cause = error.strerror
    else:  # torch's "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
        cause = "the archive writer failed: " + str(error).splitlines()[0].split("] . ")[-1]
    try:
        room = f"; {shutil.disk_usage(path.parent).free / 2 ** 20:.1f} MiB free on its filesystem"
    except OSError:
        room = ""
    return OSError(f"{path}: cannot be written ({cause}{room})")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj: object, path: str | Path) -> None:
    """torch.save ``obj`` to ``path`` atomically. Saved through an open file, so the archive's
    inner name is torch's fixed one, not the random temporary name: the same object gives the
    same bytes, and an identical retrain leaves DVC nothing to rerun downstream."""
    import torch
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(obj, file)


def _umask() -> int:
    """The process's umask (read by setting it, then restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
