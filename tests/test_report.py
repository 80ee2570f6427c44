"""pipeline/report.py: every number of the report comes from the results files, with the profile and
hardware they record; a study never run is a sentence, not an error."""

import json

import pandas as pd

from pipeline import report

DEVICE = "GPU test-card (1 thread)"


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def metrics(k=1.837, dataset="swiss_roll"):
    return {"dataset": dataset, "label": "swiss roll", "profile": "smoke", "unit": "bits", "K": k, "K_se": 0.0121,
            "K_uniform_t": 1.838, "K_uniform_t_se": 0.094, "K_minus_L_null": k + 4.082, "K_minus_L_null_se": 0.0121,
            "true_log_likelihood": 2.568, "T": 40, "n_iterations": 8000, "train_seconds": 163.9,
            "train_device": DEVICE, "device": DEVICE}


def main_tree(tmp_path, k=1.837):
    """A results tree as the main pipeline writes it, one dataset; the command line of stage report."""
    res = tmp_path / "results"
    write_json(res / "metrics/evaluate/swiss_roll.json", metrics(k))
    write_json(res / "metrics/evaluate/heartbeat.json", {**metrics(-2.441, "heartbeat"), "label": "heartbeat"})
    write_json(res / "metrics/likelihood/swiss_roll.json", {
        "dataset": "swiss_roll", "label": "swiss roll", "profile": "smoke", "unit": "bits", "ks": [1, 10],
        "K": 1.893, "K_se": 0.0968, "L_10_minus_K": 0.4053, "L_10_minus_K_se": 0.0605, "n_examples": 200,
        "true_log_likelihood": 2.526, "device": DEVICE})
    write_json(res / "metrics/limit/swiss_roll.json", {
        "dataset": "swiss_roll", "profile": "smoke", "K_limit_T": 2.0134, "K_limit_T_se": 0.0564,
        "true_minus_K_limit_T": 0.5337, "true_minus_K_limit_T_se": 0.0538, "device": DEVICE})
    write_json(res / "kl_per_t/mnist.json", {
        "dataset": "mnist", "label": "MNIST", "profile": "smoke", "K": 1.482, "n_examples": 16, "device": DEVICE,
        "importance_t": {"largest_weight_max": 4.63, "largest_weight_median": 2.9, "relative_sd_median": 0.41}})
    pd.DataFrame([{"dataset": "swiss_roll", "paper_K": 2.35, "paper_K_minus_L_null": 6.45},
                  {"dataset": "heartbeat", "paper_K": -2.414, "paper_K_minus_L_null": 12.024}]).to_csv(
        res / "table1.csv", index=False)
    pd.DataFrame([{"dataset": "mnist", "model": "Diffusion", "paper_bits": 317.0, "paper_bits_se": 2.7,
                   "bits": 199.61, "bits_se": 2.022, "nats": 138.36, "nats_se": 1.4016, "sigma": 0.2154,
                   "n_centres": 10000, "profile": "smoke"}]).to_csv(res / "table2.csv", index=False)
    write_json(res / "metrics/parzen_mnist.json", {
        "profile": "smoke", "device": DEVICE,
        "sampling": {"n_samples": 10000, "T": 1000, "n_shards": 2, "seconds": 1881.8, "device": DEVICE}})
    return [str(res / "REPORT.md"), "--table1", str(res / "table1.csv"), "--metrics", str(res / "metrics/evaluate"),
            "--likelihood", str(res / "metrics/likelihood"), "--limits", str(res / "metrics/limit"),
            "--kl-per-t", str(res / "kl_per_t"), "--table2", str(res / "table2.csv"),
            "--parzen", str(res / "metrics/parzen_mnist.json"), "--figures", str(res / "figure1.png"),
            "--curves", str(res / "curves"), "--studies-report", str(res / "REPORT_studies.md"),
            "--bench", str(res / "bench")]


def study_tree(tmp_path):
    """The studies' outputs; the command line of stage study_report."""
    res = tmp_path / "results"
    res.mkdir()
    base = {"ablation": "swiss-roll β_1", "dataset": "swiss_roll", "n_iterations": 3000, "K_se": 0.012,
            "K_minus_L_null_se": 0.012, "K_uniform_t": 1.5, "K_uniform_t_se": 0.11, "unit": "bits",
            "profile": "smoke"}
    pd.DataFrame([{**base, "variant": "swiss_roll_base", "baseline": True, "changes": "baseline", "K": 1.539,
                   "K_minus_L_null": 5.621},
                  {**base, "variant": "swiss_roll_beta1_1e_5", "baseline": False, "changes": "diffusion.beta_1 = 1e-05",
                   "K": 1.289, "K_minus_L_null": 5.371}]).to_csv(res / "ablations.csv", index=False)
    write_json(res / "ablations/swiss_roll_base.json", {"variant": "swiss_roll_base", "device": DEVICE})
    write_json(res / "seeds/swiss_roll.json", {"dataset": "swiss_roll", "device": DEVICE})
    pd.DataFrame([{"dataset": "swiss_roll", "data": "swiss roll", "profile": "smoke", "unit": "bits", "n_seeds": 2,
                   "seed_0": 0, "K_0": 1.8366, "K_0_se": 0.0121, "seed_1": 1, "K_1": 1.8259, "K_1_se": 0.0124,
                   "K_sd": 0.00757}]).to_csv(res / "table1_seeds.csv", index=False)
    row = {"model": "diffusion", "n_iterations": 1000, "n_centres": 2000, "sigma": 0.2154, "nats_se": 1.62,
           "profile": "smoke"}
    pd.DataFrame([{**row, "row": "1000 iterations, final step sampled", "final_step": "sampled", "nats": 57.89},
                  {**row, "row": "1000 iterations, final step mean", "final_step": "mean", "nats": 58.01},
                  {**row, "row": "Table 2", "final_step": "sampled", "n_centres": 10000, "nats": 138.4}]).to_csv(
        res / "parzen_study.csv", index=False)
    return [str(res / "REPORT_studies.md"), "--seeds", str(res / "table1_seeds.csv"),
            "--seed-runs", str(res / "seeds"), "--ablations", str(res / "ablations.csv"),
            "--ablation-runs", str(res / "ablations"), "--parzen-study", str(res / "parzen_study.csv")]


def test_the_reports_numbers_are_the_files_and_follow_them(tmp_path):
    argv = main_tree(tmp_path)
    report.main(argv)
    text = (tmp_path / "results/REPORT.md").read_text()
    for number in ("1.837 ± 0.012", "1.838 ± 0.094", "2.35", "92%", "0.405 ± 0.060", "2.013 ± 0.056", "4.6",
                   "199.6 ± 2.0", "1882 s"):
        assert number in text, number
    assert f"profile smoke on {DEVICE}" in text
    assert text.index("| swiss roll") < text.index("| heartbeat")  # Table 1's order, not the files'
    assert "[table1.md](table1.md)" in text and "![figure1](figure1.png)" in text
    assert "`curves/<dataset>.png`" in text
    assert "[REPORT_studies.md](REPORT_studies.md)" in text and "[bench](bench)" in text

    assert "training s" in text  # a timing the record holds; records that hold none leave the column out

    main_tree(tmp_path, k=2.5)  # the file changes: so does the report
    report.main(argv)
    text = (tmp_path / "results/REPORT.md").read_text()
    assert "2.500 ± 0.012" in text and "1.837" not in text


def test_the_studies_report_reads_the_studies_outputs(tmp_path):
    report.main(study_tree(tmp_path))
    text = (tmp_path / "results/REPORT_studies.md").read_text()
    assert "1.837 / 1.826" in text and "0.0076" in text  # the seeds' K and their sd
    assert "-0.250" in text and f"smoke, {DEVICE}" in text  # the variant against its baseline, where it ran
    assert "no row by more than 0.12 nats" in text  # the mean against the sample, at the same number of centres


def test_a_study_never_run_is_a_sentence_not_an_error(tmp_path):
    argv = study_tree(tmp_path)
    (tmp_path / "results/ablations.csv").unlink()
    (tmp_path / "results/parzen_study.csv").unlink()
    report.main(argv)
    text = (tmp_path / "results/REPORT_studies.md").read_text()
    assert text.count("Not run:") == 2 and "ablations.csv` is absent" in text and "## Seed spread" in text


def test_records_without_timings_leave_them_out(tmp_path):
    """The stages now keep their timings in results/provenance/, which no stage reads: a record
    without them gives a report without them."""
    argv = main_tree(tmp_path)
    res = tmp_path / "results"
    for name in ("swiss_roll", "heartbeat"):
        record = json.loads((res / f"metrics/evaluate/{name}.json").read_text())
        del record["train_seconds"]
        write_json(res / f"metrics/evaluate/{name}.json", record)
    parzen = json.loads((res / "metrics/parzen_mnist.json").read_text())
    del parzen["sampling"]["seconds"]
    write_json(res / "metrics/parzen_mnist.json", parzen)
    report.main(argv)
    text = (tmp_path / "results/REPORT.md").read_text()
    assert "training s" not in text and "1882" not in text and "2 shards, sampling on" in text

    (res / "table2.csv").unlink()  # run by hand before Table 2 was made
    report.main(argv)
    assert "table2.csv` is absent" in (tmp_path / "results/REPORT.md").read_text()
