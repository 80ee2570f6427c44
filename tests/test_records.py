"""The aggregating stages read one record per dataset from a folder, in Table 1's order."""

import json

import pytest

from dpm.base import registry
from dpm.base import stages
from pipeline import records


def test_a_folders_records_come_in_the_registrys_order_and_other_files_are_not_read(tmp_path):
    for name in reversed(registry.NAMES):
        (tmp_path / f"{name}.json").write_text(json.dumps({"dataset": name}))
    (tmp_path / "parzen_mnist.json").write_text("not json")  # another stage's file in the same folder
    assert [r["dataset"] for r in records.read(tmp_path)] == list(registry.NAMES)
    assert records.paths(tmp_path, ".csv", every=False) == []


def test_a_missing_record_is_an_error_naming_it_unless_only_some_datasets_have_one(tmp_path):
    (tmp_path / "heartbeat.json").write_text(json.dumps({"dataset": "heartbeat"}))
    with pytest.raises(stages.StageError, match=r"missing .*swiss_roll\.json, .*bark\.json"):
        records.paths(tmp_path)
    assert records.paths(tmp_path, every=False) == [tmp_path / "heartbeat.json"]
