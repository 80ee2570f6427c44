"""Table 1: each estimate beside the true log-likelihood of the examples it was computed on, every
number to its standard error's precision (pipeline.rounding, shared with the seed table)."""

import csv
import io
import json

import pytest

from dpm.base import registry
from dpm.base import stages
from pipeline import rounding, table1


def metrics(dataset, label, unit, k, k_se, gain, gain_se, l_null, true=None):
    record = {"dataset": dataset, "label": label, "profile": "quick", "unit": unit, "K": k, "K_se": k_se,
              "K_minus_L_null": gain, "K_minus_L_null_se": gain_se, "L_null": l_null, "K_over_t": "exact", "T": 40,
              "beta_1": 1e-06, "parameterisation": "x0", "n_holdout": 10000, "n_parameters": 21063,
              "train_seconds": 163.921, "train_device": "CPU x86_64 (1 thread)", "git_commit": "a927082755be"}
    return record if true is None else {**record, "true_log_likelihood": true}


ROLL = metrics("swiss_roll", "swiss roll", "bits", 1.83659943667841, 0.012095, 5.918286151468356, 0.0119219,
               -4.0816867179200305, true=2.5683719604831405)
HEART = metrics("heartbeat", "heartbeat", "bits/seq", -2.4406, 0.001808, 11.99812, 0.001808, -14.43872,
                true=-2.3219280948873626)
BARK = metrics("bark", "texture stand-in", "bits/pixel", -0.00022, 0.09311, 2.0876, 0.0793, -2.0878)
ROLL_SUBSET = {"dataset": "swiss_roll", "K": 1.893031928922275, "K_se": 0.09675647,
               "L_1": 1.8747815, "L_1_se": 0.0741635,
               "L_10": 2.2982973, "L_10_se": 0.0670420, "L_100": 2.3724727, "L_100_se": 0.0662621, "L_1000": 2.3917416,
               "L_1000_se": 0.0673152, "true_log_likelihood": 2.525989774943207, "n_examples": 200}
ROLL_LIMIT = {"dataset": "swiss_roll", "K_limit_T": 2.0134176, "K_limit_T_se": 0.0564078,
              "true_log_likelihood": 2.547084889177172, "n_examples": 2000}
HEART_LIMIT = {"dataset": "heartbeat", "K_limit_T": -2.3723509, "K_limit_T_se": 0.0035238,
               "true_log_likelihood": -2.3219280948873626}  # over the data's distribution: no examples


@pytest.fixture
def frame():
    return table1.table([ROLL, HEART, BARK], [ROLL_SUBSET], [ROLL_LIMIT, HEART_LIMIT])


def test_the_stage_reads_each_datasets_record_from_its_folder_in_table_1s_order(tmp_path):
    """One row per dataset of the registry, whatever the folders hold besides; a missing record is
    an error naming it; the limit stages' folder holds the toys' alone."""
    metrics_dir, limits_dir = tmp_path / "metrics", tmp_path / "limit"
    metrics_dir.mkdir()
    limits_dir.mkdir()
    for name in reversed(registry.NAMES):
        (metrics_dir / f"{name}.json").write_text(json.dumps({**BARK, "dataset": name}))
    (metrics_dir / "parzen_mnist.json").write_text("{}")  # another stage's record: not read
    (limits_dir / "heartbeat.json").write_text(json.dumps(HEART_LIMIT))
    argv = [str(tmp_path / "table1.csv"), str(tmp_path / "table1.md"), "--metrics", str(metrics_dir),
            "--limits", str(limits_dir)]
    table1.main(argv)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table1.csv").read_text())))
    assert [row["dataset"] for row in rows] == list(registry.NAMES)
    assert [row["dataset"] for row in rows if row["K_limit_T"]] == ["heartbeat"]
    (metrics_dir / "mnist.json").unlink()
    with pytest.raises(stages.StageError, match="missing .*metrics/mnist.json"):
        table1.main(argv)


def test_a_dataset_the_paper_does_not_have_gets_a_row_with_the_papers_columns_empty():
    added = {**BARK, "dataset": "new_textures", "label": "new textures"}
    frame = table1.table([ROLL, added], [], [])
    row = frame.set_index("dataset").loc["new_textures"]
    assert row["K"] == BARK["K"] and row[["paper_K", "paper_K_minus_L_null"]].isna().all()
    assert "new textures" in table1.markdown(frame, [])


def test_each_subset_has_its_own_true_log_likelihood_beside_its_estimates(frame):
    roll = frame.set_index("dataset").loc["swiss_roll"]
    assert roll["true_log_likelihood"] == ROLL["true_log_likelihood"]  # the whole holdout, beside K
    assert (roll["n_subset"], roll["K_subset"], roll["true_log_likelihood_subset"]) == (
        200, ROLL_SUBSET["K"], ROLL_SUBSET["true_log_likelihood"])  # L_k's 200 examples
    assert (roll["n_limit"], roll["true_log_likelihood_limit"]) == (2000, ROLL_LIMIT["true_log_likelihood"])
    columns = list(frame.columns)
    assert columns.index("true_log_likelihood_subset") == columns.index("L_1000_se") + 1
    assert columns[columns.index("n_limit"):] == ["n_limit", "K_limit_T", "K_limit_T_se", "true_log_likelihood_limit"]


def test_numbers_are_printed_to_their_errors_precision_and_the_papers_as_given(frame):
    rows = {row["dataset"]: row for row in csv.DictReader(io.StringIO(table1.formatted(frame).to_csv(index=False)))}
    roll, heart, bark = rows["swiss_roll"], rows["heartbeat"], rows["bark"]
    assert (roll["K"], roll["K_se"], roll["K_minus_L_null"], roll["L_null"]) == ("1.837", "0.012", "5.918", "-4.082")
    assert (roll["true_log_likelihood"], roll["true_log_likelihood_subset"], roll["true_log_likelihood_limit"]) == (
        "2.568", "2.526", "2.547")  # exact values: the decimals of the estimate beside them
    assert (roll["L_1000"], roll["L_1000_se"], roll["K_limit_T"]) == ("2.392", "0.067", "2.013")
    assert (heart["K_minus_L_null"], heart["paper_K_minus_L_null"], heart["paper_K"]) == ("11.9981", "12.024", "-2.414")
    assert heart["n_limit"] == "" and heart["true_log_likelihood_limit"] == "-2.3219"
    assert (bark["K"], bark["K_se"], bark["true_log_likelihood"], bark["n_subset"]) == ("-0.000", "0.093", "", "")
    assert (roll["T"], roll["n_holdout"], roll["beta_1"]) == ("40", "10000", "1e-06")
    assert "train_seconds" not in roll and "git_commit" not in roll  # results/provenance/: no stage reads them


def test_the_markdown_shows_each_estimate_with_its_error_and_no_missing_marks(frame):
    page = table1.markdown(frame, ["![figure1](figure1.png)"])
    assert "| 11.9981 ± 0.0018 " in page and "| 12.024 " in page and "| 2.392 ± 0.067 " in page
    assert "| the distribution " in page  # the heartbeat's K_limit_T
    assert "nan" not in page and "None" not in page and page.endswith("![figure1](figure1.png)\n")


def test_an_estimate_rounds_to_its_errors_second_significant_digit():
    assert [rounding.decimals(e) for e in (0.067, 0.012, 0.0018, 0.22, 1.5, 23.0)] == [3, 3, 4, 2, 1, 0]
    assert rounding.pm(12.00341, 0.0015) == "12.0034 ± 0.0015" and rounding.pm(2.35, None) == "2.35"
    assert rounding.fixed(12.024) == "12.024" and rounding.fixed(40) == "40" and rounding.fixed(None) == ""
