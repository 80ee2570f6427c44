"""The studies of studies/dvc.yaml (issue 13 items 5 and 7): the final reverse step's mean
(dpm.chain.sampling.final_step), their params, the seed table, and both studies end to end at the smoke
profile through DVC."""

import functools
import json
import math
import re

import pandas as pd
import pytest
import torch

from dpm.base import config as cfg, registry
from dpm.estimate import parzen
from dpm.chain import sampling
from dpm.core import seeds
from dpm import studies as study_sections
from dpm.data import split as splits
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.model import DiffusionModel, read_model_file
from dpm.core.schedules import FixedSchedule
from workflow import dvc_bridge
from pipeline import rounding, seed_table, train as train_stage
from pipeline.parzen import gather
from tests.smoke import copy_built, run, tool


class TanhNet(torch.nn.Module):
    """Fixed coefficients that depend on x_t and t: a reverse step unlike the forward kernel."""

    def forward(self, x, t):
        return 0.5 * torch.tanh(x + t[:, None] / 10.0), 0.3 * torch.sin(x)


def tanh_model(n_steps=8, beta_1=0.01):
    return DiffusionModel(FixedSchedule(n_steps, beta_1), TanhNet(),
                          functools.partial(GaussianDiffusion, parameterisation="kernel"))


def protocol_sample(model, shape, generator):
    """The reverse chain as dpm/chain/sampling.py drew it before the final-step switch (the protocol)."""
    process = model.process()
    x = process.prior_sample(shape, generator, "cpu")
    for t in range(process.n_steps, 1, -1):
        t_batch = torch.full(shape[:1], t, dtype=torch.long)
        x = process.p_sample(model.reverse(process, x, t_batch), process.noise_like(x, generator))
    return process.q_step(x, torch.ones(shape[:1], dtype=torch.long), process.noise_like(x, generator))


def test_the_default_final_step_is_the_protocol_bit_for_bit():
    model = tanh_model()
    expected = protocol_sample(model, (50, 3), torch.Generator().manual_seed(7))
    assert torch.equal(sampling.sample(model, (50, 3), torch.Generator().manual_seed(7)), expected)
    generator = torch.Generator().manual_seed(seeds.mixed_seed(4, 0))
    assert torch.equal(sampling.sample_batch(model, 0, 50, 50, 3, seed=4),
                       protocol_sample(model, (50, 3), generator))


def test_the_final_mean_is_the_forward_kernels_mean_at_the_same_x1():
    """With the mean, x_0 = √(1−β_1) x_1 exactly, x_1 being the sampled chain's; the sampled x_0
    differs from it by N(0, β_1 I) noise (Monte Carlo: mean 0, variance β_1)."""
    beta_1 = 0.01
    model = tanh_model(beta_1=beta_1)
    trajectory = dict(sampling.reverse_trajectory(model, (20000, 2), torch.Generator().manual_seed(3)))
    mean = sampling.sample(model, (20000, 2), torch.Generator().manual_seed(3), final_mean=True)
    assert torch.allclose(mean, math.sqrt(1 - beta_1) * trajectory[1], rtol=0, atol=1e-7)
    residual = ((trajectory[0] - mean) / math.sqrt(beta_1)).double()
    assert abs(residual.mean().item()) < 4 / math.sqrt(residual.numel())
    assert abs(residual.var().item() - 1) < 4 * math.sqrt(2 / residual.numel())
    batch = sampling.sample_batch(model, 1, 30, 20, 2, seed=5, final_mean=True)
    x1 = dict(sampling.reverse_trajectory(model, (10, 2), torch.Generator().manual_seed(seeds.mixed_seed(5, 1))))[1]
    assert torch.allclose(batch, math.sqrt(1 - beta_1) * x1, rtol=0, atol=1e-7)


def test_the_final_mean_needs_gaussian_diffusion():
    process = BinomialDiffusion(torch.full((5,), 0.1), p_pi=0.5)
    x1 = torch.ones(4, 3)
    assert set(sampling.final_step(process, x1, torch.Generator().manual_seed(0)).unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="needs Gaussian diffusion, not BinomialDiffusion"):
        sampling.final_step(process, x1, mean=True)


@pytest.mark.parametrize("key, value, message", [
    ("seed_spread.seed_offsets", [1, 1], "seed_spread.seed_offsets: repeats an offset"),
    ("seed_spread.seed_offsets", [], "seed_spread.seed_offsets: expected a non-empty list"),
    ("seed_spread.seed_offsets", 1, "seed_spread.seed_offsets: expected a non-empty list"),
    ("seed_spread.seed_offsets", [0, 1], r"seed_spread.seed_offsets\[0\]: expected a value >= 1"),
    ("parzen_study.n_iterations", [2000, 1000], "parzen_study.n_iterations: expected increasing lengths"),
    ("parzen_study.n_iterations", [1000, True], r"parzen_study.n_iterations\[1\]: expected an integer"),
    ("parzen_study.n_samples", 0, "parzen_study.n_samples: expected a value >= 1"),
])
def test_the_studies_params_are_validated(key, value, message):
    raw = cfg.read("params.yaml", {key: value})
    with pytest.raises(cfg.ConfigError, match=message):
        study_sections.of(raw, cfg.build_config(raw))


def test_the_studies_params_of_each_profile():
    quick, smoke = cfg.load_profile("quick"), cfg.load_profile("smoke")
    quick_studies = study_sections.of(cfg.compose(["profile=quick"]), quick)
    smoke_studies = study_sections.of(cfg.compose(["profile=smoke"]), smoke)
    assert quick_studies.seed_spread.seed_offsets == (1, 2) and quick_studies.parzen_study.n_iterations == (1000, 2000)
    assert quick_studies.parzen_study.n_samples < quick.mnist.parzen.n_samples
    assert smoke_studies.parzen_study.n_samples <= smoke.mnist.parzen.n_samples
    assert max(smoke_studies.parzen_study.n_iterations) < smoke.mnist.train.n_iterations


def seed_record(dataset, k_values, gains, profile="quick"):
    main = {"dataset": dataset, "label": dataset, "profile": profile, "unit": "bits", "K": k_values[0],
            "K_se": 0.01, "K_minus_L_null": gains[0]}
    spread = {"dataset": dataset, "profile": profile, "main_seed": 0,
              "seeds": [{"seed": i + 1, "K": k, "K_se": 0.02, "K_minus_L_null": g}
                        for i, (k, g) in enumerate(zip(k_values[1:], gains[1:]))]}
    return main, spread


def test_the_seed_table_gives_each_seed_and_the_mean_and_sd_over_all():
    a, b = seed_record("swiss_roll", [1.0, 2.0, 4.0], [0.5, 0.5, 0.5]), seed_record("mnist", [3.0, 3.0], [1.0, 2.0])
    frame = seed_table.table([a[0], b[0]], [b[1], a[1]])
    roll, mnist = frame.iloc[0], frame.iloc[1]
    assert list(frame["dataset"]) == ["swiss_roll", "mnist"]
    assert (roll["seed_0"], roll["K_0"], roll["seed_2"], roll["K_2"], roll["K_2_se"]) == (0, 1.0, 2, 4.0, 0.02)
    assert roll["K_mean"] == pytest.approx(7 / 3) and roll["K_sd"] == pytest.approx(math.sqrt(7 / 3))
    assert roll["K_minus_L_null_sd"] == 0 and mnist["K_sd"] == 0
    assert mnist["K_minus_L_null_sd"] == pytest.approx(math.sqrt(0.5)) and mnist["n_seeds"] == 2
    page = seed_table.markdown(frame)
    assert re.search(r"\| 2\.3 ± 1\.5 +\|", page) and re.search(r"\| 4\.000 ± 0\.020 \(2\) +\|", page)
    assert re.search(r"\| 3\.000 ± 0\.020 \(1\) +\| +\| 3\.0000 ± 0\.0000 +\|", page)  # mnist: 2 seeds
    assert "retrained 2" in page and "seed 2 " not in page  # columns by run, the seed in brackets
    assert rounding.pm(12.00341, 0.0015) == "12.0034 ± 0.0015" and rounding.pm(-0.00022, 0.093) == "-0.000 ± 0.093"
    with pytest.raises(Exception, match=r"no seed_spread results for \['mnist'\]"):
        seed_table.table([a[0], b[0]], [a[1]])
    with pytest.raises(Exception, match="main row of profile quick, seeds of smoke"):
        seed_table.table([a[0]], [seed_record("swiss_roll", [1.0, 2.0], [0.5, 0.5], profile="smoke")[1]])


def test_the_seed_table_reads_every_datasets_records_from_two_folders_in_table_1s_order(tmp_path):
    main_dir, seeds_dir = tmp_path / "metrics", tmp_path / "seeds"
    main_dir.mkdir()
    seeds_dir.mkdir()
    for name in reversed(registry.NAMES):
        main, spread = seed_record(name, [1.0, 2.0], [0.5, 0.5])
        (main_dir / f"{name}.json").write_text(json.dumps(main))
        (seeds_dir / f"{name}.json").write_text(json.dumps(spread))
    seed_table.main([str(tmp_path / "seeds.csv"), str(tmp_path / "seeds.md"), "--main", str(main_dir),
                     "--seeds", str(seeds_dir)])
    assert list(pd.read_csv(tmp_path / "seeds.csv")["dataset"]) == list(registry.NAMES)


@pytest.fixture(scope="module")
def studies(smoke_build, tmp_path_factory):
    """A copy of the session's smoke build (the main pipeline and the ablation study, by Snakemake)
    with both studies run by DVC."""
    folder = copy_built(smoke_build, tmp_path_factory.mktemp("studies"))
    run(folder, tool("dvc"), "repro", "studies/dvc.yaml")
    return folder


@pytest.mark.pipeline
def test_both_studies_run_end_to_end_at_smoke(studies):
    seeds = pd.read_csv(studies / "results/table1_seeds.csv")
    assert list(seeds["dataset"]) == ["swiss_roll", "heartbeat", "bark", "dead_leaves", "cifar10", "mnist"]
    assert (seeds["n_seeds"] == 2).all() and (seeds["profile"] == "smoke").all()
    for _, row in seeds.iterrows():
        main = json.loads((studies / f"results/metrics/evaluate/{row['dataset']}.json").read_text())
        spread = json.loads((studies / f"results/seeds/{row['dataset']}.json").read_text())
        assert (row["seed_0"], row["seed_1"]) == (0, 1) and [s["seed"] for s in spread["seeds"]] == [1]
        k = (main["K"], spread["seeds"][0]["K"])  # the main row beside seed 1
        assert (row["K_0"], row["K_1"]) == pytest.approx(k, rel=1e-5) and k[0] != k[1]
        assert row["K_sd"] == pytest.approx(abs(k[0] - k[1]) / math.sqrt(2), rel=1e-5)
        model = read_model_file(studies / f"models/seeds/{row['dataset']}/seed_1.pt")
        assert spread["seeds"][0]["train_seed"] == 1 and model["dataset"] == row["dataset"]
    study = pd.read_csv(studies / "results/parzen_study.csv")
    assert list(study["row"]) == ["5 iterations, final step sampled", "5 iterations, final step mean",
                                  "10 iterations, final step sampled", "10 iterations, final step mean",
                                  "20 iterations, final step sampled", "20 iterations, final step mean",
                                  "perfect model, 20 training images", "Table 2: 20 iterations, final step sampled",
                                  "Table 2: perfect model"]
    assert list(study["n_centres"]) == [20] * 7 + [60, 300]
    assert study["nats"].notna().all() and (study["profile"] == "smoke").all()
    assert "nan" not in (studies / "results/parzen_study.md").read_text()
    assert json.loads(run(studies, tool("dvc"), "status", "--json", "studies/dvc.yaml")) == {}


@pytest.mark.pipeline
def test_the_protocol_rows_centres_are_table_2s_own_first_samples(studies):
    """The study draws the main model's centres as Table 2's parzen_samples did: the first 20 of
    Table 2's 60 (batch size 20) are the same pixels, so the study's estimate is the parzen
    estimate on those centres; the mean's row differs from it."""
    config = cfg.load(studies / "params.yaml")
    c = config.mnist.parzen
    table2, _ = gather([studies / f"samples/mnist_shard{k}.npz" for k in (0, 1)], c)
    split = splits.load(studies / "data/mnist")
    validation = split.train[c.validation_start:c.validation_start + c.n_validation] / 255
    expected = parzen.estimate(split.holdout / 255, validation, table2[:20])
    study = pd.read_csv(studies / "results/parzen_study.csv").set_index("row")
    assert study.loc["20 iterations, final step sampled", "nats"] == pytest.approx(expected.mean_nats, rel=1e-5)
    assert study.loc["20 iterations, final step mean", "nats"] != study.loc["20 iterations, final step sampled", "nats"]


@pytest.mark.pipeline
def test_a_study_retrains_the_main_model_bit_for_bit(studies, tmp_path):
    """The studies train by the train stage's own ``train_model``: with the main row's params it
    gives models/mnist.pt, parameter for parameter, and the same model file bytes."""
    config = cfg.load(studies / "params.yaml")
    torch.set_num_threads(config.threads)
    main = read_model_file(studies / "models/mnist.pt")
    train_stage.train_model("mnist", studies / "data/mnist", config, torch.device("cpu"), tmp_path / "checkpoints",
                            tmp_path / "m.pt")
    record = read_model_file(tmp_path / "m.pt")
    assert (tmp_path / "m.pt").read_bytes() == (studies / "models/mnist.pt").read_bytes()
    for key, value in main["model"].items():
        assert torch.equal(record["model"][key], value), key


@pytest.mark.pipeline
def test_the_studies_stages_depend_on_the_modules_they_import(studies):
    """studies/dvc.yaml's deps name exactly the dpm/ and pipeline/ files each stage imported."""
    stages = {" ".join(stage.cmd.split()[2:]): stage for stage in dvc_bridge.load_stages(studies)
              if not stage.default}
    seen = set()
    for line in (studies / "imports.jsonl").read_text().splitlines():
        record = json.loads(line)
        stage = stages.get(" ".join([record["module"], *record["argv"]]))
        if stage is None:
            continue  # a stage of the main pipeline (tests/test_pipeline.py checks those)
        seen.add(stage.name)
        ours = {f for f in record["files"] if f.split("/")[0] in ("dpm", "pipeline", "workflow") and not f.endswith("__init__.py")}
        missing = {f for f in ours if not any(f == d or f.startswith(d + "/") for d in stage.deps)}
        assert not missing, f"stage {stage.name} imports {sorted(missing)} but studies/dvc.yaml does not list them"
    assert seen == {stage.name for stage in stages.values()}
