"""Tests for the checksummed fetch layer and the image dataset decoders.

Most tests use small synthetic files in a temporary folder. The last ones decode the real
offline mirror when it is present (``$DPM_DATA_MIRROR``, else ``shared/data-mirror`` beside the
repository), which must be there.
"""

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import re
import stat
import tarfile
import types
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dpm.datasets import cifar10, mnist, textures
from dpm.datasets import fetch as fetch_module
from dpm.datasets.fetch import (
    ChecksumError,
    MissingDataError,
    RemoteFile,
    UnsafeArchiveError,
    digest_of,
    fetch,
    load_pickle_verified,
    mirror_root,
    read_verified,
    safe_extract,
    sha256_of,
    tar_member_bytes,
)

GOOD = b"the published content\n"
BAD = b"the published content, corrupted\n"
MIRROR_PATH = "set/file.bin"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


REMOTE = RemoteFile("file.bin", _sha(GOOD), None, MIRROR_PATH)


def _files_in(folder: Path) -> list[str]:
    """Every name in ``folder`` (hidden temporary files included); [] if it does not exist."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _mirror_holding(tmp_path: Path, content: bytes) -> Path:
    mirror = tmp_path / "mirror"
    (mirror / MIRROR_PATH).parent.mkdir(parents=True)
    (mirror / MIRROR_PATH).write_bytes(content)
    return mirror


# --- fetch -----------------------------------------------------------------------------------

def test_corrupt_mirror_copy_raises_and_leaves_nothing(tmp_path):
    mirror, raw = _mirror_holding(tmp_path, BAD), tmp_path / "raw"
    with pytest.raises(ChecksumError) as err:
        fetch(REMOTE, raw, mirror)
    message = str(err.value)
    assert str(mirror / MIRROR_PATH) in message
    assert REMOTE.sha256 in message and _sha(BAD) in message
    assert _files_in(raw) == []


def test_good_mirror_copy_is_copied_verified_and_kept(tmp_path):
    mirror, raw = _mirror_holding(tmp_path, GOOD), tmp_path / "raw"
    path = fetch(REMOTE, raw, mirror)
    assert path == raw / "file.bin" and path.read_bytes() == GOOD
    assert _files_in(raw) == ["file.bin"]
    assert fetch(REMOTE, raw, mirror=None) == path  # a verified copy needs no source


def test_wrong_existing_file_is_replaced(tmp_path):
    mirror, raw = _mirror_holding(tmp_path, GOOD), tmp_path / "raw"
    raw.mkdir()
    (raw / "file.bin").write_bytes(BAD)
    assert fetch(REMOTE, raw, mirror).read_bytes() == GOOD


def test_mirror_is_read_from_the_environment(tmp_path, monkeypatch):
    mirror = _mirror_holding(tmp_path, GOOD)
    monkeypatch.setenv("DPM_DATA_MIRROR", str(mirror))
    assert mirror_root() == mirror
    assert fetch(REMOTE, tmp_path / "raw").read_bytes() == GOOD
    monkeypatch.setenv("DPM_DATA_MIRROR", "")
    assert mirror_root() is None


def test_missing_mirror_only_file_says_where_to_put_it(tmp_path):
    empty, raw = tmp_path / "mirror", tmp_path / "raw"
    empty.mkdir()
    with pytest.raises(MissingDataError) as err:
        fetch(REMOTE, raw, empty)
    message = str(err.value)
    assert "file.bin" in message and REMOTE.sha256 in message
    assert "no download URL" in message and "mirror-only" in message
    assert str(empty / MIRROR_PATH) in message and str(raw / "file.bin") in message
    assert _files_in(raw) == []


def test_missing_file_without_mirror_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("DPM_DATA_MIRROR", raising=False)
    with pytest.raises(MissingDataError, match=r"\$DPM_DATA_MIRROR/set/file\.bin"):
        fetch(REMOTE, tmp_path / "raw")


def test_failed_download_gives_missing_data_with_url_and_reason(tmp_path):
    url = (tmp_path / "nowhere" / "file.bin").as_uri()
    remote = RemoteFile("file.bin", _sha(GOOD), url, MIRROR_PATH)
    with pytest.raises(MissingDataError) as err:
        fetch(remote, tmp_path / "raw", mirror=None)
    message = str(err.value)
    assert url in message and "failed" in message and "No such file" in message
    assert remote.sha256 in message
    assert _files_in(tmp_path / "raw") == []


def test_download_is_verified(tmp_path):
    (tmp_path / "good.bin").write_bytes(GOOD)
    (tmp_path / "bad.bin").write_bytes(BAD)
    good = RemoteFile("file.bin", _sha(GOOD), (tmp_path / "good.bin").as_uri(), MIRROR_PATH)
    bad = RemoteFile("file.bin", _sha(GOOD), (tmp_path / "bad.bin").as_uri(), MIRROR_PATH)
    with pytest.raises(ChecksumError, match=_sha(BAD)):
        fetch(bad, tmp_path / "raw", mirror=None)
    assert _files_in(tmp_path / "raw") == []
    assert fetch(good, tmp_path / "raw", mirror=None).read_bytes() == GOOD


def test_file_without_checksum_is_never_trusted(tmp_path):
    mirror, raw = _mirror_holding(tmp_path, GOOD), tmp_path / "raw"
    raw.mkdir()
    (raw / "file.bin").write_bytes(GOOD)
    unverifiable = RemoteFile("file.bin", None, "https://example.org/file.bin", MIRROR_PATH)
    with pytest.raises(MissingDataError, match=r"no checksum \(sha256 or md5\) is recorded"):
        fetch(unverifiable, raw, mirror)


def test_sha256_of_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "big.bin").write_bytes(data)
    assert sha256_of(tmp_path / "big.bin") == _sha(data)
    assert digest_of(tmp_path / "big.bin", "md5") == _md5(data)
    with pytest.raises(ValueError, match="sha1"):
        digest_of(tmp_path / "big.bin", "sha1")


def test_md5_only_file_is_verified_by_md5(tmp_path):
    remote = RemoteFile("file.bin", None, None, MIRROR_PATH, md5=_md5(GOOD))
    assert remote.checksum == ("md5", _md5(GOOD))
    assert fetch(remote, tmp_path / "raw", _mirror_holding(tmp_path, GOOD)).read_bytes() == GOOD
    both = dataclasses.replace(remote, sha256=_sha(GOOD), md5=_md5(BAD))
    assert both.checksum == ("sha256", _sha(GOOD))  # the sha256 wins where both are recorded


def test_md5_mismatch_names_the_algorithm_and_leaves_nothing(tmp_path):
    mirror, raw = _mirror_holding(tmp_path, BAD), tmp_path / "raw"
    remote = RemoteFile("file.bin", None, None, MIRROR_PATH, md5=_md5(GOOD))
    with pytest.raises(ChecksumError) as err:
        fetch(remote, raw, mirror)
    assert str(err.value) == (f"checksum mismatch for {mirror / MIRROR_PATH}: "
                              f"expected md5 {_md5(GOOD)}, got md5 {_md5(BAD)}")
    assert err.value.algorithm == "md5" and _files_in(raw) == []


# --- safe_extract ----------------------------------------------------------------------------

def _file_member(name: str, data: bytes = b"payload") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special_member(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _write_tar(path: Path, members: list) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return path


def test_safe_extract_extracts_plain_files_and_folders(tmp_path):
    folder = tarfile.TarInfo("sub")
    folder.type = tarfile.DIRTYPE
    archive = _write_tar(tmp_path / "a.tar.gz", [
        (folder, None), _file_member("sub/a.txt", b"A"), _file_member("b.txt", b"B")])
    out = tmp_path / "out"
    assert safe_extract(archive, out) == [out.resolve() / "sub/a.txt", out.resolve() / "b.txt"]
    assert (out / "sub/a.txt").read_bytes() == b"A" and (out / "b.txt").read_bytes() == b"B"
    assert _files_in(out) == ["b.txt", "sub"]
    only = tmp_path / "only"
    assert safe_extract(archive, only, members=["b.txt"]) == [only.resolve() / "b.txt"]
    assert _files_in(only) == ["b.txt"]


@pytest.mark.parametrize("name", ["../evil.txt", "inner/../../evil.txt"])
def test_safe_extract_refuses_dotdot(tmp_path, name):
    archive = _write_tar(tmp_path / "a.tar.gz", [_file_member("fine.txt"), _file_member(name)])
    out = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError, match=r"'\.\.'") as err:
        safe_extract(archive, out)
    assert repr(name) in str(err.value)
    assert _files_in(tmp_path / "out") == ["inner"]
    assert _files_in(out) == []  # checked before anything is written


def test_safe_extract_refuses_absolute_path(tmp_path):
    target = tmp_path / "absolute.txt"
    archive = _write_tar(tmp_path / "a.tar.gz", [_file_member(str(target))])
    with pytest.raises(UnsafeArchiveError, match="absolute path") as err:
        safe_extract(archive, tmp_path / "out")
    assert str(target) in str(err.value)
    assert not target.exists() and _files_in(tmp_path / "out") == []


@pytest.mark.parametrize("kind, word", [
    (tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
    (tarfile.FIFOTYPE, "fifo"), (tarfile.CHRTYPE, "character device"),
])
def test_safe_extract_refuses_links_and_special_files(tmp_path, kind, word):
    archive = _write_tar(tmp_path / "a.tar.gz", [_special_member("link", kind, "/etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match=f"'link': it is a {word}"):
        safe_extract(archive, tmp_path / "out")
    assert _files_in(tmp_path / "out") == []


def test_safe_extract_refuses_path_through_a_symlink_out(tmp_path):
    outside, out = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    (out / "escape").symlink_to(outside)
    archive = _write_tar(tmp_path / "a.tar.gz", [_file_member("escape/file.txt")])
    with pytest.raises(UnsafeArchiveError, match="resolves outside"):
        safe_extract(archive, out)
    assert _files_in(outside) == []


# --- tar_member_bytes --------------------------------------------------------------------------

def test_tar_member_bytes_reads_only_the_named_files_in_order(tmp_path):
    archive = _write_tar(tmp_path / "a.tar.gz", [
        _file_member("a", b"A"), _file_member("d/b", b"B"),
        _special_member("link", tarfile.SYMTYPE, "/etc/passwd")])
    data = archive.read_bytes()
    assert tar_member_bytes(data, ["d/b", "a"]) == [b"B", b"A"]  # the link, unnamed, is let be
    with pytest.raises(KeyError):
        tar_member_bytes(data, ["a", "missing"])


@pytest.mark.parametrize("member, reason", [
    (_file_member("../evil"), r"its path contains '\.\.'"),
    (_file_member("d/../../evil"), r"its path contains '\.\.'"),
    (_file_member("/abs/evil"), "absolute path"),
    (_special_member("evil", tarfile.SYMTYPE, "/etc/passwd"), "it is a symbolic link"),
    (_special_member("evil", tarfile.LNKTYPE, "fine"), "it is a hard link"),
    (_special_member("evil", tarfile.CHRTYPE), "it is a character device"),
    (_special_member("evil", tarfile.DIRTYPE), "it is a folder"),
])
def test_tar_member_bytes_refuses_unsafe_named_members(tmp_path, member, reason):
    archive = _write_tar(tmp_path / "a.tar.gz", [_file_member("fine"), member])
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        tar_member_bytes(archive.read_bytes(), ["fine", member[0].name])
    assert repr(member[0].name) in str(err.value)


# --- read_verified, load_pickle_verified -------------------------------------------------------

def test_read_verified_returns_exactly_the_hashed_bytes(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(GOOD)
    assert read_verified(path, _sha(GOOD)) == GOOD
    assert read_verified(path, _md5(GOOD), "md5") == GOOD
    path.write_bytes(BAD)
    mismatch = f"expected sha256 {_sha(GOOD)}, got sha256 {_sha(BAD)}"
    with pytest.raises(ChecksumError, match=mismatch):
        read_verified(path, _sha(GOOD))


def _explode() -> None:
    raise RuntimeError("this pickle was loaded")


class _Bomb:
    """Unpickling it calls `_explode`."""

    def __reduce__(self):
        return _explode, ()


def test_load_pickle_verified_checks_before_unpickling(tmp_path):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(ChecksumError, match=_sha(path.read_bytes())):
        load_pickle_verified(path, _sha(b"something else"))
    with pytest.raises(RuntimeError, match="was loaded"):  # the guard above mattered
        load_pickle_verified(path, sha256_of(path))


def test_load_pickle_verified_returns_bytes_keys(tmp_path):
    path = tmp_path / "batch.pkl"
    path.write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    assert load_pickle_verified(path, sha256_of(path)) == {b"labels": [1, 2]}


# --- MNIST idx ---------------------------------------------------------------------------------

def _idx_gz(path: Path, array: np.ndarray, type_code: int, dtype: str) -> Path:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(dtype).tobytes()))
    return path


def test_read_idx_decodes_uint8_images_and_big_endian_ints(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    decoded = mnist.read_idx(_idx_gz(tmp_path / "i.gz", images, 0x08, ">u1"))
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, images)
    ints = np.array([-70000, 1, 300], dtype=np.int32)
    decoded = mnist.read_idx(_idx_gz(tmp_path / "j.gz", ints, 0x0C, ">i4"))
    assert decoded.dtype == np.int32 and np.array_equal(decoded, ints)


@pytest.mark.parametrize("mangle, reason", [
    (lambda raw: b"\x01" + raw[1:], "magic number"),
    (lambda raw: raw[:2] + b"\x07" + raw[3:], "type code"),
    (lambda raw: raw[:-1], "needs"),
    (lambda raw: raw + b"\x00", "needs"),
    (lambda raw: raw[:6], "bad header"),
])
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, mangle, reason):
    header = bytes([0, 0, 0x08, 2]) + np.array([2, 3], ">u4").tobytes()
    path = tmp_path / "broken-idx.gz"
    path.write_bytes(gzip.compress(mangle(header + bytes(6))))
    with pytest.raises(ValueError, match=reason) as err:
        mnist.read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_non_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="plain.gz"):
        mnist.read_idx(path)


# --- CIFAR-10 on a synthetic archive -------------------------------------------------------------

def _synthetic_cifar(path: Path, counts: dict[str, int]) -> dict[str, tuple]:
    """Writes an archive laid out like the official one; returns each batch's NHWC truth."""
    rng = np.random.default_rng(0)
    truth = {}
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, n in counts.items():
            images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            labels = rng.integers(0, 10, n)
            rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # R plane, G plane, B plane
            data = pickle.dumps({b"data": rows, b"labels": labels.tolist()}, protocol=2)
            info, data = _file_member(f"cifar-10-batches-py/{name}", data)
            tar.addfile(info, io.BytesIO(data))
            truth[name] = (images, labels.astype(np.uint8), rows)
    return truth


COUNTS = {**{name: 2 for name in cifar10.TRAIN_BATCHES}, cifar10.TEST_BATCH: 3}
COUNTS["data_batch_1"] = 5


def _patch_archive(monkeypatch, archive: Path) -> None:
    official = cifar10.ARCHIVE
    monkeypatch.setattr(cifar10, "ARCHIVE", RemoteFile(
        official.filename, sha256_of(archive), None, official.mirror_path))


def test_load_full_converts_rows_to_nhwc(tmp_path, monkeypatch):
    truth = _synthetic_cifar(tmp_path / "c.tar.gz", COUNTS)
    _patch_archive(monkeypatch, tmp_path / "c.tar.gz")
    train_images, train_labels, test_images, test_labels = cifar10.load_full(tmp_path / "c.tar.gz")
    assert train_images.shape == (13, 32, 32, 3) and train_images.dtype == np.uint8
    assert np.array_equal(train_images[:5], truth["data_batch_1"][0])
    assert np.array_equal(train_labels[5:7], truth["data_batch_2"][1])
    assert np.array_equal(test_images, truth["test_batch"][0])
    assert np.array_equal(test_labels, truth["test_batch"][1])
    rows = truth["test_batch"][2]  # pixel (row 0, col 1) and the green plane's first value
    assert test_images[0, 0, 1, 0] == rows[0, 1] and test_images[0, 0, 0, 1] == rows[0, 1024]
    assert _files_in(tmp_path) == ["c.tar.gz"]  # nothing is extracted to disk


def test_load_full_refuses_unverified_archive_before_unpickling(tmp_path):
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info, data = _file_member("cifar-10-batches-py/data_batch_1", pickle.dumps(_Bomb()))
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ChecksumError, match=cifar10.ARCHIVE.sha256):
        cifar10.load_full(archive)


class _Toucher:
    """Unpickling it creates the file ``marker``: proof that the pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _swap_after_hashing(monkeypatch, path: Path, replacement: Path) -> None:
    """Replaces ``path`` by ``replacement`` on disk the moment the fetch layer finishes a sha256:
    the window in which a reader that opens the file again would read other bytes."""
    real_sha256 = hashlib.sha256

    class SwappingSha256:
        def __init__(self):
            self.digest = real_sha256()

        def update(self, data):
            self.digest.update(data)

        def hexdigest(self):
            if replacement.exists():
                os.replace(replacement, path)
            return self.digest.hexdigest()

    monkeypatch.setattr(fetch_module, "hashlib",
                        types.SimpleNamespace(sha256=SwappingSha256, md5=hashlib.md5))


def test_load_full_never_unpickles_an_archive_swapped_after_its_check(tmp_path, monkeypatch):
    archive, marker = tmp_path / "c.tar.gz", tmp_path / "pickle-was-loaded"
    truth = _synthetic_cifar(archive, COUNTS)
    _patch_archive(monkeypatch, archive)
    crafted = tmp_path / "swap" / "c.tar.gz"  # same members, each a pickle that makes `marker`
    crafted.parent.mkdir()
    _write_tar(crafted, [_file_member(f"cifar-10-batches-py/{name}",
                                      pickle.dumps(_Toucher(marker))) for name in COUNTS])
    _swap_after_hashing(monkeypatch, archive, crafted)
    try:
        _, _, test_images, test_labels = cifar10.load_full(archive)
    finally:
        assert not marker.exists(), "a pickle from the swapped-in archive was loaded"
    assert not crafted.exists()  # the swap happened: the file on disk is now the crafted one
    assert np.array_equal(test_images, truth["test_batch"][0])  # decoded from the hashed bytes
    assert np.array_equal(test_labels, truth["test_batch"][1])
    pickle.loads(pickle.dumps(_Toucher(marker)))
    assert marker.exists()  # the crafted pickles do run code when loaded: the check mattered


def test_fetch_subset_cuts_the_archive_when_the_mirror_lacks_it(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "cifar10").mkdir(parents=True)
    archive = mirror / cifar10.ARCHIVE.mirror_path
    truth = _synthetic_cifar(archive, COUNTS)
    _patch_archive(monkeypatch, archive)
    images, labels, _ = truth["data_batch_1"]
    expected = io.BytesIO()
    np.savez_compressed(expected, x_train=images[:3], y_train=labels[:3])
    monkeypatch.setattr(cifar10, "N_SUBSET", 3)
    monkeypatch.setattr(cifar10, "SUBSET", RemoteFile(
        cifar10.SUBSET.filename, _sha(expected.getvalue()), None, cifar10.SUBSET.mirror_path))
    path = cifar10.fetch_subset(tmp_path / "raw", mirror)
    subset_images, subset_labels = cifar10.load_subset(path)
    assert np.array_equal(subset_images, images[:3]) and np.array_equal(subset_labels, labels[:3])
    assert cifar10.fetch_subset(tmp_path / "raw", mirror=None) == path  # cut once, then kept


# --- the real offline mirror -----------------------------------------------------------------

def _real_mirror() -> Path:
    env = os.environ.get("DPM_DATA_MIRROR")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data-mirror"
    if not root.is_dir():
        pytest.fail(f"no offline data mirror at {root}: set DPM_DATA_MIRROR (README, Data)")
    return root


def test_mirror_mnist_decodes_to_the_official_shapes(tmp_path):
    paths = mnist.fetch_all(tmp_path, _real_mirror())
    assert sorted(paths) == sorted(mnist.FILES)
    train_images, train_labels, test_images, test_labels = mnist.load(tmp_path)
    assert train_images.shape == (60000, 28, 28) and train_images.dtype == np.uint8
    assert test_images.shape == (10000, 28, 28) and test_images.dtype == np.uint8
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    assert train_labels[0] == 5 and test_labels[0] == 7  # the well-known first digits
    assert train_images.max() == 255 and set(np.unique(train_labels)) == set(range(10))


def test_mirror_cifar_subset_loads(tmp_path):
    images, labels = cifar10.load_subset(cifar10.fetch_subset(tmp_path, _real_mirror()))
    assert images.shape == (4000, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (4000,) and labels.dtype == np.uint8
    assert list(labels[:5]) == [6, 9, 9, 4, 1]  # data_batch_1 starts frog, truck, truck, deer, car


def test_mirror_stand_in_textures_decode_to_grey(tmp_path):
    images = textures.load_grey(textures.fetch_stand_in(tmp_path, _real_mirror()))
    assert len(images) == 3
    for image in images:
        assert image.ndim == 2 and image.dtype == np.uint8 and image.shape == (512, 512)
        assert image.std() > 10  # a photograph, not a blank


def test_the_texture_split_reads_only_its_photographs_not_leftovers(tmp_path):
    from dpm.base.registry import BarkData
    c = BarkData(source="stand_in", patch_size=32, stride=32, holdout_fraction=0.25, dequantisation="level")
    textures.fetch_stand_in(tmp_path, _real_mirror())
    clean = textures.make_split(c, tmp_path)
    # a temporary file left by an interrupted write (old style and new), and a stray image
    for name in (".brick.png.abc123.tmp.png", ".brick.png.abc123.tmp", "holiday.png"):
        (tmp_path / name).write_bytes((tmp_path / "grass.png").read_bytes())
    again = textures.make_split(c, tmp_path)
    assert np.array_equal(clean.train, again.train) and np.array_equal(clean.holdout, again.holdout)
    assert [p.name for p in textures.photograph_paths(c, tmp_path)] == ["brick.png", "grass.png", "gravel.png"]
    (tmp_path / "grass.png").unlink()
    with pytest.raises(FileNotFoundError, match="missing grass.png; rerun the fetch stage"):
        textures.make_split(c, tmp_path)


def test_mirror_bark_extracts_160_grey_images_or_says_where_to_put_the_zip(tmp_path, monkeypatch):
    mirror = _real_mirror()
    if not (mirror / textures.BARK.mirror_path).is_file():  # as on the team's machines today
        def offline(url, path):
            raise urllib.error.URLError("no network in this test")
        monkeypatch.setattr(fetch_module, "_download", offline)
        with pytest.raises(MissingDataError, match=re.escape(f"put a verified copy at {mirror / textures.BARK.mirror_path}")):
            textures.fetch_bark(tmp_path, mirror)
        return
    paths = textures.fetch_bark(tmp_path, mirror)
    assert [p.name for p in paths] == _bark_names(("T01", "T02", "T03", "T04"))
    images = textures.load_grey(paths[::40])
    assert all(image.shape == (480, 640) and image.std() > 10 for image in images)


# --- bark: T01-T05.zip -----------------------------------------------------------------------

def _bark_names(classes: tuple[str, ...]) -> list[str]:
    return [f"{c}_{i:02d}.jpg" for c in classes for i in range(1, 41)]


def _bark_zip(path: Path, folder: str = "{c}_bark", extra: tuple[str, ...] = (),
              skip: tuple[str, ...] = ()) -> Path:
    """A zip laid out like T01-T05.zip: a folder per class T01-T05, 40 JPEGs named T0c_nn.jpg
    each; every member's content is its own name. ``extra`` members are added, ``skip`` left out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for c in ("T01", "T02", "T03", "T04", "T05"):
            zf.writestr(folder.format(c=c) + "/", b"")
            for name in _bark_names((c,)):
                if name not in skip:
                    zf.writestr(f"{folder.format(c=c)}/{name}", name.encode())
        zf.writestr(f"{folder.format(c='T01')}/readme.txt", b"not an image")
        for name in extra:
            zf.writestr(name, name.encode())
    return path


def _bark_mirror(tmp_path: Path, monkeypatch, **zip_args) -> Path:
    """A mirror holding a synthetic T01-T05.zip that `BARK` (patched: md5, no URL) accepts."""
    mirror = tmp_path / "mirror"
    archive = _bark_zip(mirror / textures.BARK.mirror_path, **zip_args)
    patched = dataclasses.replace(textures.BARK, md5=_md5(archive.read_bytes()), url=None)
    monkeypatch.setattr(textures, "BARK", patched)
    return mirror


@pytest.mark.parametrize("folder", ["{c}", "{c}_bark", "T01-T05/{c}_bark"])
def test_fetch_bark_extracts_only_t01_to_t04_flat_and_removes_the_zip(tmp_path, monkeypatch,
                                                                      folder):
    mirror, raw = _bark_mirror(tmp_path, monkeypatch, folder=folder), tmp_path / "raw"
    paths = textures.fetch_bark(raw, mirror)
    expected = _bark_names(textures.BARK_CLASSES)
    assert [p.name for p in paths] == expected and paths[0] == raw.resolve() / "T01_01.jpg"
    assert _files_in(raw) == expected  # no T05, no readme, no zip, no temporary files
    assert all(p.read_bytes() == p.name.encode() for p in paths)


def test_fetch_bark_refuses_a_member_escaping_and_writes_nothing(tmp_path, monkeypatch):
    mirror = _bark_mirror(tmp_path, monkeypatch, extra=("../evil.jpg",))
    raw = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil\.jpg': its path contains '\.\.'"):
        textures.fetch_bark(raw, mirror)
    assert not (tmp_path / "evil.jpg").exists()
    assert _files_in(raw) == ["T01-T05.zip"]  # the verified zip is kept; no image extracted


@pytest.mark.parametrize("name, reason", [
    ("T01/../../evil.jpg", "contains '..'"),
    ("/tmp/T01_evil.jpg", "absolute path"),
    ("C:\\T01\\T01_99.jpg", "absolute path"),
    ("T02_bark\\..\\..\\evil.jpg", "contains '..'"),
])
def test_extract_bark_refuses_unsafe_names(tmp_path, name, reason):
    archive = _bark_zip(tmp_path / "a.zip", extra=(name,))
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        textures.extract_bark(archive, tmp_path / "raw")
    assert repr(name) in str(err.value)
    assert _files_in(tmp_path / "raw") == [] and _files_in(tmp_path) == ["a.zip", "raw"]


def test_extract_bark_refuses_a_symlink_member(tmp_path):
    archive = _bark_zip(tmp_path / "a.zip", skip=("T01_01.jpg",))
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo("T01_bark/T01_01.jpg")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="'T01_bark/T01_01.jpg': it is a symbolic link"):
        textures.extract_bark(archive, tmp_path / "raw")
    assert _files_in(tmp_path / "raw") == []


def test_extract_bark_counts_the_images_of_each_class(tmp_path):
    archive = _bark_zip(tmp_path / "a.zip", skip=("T03_07.jpg",))
    with pytest.raises(ValueError, match="T01: 40, T02: 40, T03: 39, T04: 40"):
        textures.extract_bark(archive, tmp_path / "raw")
    assert _files_in(tmp_path / "raw") == []


def test_fetch_bark_md5_mismatch_names_file_and_both_md5s(tmp_path, monkeypatch):
    mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    archive = _bark_zip(mirror / textures.BARK.mirror_path)
    with pytest.raises(ChecksumError) as err:
        textures.fetch_bark(raw, mirror)
    message = str(err.value)
    assert str(archive) in message
    assert f"expected md5 {textures.BARK.md5}" in message
    assert f"got md5 {_md5(archive.read_bytes())}" in message
    assert _files_in(raw) == []


def test_bark_records_the_published_md5():
    assert textures.BARK.checksum == ("md5", "e622e4708e336d51b3bbd45503618af1")
    assert textures.BARK.mirror_path == "textures/T01-T05.zip"


def test_missing_bark_zip_says_what_to_get_and_where(tmp_path, monkeypatch):
    def offline(url, path):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fetch_module, "_download", offline)
    raw = tmp_path / "raw"
    with pytest.raises(MissingDataError) as err:
        textures.fetch_bark(raw, mirror=None)
    message = str(err.value)
    assert "T01-T05.zip" in message and textures.BARK.url in message
    assert "md5: e622e4708e336d51b3bbd45503618af1" in message
    assert "$DPM_DATA_MIRROR/textures/T01-T05.zip" in message
    assert str(raw / "T01-T05.zip") in message
    assert _files_in(raw) == []
