"""Checksummed fetching of raw dataset files: from an offline mirror, else from the web.

Every file a dataset module needs is described once, as a `RemoteFile` with its recorded
checksum: its sha256, or its md5 where that is all its publishers give. `fetch` puts a verified
copy in a destination folder: a copy already there is reused if its checksum matches; otherwise
the file is copied from the mirror folder (``$DPM_DATA_MIRROR``) or downloaded, written to a
temporary name beside the target, and renamed into place only after its checksum matched.
Nothing unverified or half-written ever sits under a file's real name.

`safe_extract` unpacks tar archives without letting a member escape its destination
(`check_member_name` is its test of a member's path, for zip archives too). `read_verified`
reads a file once and hands back its bytes only if their checksum matched, so whatever is done
next acts on exactly the bytes that were hashed: `tar_member_bytes` takes the named members out of
such an in-memory archive, and `load_pickle_verified` unpickles a file this way, since unpickling
runs code chosen by whoever wrote the file.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from dpm.base.atomic import atomic_path

MIRROR_ENV = "DPM_DATA_MIRROR"
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0

# tarfile's "data" extraction filter (PEP 706) exists from Python 3.11.4 on.
_DATA_FILTER = getattr(tarfile, "data_filter", None)


class ChecksumError(OSError):
    """A file's checksum is not the recorded one.

    Attributes:
        path: the file (or URL) whose content was hashed.
        expected: the recorded checksum, hex.
        actual: the checksum of the content found, hex.
        algorithm: ``"sha256"`` or ``"md5"``.
    """

    def __init__(self, path: str | Path, expected: str, actual: str, algorithm: str = "sha256"):
        super().__init__(f"checksum mismatch for {path}: "
                         f"expected {algorithm} {expected}, got {algorithm} {actual}")
        self.path, self.expected, self.actual = str(path), expected, actual
        self.algorithm = algorithm


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One raw file of a dataset, as published.

    Attributes:
        filename: the file's name in the destination folder.
        sha256: its sha256, hex; None where none is published.
        url: where to download it; None for a file that only the offline mirror holds.
        mirror_path: its path relative to the mirror root, e.g.
            ``"mnist/train-images-idx3-ubyte.gz"``.
        md5: its md5, hex, checked only where no sha256 is recorded. A file with neither is
            never fetched, since no copy of it could be verified.
    """

    filename: str
    sha256: str | None
    url: str | None
    mirror_path: str
    md5: str | None = None

    @property
    def checksum(self) -> tuple[str, str] | None:
        """``(algorithm, hex digest)`` that copies are verified against: the sha256 if recorded,
        else the md5; None if neither is."""
        if self.sha256 is not None:
            return "sha256", self.sha256
        if self.md5 is not None:
            return "md5", self.md5
        return None


class MissingDataError(OSError):
    """A file is neither in the destination folder, nor in the mirror, nor downloadable.

    Attributes:
        remote: the file that is missing.
        dest: where `fetch` would have put it.
        reason: why no source worked.
    """

    def __init__(self, remote: RemoteFile, dest: Path, mirror: Path | None, reason: str):
        mirror_copy = (mirror / remote.mirror_path if mirror is not None
                       else f"${MIRROR_ENV}/{remote.mirror_path} (${MIRROR_ENV} is not set)")
        algorithm, digest = remote.checksum or ("checksum", "none recorded")
        super().__init__(
            f"missing data file {remote.filename}: {reason}.\n"
            f"  download URL: {remote.url or 'none (mirror-only file)'}\n"
            f"  {algorithm}: {digest}\n"
            f"  put a verified copy at {mirror_copy}\n"
            f"  or at {dest}")
        self.remote, self.dest, self.reason = remote, dest, reason


class UnsafeArchiveError(ValueError):
    """An archive member could land outside its destination folder, or is not a plain file."""


class _FromEnv(enum.Enum):
    MIRROR = f"${MIRROR_ENV}"


FROM_ENV = _FromEnv.MIRROR
"""Default ``mirror`` argument: read the mirror root from ``$DPM_DATA_MIRROR`` at call time."""

Mirror = Path | str | None | _FromEnv


def digest_of(path: str | Path, algorithm: str = "sha256") -> str:
    """A file's ``"sha256"`` or ``"md5"`` digest, hex, read in chunks of `CHUNK_BYTES`.

    The md5 is only ever compared with a published one, to catch a corrupt or wrong copy
    (hence ``usedforsecurity=False``); it is used where no sha256 is published.
    """
    digest = _new_digest(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _new_digest(algorithm: str) -> Any:
    """An empty hashlib object for ``"sha256"`` or ``"md5"``; ValueError for anything else."""
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}: use 'sha256' or 'md5'")
    return hashlib.sha256() if algorithm == "sha256" else hashlib.md5(usedforsecurity=False)


def read_verified(path: str | Path, expected: str, algorithm: str = "sha256") -> bytes:
    """A file's whole content, read once, returned only if its digest is ``expected``.

    Whatever the caller then does with the bytes (unpickling, unpacking) acts on exactly the
    bytes that were hashed: the file is not opened again, so replacing it on disk after the
    check changes nothing.

    Args:
        path: the file; it is held in memory whole.
        expected: its expected digest, hex.
        algorithm: ``"sha256"`` (default) or ``"md5"``.

    Returns:
        The file's bytes.

    Raises:
        ChecksumError: the content has another digest.
    """
    data = Path(path).read_bytes()
    digest = _new_digest(algorithm)
    digest.update(data)
    actual = digest.hexdigest()
    if actual != expected:
        raise ChecksumError(path, expected, actual, algorithm)
    return data


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's content, hex, read in chunks of `CHUNK_BYTES`."""
    return digest_of(path, "sha256")


def mirror_root() -> Path | None:
    """The offline mirror's root folder from ``$DPM_DATA_MIRROR``; None if unset or empty."""
    value = os.environ.get(MIRROR_ENV, "")
    return Path(value) if value else None


def resolve_mirror(mirror: Mirror) -> Path | None:
    """Turns a ``mirror`` argument into a folder: `FROM_ENV` reads `mirror_root`, None is none."""
    if mirror is FROM_ENV:
        return mirror_root()
    return None if mirror is None else Path(mirror)


def write_verified(dest: Path, expected: str, write: Callable[[Path], None], source: str,
                   algorithm: str = "sha256") -> Path:
    """Writes ``dest`` through a temporary file that is renamed into place only if verified.

    Args:
        dest: the final path.
        expected: the content's expected digest, hex.
        write: writes the content to the temporary path it is given.
        source: where the content comes from, named in a `ChecksumError`.
        algorithm: ``"sha256"`` (default) or ``"md5"``.

    Returns:
        ``dest``.

    Raises:
        ChecksumError: the written content has another digest; neither ``dest`` nor the
            temporary file is left behind.
    """
    with atomic_path(dest) as tmp:
        write(tmp)
        actual = digest_of(tmp, algorithm)
        if actual != expected:
            raise ChecksumError(source, expected, actual, algorithm)
    return dest


def _download(url: str, path: Path) -> None:
    """Streams ``url`` to ``path``, giving up after `DOWNLOAD_TIMEOUT_S` without data."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
            open(path, "wb") as out:
        shutil.copyfileobj(response, out, CHUNK_BYTES)


def fetch(remote: RemoteFile, dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> Path:
    """Puts a verified copy of ``remote`` in ``dest_dir``: the one there, the mirror's or the URL's.

    Copies are verified against ``remote.checksum``: the sha256, or the md5 where only that is
    recorded. A file already at ``dest_dir/remote.filename`` is kept if its checksum matches and
    deleted otherwise. A copy found in the mirror is used before the URL is tried; a corrupt
    mirror copy is an error, not a reason to download.

    Args:
        remote: the file to fetch.
        dest_dir: the destination folder (created if needed).
        mirror: the mirror root; `FROM_ENV` (default) reads ``$DPM_DATA_MIRROR``, None means no
            mirror.

    Returns:
        ``dest_dir/remote.filename``, whose checksum is the recorded one.

    Raises:
        ChecksumError: the mirror copy or the download has the wrong checksum.
        MissingDataError: no checksum is recorded, or neither the mirror nor the URL has the file.
    """
    mirror = resolve_mirror(mirror)
    dest = Path(dest_dir) / remote.filename
    if remote.checksum is None:
        raise MissingDataError(remote, dest, mirror, "no checksum (sha256 or md5) is recorded "
                               "for it, so no copy of it can be verified")
    algorithm, expected = remote.checksum
    if dest.is_file():
        if digest_of(dest, algorithm) == expected:
            return dest
        dest.unlink()
    mirror_copy = mirror / remote.mirror_path if mirror is not None else None
    if mirror_copy is not None and mirror_copy.is_file():
        return write_verified(dest, expected, lambda tmp: shutil.copyfile(mirror_copy, tmp),
                              str(mirror_copy), algorithm)
    no_mirror = f"not in the mirror ({mirror_copy or 'no mirror configured'})"
    if remote.url is None:
        raise MissingDataError(remote, dest, mirror, f"{no_mirror} and it has no download URL")
    try:
        return write_verified(dest, expected, lambda tmp: _download(remote.url, tmp), remote.url,
                              algorithm)
    except ChecksumError:
        raise
    except (urllib.error.URLError, OSError) as err:
        raise MissingDataError(remote, dest, mirror,
                               f"{no_mirror} and downloading {remote.url} failed: {err}") from err


def _member_kind(member: tarfile.TarInfo) -> str:
    """A tar member's type in words."""
    kinds = [(member.issym, "symbolic link"), (member.islnk, "hard link"),
             (member.ischr, "character device"), (member.isblk, "block device"),
             (member.isfifo, "fifo")]
    return next((word for test, word in kinds if test()), "special file")


def _check_member_kind(member: tarfile.TarInfo, allow_folders: bool = True) -> None:
    """Raises `UnsafeArchiveError` unless ``member`` is a plain file (or, if allowed, a folder)."""
    if member.isfile() or (allow_folders and member.isdir()):
        return
    kind = "folder" if member.isdir() else _member_kind(member)
    raise UnsafeArchiveError(f"refusing archive member {member.name!r}: it is a {kind}")


def _check_relative_name(name: str) -> None:
    """Raises `UnsafeArchiveError`, naming the member, for an absolute path (POSIX or Windows)
    or a ``..`` component (either separator): the checks that need no destination folder."""
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: absolute path")
    if ".." in PurePosixPath(name).parts or ".." in PureWindowsPath(name).parts:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: its path contains '..'")


def check_member_name(name: str, root: Path) -> None:
    """Raises `UnsafeArchiveError`, naming the member, if an archive member's path could land
    outside ``root`` (a resolved folder): an absolute path (POSIX or Windows), a ``..``
    component (either separator), or a path resolving outside it (through a symlink)."""
    _check_relative_name(name)
    if not (root / name).resolve().is_relative_to(root):
        raise UnsafeArchiveError(f"refusing archive member {name!r}: it resolves outside {root}")


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    """Raises `UnsafeArchiveError` unless ``member`` is a plain file or folder inside ``root``."""
    name = member.name
    _check_member_kind(member)
    check_member_name(name, root)
    if _DATA_FILTER is not None:
        try:
            _DATA_FILTER(member, str(root))
        except tarfile.FilterError as err:
            raise UnsafeArchiveError(f"refusing archive member {name!r}: {err}") from err


def _extract_file(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> Path:
    """Copies one checked file member to ``root/member.name`` through a temporary file."""
    target = root / member.name
    source = tar.extractfile(member)
    with source, atomic_path(target) as tmp, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)
    return target


def safe_extract(archive: str | Path, dest_dir: str | Path,
                 members: list[str] | None = None) -> list[Path]:
    """Extracts plain files and folders of a tar(.gz) archive, refusing anything that could escape.

    Every chosen member is checked before anything is written: absolute paths, paths with
    ``..``, paths resolving outside ``dest_dir`` and links, devices and fifos are refused (and
    tarfile's ``"data"`` filter is applied on top where available). Each file is written to a
    temporary name and renamed, so no partial file is left under a member's name.

    Args:
        archive: the tar archive (any compression tarfile reads).
        dest_dir: the destination folder (created if needed).
        members: names of the members to extract; None for all.

    Returns:
        The paths of the extracted files, in archive order.

    Raises:
        UnsafeArchiveError: a chosen member is unsafe (named in the message); nothing is written.
        KeyError: a name in ``members`` is not in the archive.
    """
    root = Path(dest_dir)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    with tarfile.open(archive, "r:*") as tar:
        chosen = tar.getmembers() if members is None else [tar.getmember(n) for n in members]
        for member in chosen:
            _check_member(member, root)
        extracted = []
        for member in chosen:
            if member.isdir():
                (root / member.name).mkdir(parents=True, exist_ok=True)
            else:
                extracted.append(_extract_file(tar, member, root))
    return extracted


def tar_member_bytes(data: bytes, names: list[str]) -> list[bytes]:
    """The contents of the named members of a tar(.gz) archive held in memory.

    Meant for bytes from `read_verified`: the members come out of the very bytes that were
    hashed, and nothing is written to disk. Every named member is checked before any is read,
    as `safe_extract` checks them: absolute paths and ``..`` components are refused, and so is
    anything but a plain file (folders, links, devices, fifos). Members not named are not read.

    Args:
        data: the archive's bytes (any compression tarfile reads).
        names: the members wanted, by their full names in the archive.

    Returns:
        Each named member's bytes, in the order of ``names``.

    Raises:
        UnsafeArchiveError: a named member is unsafe (named in the message); nothing was read.
        KeyError: a name in ``names`` is not in the archive.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        chosen = [tar.getmember(name) for name in names]
        for member in chosen:
            _check_member_kind(member, allow_folders=False)
            _check_relative_name(member.name)
        return [tar.extractfile(member).read() for member in chosen]


def load_pickle_verified(path: str | Path, sha256: str) -> Any:
    """Unpickles a file only if its sha256 is ``sha256`` (unpickling can run arbitrary code).

    The bytes are read once, hashed and unpickled from memory, so the file cannot change
    between the check and the load.

    Args:
        path: the pickle file.
        sha256: its expected sha256, hex.

    Returns:
        The unpickled object; Python 2 ``str`` objects come back as ``bytes``.

    Raises:
        ChecksumError: the file has another sha256; nothing was unpickled.
    """
    return pickle.loads(read_verified(path, sha256), encoding="bytes")
