"""dpm/data/split.py: a split's arrays are read as plain arrays only; a file that cannot be read
that way is refused in one line naming it."""

import subprocess
import sys

import numpy as np
import pytest

from dpm.data.split import read_arrays
from tests.test_train import make_project, stage_args


def test_an_npz_holding_python_objects_is_refused_naming_the_file_and_nothing_is_unpickled(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, train=np.array([{"a": 1}], dtype=object), holdout=np.zeros(2))
    with pytest.raises(ValueError, match=rf"^{path}: holds an array of Python objects, which only unpickling could "
                                         r"read \(and so could run code\): refused"):
        read_arrays(path, ("train", "holdout"))
    with pytest.raises(ValueError, match=rf"^{path}: no array 'test' in it"):
        read_arrays(path, ("holdout", "test"))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'bad.npz'}: not an npz file this library can read"):
        read_arrays(tmp_path / "bad.npz", ("train",))


@pytest.mark.pipeline
def test_a_stage_given_such_data_stops_in_one_line_naming_the_file(tmp_path):
    folder = make_project(tmp_path, 10)
    data = folder / "data/swiss_roll/data.npz"
    with np.load(data) as arrays:
        parts = dict(arrays)
    np.savez(data, **{**parts, "train": np.array([object()] * 4, dtype=object)})
    result = subprocess.run([sys.executable, "-m", "pipeline.train", *stage_args("swiss_roll")], cwd=folder,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: data/swiss_roll/data.npz: holds an array of Python objects")
