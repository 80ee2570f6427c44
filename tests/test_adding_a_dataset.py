"""README, "Adding a dataset", followed to the letter in a copy of the built smoke project."""

import csv
import sys

import pytest
import yaml

from tests.smoke import copy_built, run, tool

pytestmark = pytest.mark.pipeline  # minutes: `pytest -m "not pipeline"` leaves it out


GAUSS = '''"""A 2-D Gaussian: the test's dataset added as the README says."""

import numpy as np

from dpm.data.scaling import Scaling
from dpm.data.split import DataInfo, Split


def make_split(c, raw_dir=None) -> Split:
    rng = np.random.default_rng(c.seed)
    raw_train, raw_holdout = (rng.standard_normal((n, 2)) for n in (c.n_train, c.n_holdout))
    scaling = Scaling.fit(raw_train)
    true_ll = -0.5 * (raw_holdout ** 2).sum(1) - np.log(2 * np.pi) + scaling.log_abs_det_jacobian_nats(2)
    info = DataInfo(label="gauss", unit="bits", n_dims=2, scaling=scaling)
    return Split(scaling.apply(raw_train).astype(np.float32), scaling.apply(raw_holdout).astype(np.float32),
                 info, true_ll)
'''


def test_a_dataset_added_as_the_readme_says_reaches_table_1(smoke_build, tmp_path):
    """The README's four files (the dataset's module, its registry entry, its sections in
    conf/config.yaml and the smoke profile), then `python -m workflow.params`: the dataset's
    stages exist, Table 1 gains its row, with the paper's columns empty, and neither spec was
    edited."""
    added = tmp_path / "added"
    copy_built(smoke_build, added)
    specs = {name: (added / name).read_text() for name in ("dvc.yaml", "studies/dvc.yaml")}
    (added / "dpm/datasets/gauss.py").write_text(GAUSS)
    registry_py = added / "dpm/base/registry.py"
    entry = '    Dataset("mnist", MnistConfig, "dpm.datasets.mnist", fetched=True, model="image"),\n'
    assert entry in registry_py.read_text()
    registry_py.write_text(registry_py.read_text().replace(
        entry, entry + '    Dataset("gauss", SwissRollConfig, "dpm.datasets.gauss", fetched=False, model="rbf"),\n'))
    for conf in ("conf/config.yaml", "conf/profile/smoke.yaml"):
        roll = yaml.safe_load((added / conf).read_text())["swiss_roll"]
        with open(added / conf, "a") as f:
            f.write(yaml.safe_dump({"gauss": roll}))
    run(added, sys.executable, "-m", "workflow.params", "profile=smoke")
    lists = yaml.safe_load((added / "datasets.yaml").read_text())
    assert "gauss" in lists["generated"] and "gauss" not in lists["limits"]  # its module gives no truth to reach
    # the new dataset's stages exist with no spec edit; the others, stale only because the registry
    # (a dep of every stage) changed, are not rerun here (a user's `dvc repro` reruns them all)
    stages = ["check_params", *(f"{stage}@gauss" for stage in ("data", "train", "evaluate", "likelihood")), "table1"]
    run(added, tool("dvc"), "repro", "--single-item", *stages)
    rows = {row["dataset"]: row for row in csv.DictReader(open(added / "results/table1.csv"))}
    assert list(rows)[-1] == "gauss" and rows["gauss"]["K"] and not rows["gauss"]["paper_K"]
    assert {name: (added / name).read_text() for name in specs} == specs
