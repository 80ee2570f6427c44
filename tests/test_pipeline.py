"""The whole pipeline on the smoke profile, through Snakemake and DVC, in a temporary copy of the project."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dpm.base import registry
from workflow import dvc_bridge
from tests import smoke
from tests.smoke import BIN, ROOT, changed, commit_all, copy_built, copy_project, run, set_param, stages_run, tool

pytestmark = pytest.mark.pipeline  # minutes each: `pytest -m "not pipeline"` leaves them out


@pytest.fixture(scope="module")
def project(smoke_build, tmp_path_factory):
    """The session's smoke build (every stage's outputs by Snakemake, and the ablation study), in a
    copy of this module's own: its tests change it."""
    return copy_built(smoke_build, tmp_path_factory.mktemp("project"))


def test_snakemake_builds_table1_and_dvc_agrees(project):
    table = (project / "results/table1.csv").read_text().splitlines()
    assert table[0].startswith("dataset,data,profile,K,K_se,K_minus_L_null,K_minus_L_null_se,L_null,paper_K")
    rows = {row.split(",")[0]: row for row in table[1:]}
    assert list(rows) == ["swiss_roll", "heartbeat", "bark", "dead_leaves", "cifar10", "mnist"]
    assert all(",smoke," in row for row in rows.values())
    assert "nan" not in (project / "results/table1.md").read_text()
    # the mirror has no bark: the row says what it was computed on
    assert rows["bark"].split(",")[1] == "texture stand-in"
    assert "bits/pixel" in rows["cifar10"]
    assert (project / "results/table1.md").exists()
    assert list((project / "runs/swiss_roll").glob("*/events.out.tfevents.*"))  # runs/<dataset>/<run name>/
    assert list((project / "runs/cifar10").glob("*/events.out.tfevents.*"))
    assert (project / "results/curves/mnist.png").stat().st_size > 10_000
    assert "![figure1](figure1.png)" in (project / "results/table1.md").read_text()
    assert (project / "results/figure1.png").stat().st_size > 10_000
    assert (project / "results/figure2.png").stat().st_size > 5_000
    for figure in ("figure3", "figure4", "figure_app1", "figure_bark", "figure3_denoise", "figure5",
                   "figure_mnist_inpaint", "figure5_full"):
        assert (project / f"results/{figure}.png").stat().st_size > 5_000


def test_snakemake_builds_table2(project):
    table = (project / "results/table2.csv").read_text().splitlines()
    assert table[0].startswith("dataset,model,unit,paper_bits,paper_bits_se,paper_nats,paper_nats_se,bits,bits_se,nats")
    rows = [row.split(",") for row in table[1:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("dead_leaves", "MCGSM"), ("dead_leaves", "Diffusion"), ("mnist", "Stacked CAE"), ("mnist", "DBN"),
        ("mnist", "Deep GSN"), ("mnist", "Diffusion"), ("mnist", "Adversarial net"), ("mnist", "Perfect model")]
    ours = {(r[0], r[1]): r for r in rows if r[7]}  # rows with our bits
    assert set(ours) == {("dead_leaves", "Diffusion"), ("mnist", "Diffusion"), ("mnist", "Perfect model")}
    parzen = json.loads((project / "results/metrics/parzen_mnist.json").read_text())
    assert parzen["sampling"]["n_samples"] == parzen["diffusion"]["n_centres"] == 60  # smoke mnist.parzen
    assert parzen["perfect"]["n_centres"] == 300 and parzen["diffusion"]["n_test"] == 100
    for row in ("diffusion", "perfect"):
        assert parzen[row]["sigma"] in [s for s, _ in parzen[row]["sigma_search"]]
        assert abs(parzen[row]["mean_bits"] * 0.6931471805599453 - parzen[row]["mean_nats"]) < 1e-6
    assert "Perfect model" in (project / "results/table2.md").read_text()


def test_after_snakemake_dvc_finds_nothing_to_do(project):
    assert changed(project) == set()
    assert stages_run(run(project, tool("dvc"), "repro")) == set()
    assert "Nothing to be done" in run(project, tool("snakemake"), "--cores", "1", "-n")


STUDY = "studies/dvc.yaml:"


def studies_changed(folder: Path) -> set[str]:
    """Stale stages of the ablation study (the project builds no other study: tests/test_studies.py)."""
    return {name for name in json.loads(run(folder, tool("dvc"), "status", "--json", "studies/dvc.yaml"))
            if name.startswith(f"{STUDY}ablation")}


def test_the_ablation_study_has_a_row_per_ablation_and_variant(project):
    ablations = yaml.safe_load((project / "params.yaml").read_text())["ablations"]["variants"]
    rows = list(csv.DictReader((project / "results/ablations.csv").open()))
    of = {name: [v["ablation"]] if isinstance(v["ablation"], str) else v["ablation"] for name, v in ablations.items()}
    groups = list(dict.fromkeys(g for names in of.values() for g in names))
    assert [(r["ablation"], r["variant"]) for r in rows] == [
        (g, v) for g in groups for v in sorted((v for v in ablations if g in of[v]), key=lambda v: not ablations[v]["baseline"])]
    assert all(r["profile"] == "smoke" and r["K_se"] and r["K_minus_L_null_se"] for r in rows)
    record = json.loads((project / "results/ablations/swiss_roll_beta1_1e_5.json").read_text())
    assert record["section"]["diffusion"]["beta_1"] == 1e-5 and record["n_iterations"] == 20  # smoke budget
    text = (project / "results/ablations.md").read_text()
    assert "## swiss-roll β_1" in text and "swiss_roll_base (baseline)" in text and "nan" not in text
    # the ablation stage trains and evaluates as the train and evaluate stages do: at the profile's
    # own training its row is Table 1's
    main = json.loads((project / "results/metrics/evaluate/swiss_roll.json").read_text())
    same = json.loads((project / "results/ablations/swiss_roll_quick_training.json").read_text())
    assert (same["n_iterations"], same["K"], same["K_se"]) == (main["n_iterations"], main["K"], main["K_se"])
    assert studies_changed(project) == set()
    assert not (project / "models/ablations").exists()  # no model file is kept


def test_one_ablation_variant_reruns_alone(project):
    params = (project / "params.yaml").read_text()
    edited = yaml.safe_load(params)
    edited["ablations"]["budget"]["heartbeat"]["train.n_iterations"] = 11
    (project / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    variants = ("heartbeat_base", "heartbeat_kernel", "heartbeat_pytorch_init")
    assert studies_changed(project) == {f"{STUDY}ablation@{v}" for v in variants}  # the budget of their dataset
    edited = yaml.safe_load(params)
    edited["ablations"]["variants"]["swiss_roll_kernel"]["set"]["net.n_hidden"] = 8
    (project / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    assert studies_changed(project) == {f"{STUDY}ablation@swiss_roll_kernel", f"{STUDY}ablation_table"}
    assert stages_run(run(project, tool("dvc"), "repro", f"{STUDY}ablation_table")) == {
        "check_params", f"{STUDY}ablation@swiss_roll_kernel", f"{STUDY}ablation_table"}
    record = json.loads((project / "results/ablations/swiss_roll_kernel.json").read_text())
    assert record["section"]["net"]["n_hidden"] == 8
    (project / "params.yaml").write_text(params)
    run(project, tool("dvc"), "repro", f"{STUDY}ablation_table")  # the other studies did not run here
    assert studies_changed(project) == set() and changed(project) == set()


def test_a_swiss_roll_parameter_reruns_only_the_swiss_roll_stages(project):
    heartbeat_model = (project / "models/heartbeat.pt").stat().st_mtime_ns
    set_param(project, "swiss_roll.train.learning_rate", 0.02)
    assert changed(project) == {"check_params", "train@swiss_roll"}
    plan = run(project, tool("snakemake"), "--cores", "1", "-n", "results/table1.csv")
    planned = {line.split()[1].rstrip(":") for line in plan.splitlines() if line.startswith(("rule ", "localrule "))}
    # Snakemake's reason is DVC's: the value that changed
    assert "reason: Updated input files: .snakemake/dvc-status/train_swiss_roll/modified param " \
           "swiss_roll.train.learning_rate" in plan
    assert planned == {"train_swiss_roll", "evaluate_swiss_roll", "toy_figure_figure1", "likelihood_swiss_roll",
                       "limit_swiss_roll", "table1"}  # the gate: at parse time
    log = run(project, tool("dvc"), "repro")
    assert stages_run(log) == {"check_params", "train@swiss_roll", "curves@swiss_roll", "evaluate@swiss_roll",
                               "toy_figure@figure1", "likelihood@swiss_roll", "limit@swiss_roll",
                               "kl_per_t@swiss_roll", "kl_figure", "table1", "report"}
    assert (project / "models/heartbeat.pt").stat().st_mtime_ns == heartbeat_model
    set_param(project, "swiss_roll.train.learning_rate", 0.03)
    run(project, tool("snakemake"), "--cores", "2")
    assert (project / "models/heartbeat.pt").stat().st_mtime_ns == heartbeat_model
    assert changed(project) == set()


def test_an_edit_reruns_only_the_stages_of_the_modules_it_touches(project):
    textures = project / "dpm/datasets/textures.py"
    original = textures.read_text()
    textures.write_text(original + "# a comment\n")
    assert changed(project) == {"fetch@bark", "data_from_raw@bark", "figure5_full"}
    textures.write_text(original)
    for module in ("tools/bench.py", "tools/parzen_bench.py"):  # no stage imports these
        original = (project / module).read_text()
        (project / module).write_text(original + "# a comment\n")
        assert changed(project) == set()
        (project / module).write_text(original)
    assert changed(project) == set()


KEPT = ["models/swiss_roll.pt", "results/curves/swiss_roll.csv", "results/metrics/evaluate/swiss_roll.json",
        "checkpoints/swiss_roll", "results/figure1.png"]


@pytest.mark.parametrize("key, value, named", [
    ("swiss_roll.train.learning_rate", float("nan"), "swiss_roll.train.learning_rate"),
    ("swiss_roll.diffusion.beta_1", 1.0, "swiss_roll.diffusion.beta_1"),
    ("heartbeat.data.period", 100, "heartbeat.data.period"),
    pytest.param("device", "cuda", "device: cuda", marks=pytest.mark.skipif(
        shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")),  # the machine's check
    pytest.param("threads", os.cpu_count() + 1, "threads: ", id="threads-beyond-the-cores"),
])
def test_bad_params_stop_both_tools_with_one_line_and_lose_nothing(project, key, value, named):
    before = {path: _snapshot(project / path) for path in KEPT}
    params = (project / "params.yaml").read_text()
    set_param(project, key, value)
    for command in ((tool("dvc"), "repro"), (tool("snakemake"), "--cores", "1")):
        output = run(project, *command, fail=True)
        errors = [line for line in output.splitlines() if line.startswith(("error:", "ERROR:"))]
        assert errors and named in errors[0], output[-2000:]
        assert "Traceback" not in output
        assert {path: _snapshot(project / path) for path in KEPT} == before
    (project / "params.yaml").write_text(params)
    assert changed(project) <= {"check_params"}
    run(project, tool("dvc"), "repro")
    assert changed(project) == set()


def _snapshot(path: Path):
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return [(f.name, f.read_bytes()) for f in files if f.is_file()]


HEARTBEAT = ["models/heartbeat.pt", "results/curves/heartbeat.csv", "checkpoints/heartbeat",
             "results/metrics/evaluate/heartbeat.json"]


@pytest.mark.parametrize("key, value, named", [
    ("heartbeat.train.learning_rate", float("nan"), "heartbeat.train.learning_rate"),
    pytest.param("device", "cuda", "device: cuda", marks=pytest.mark.skipif(
        shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")),
    ("heartbeat.train.batch_size", 2 ** 31 - 1, "heartbeat.train.batch_size"),  # no memory holds its step
])
def test_a_bad_value_in_one_stage_run_alone_loses_nothing(project, key, value, named):
    """`dvc repro --single-item train@heartbeat` runs no gate, and DVC removes a stage's outputs
    before its command, except `persist` ones: the model (and curve) are, and the stage refuses
    the value before it writes anything. Afterwards both tools see the same stale stages."""
    before = {path: _snapshot(project / path) for path in HEARTBEAT}
    params = (project / "params.yaml").read_text()
    set_param(project, key, value)
    output = run(project, tool("dvc"), "repro", "--single-item", "train@heartbeat", fail=True)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {named}"), output[-2000:]
    assert "Traceback" not in output
    assert {path: _snapshot(project / path) for path in HEARTBEAT} == before
    (project / "params.yaml").write_text(params)
    assert changed(project) <= {"check_params"}
    assert "Nothing to be done" in run(project, tool("snakemake"), "--cores", "1", "-n")


def test_a_killed_evaluation_leaves_its_previous_metrics(project):
    """persist: DVC does not remove the metrics file before the stage runs, and the stage
    replaces it whole: killed half-way, the previous one is still there, and a rerun agrees."""
    metrics = project / "results/metrics/evaluate/mnist.json"
    before = metrics.read_bytes()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    dvc = subprocess.Popen([tool("dvc"), "repro", "--force", "--single-item", "evaluate@mnist"], cwd=project,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _running(dvc.pid, "pipeline.evaluate"):
        time.sleep(0.05)
    assert _running(dvc.pid, "pipeline.evaluate"), "the stage did not start"
    os.killpg(dvc.pid, signal.SIGKILL)
    dvc.wait()
    assert metrics.read_bytes() == before
    run(project, tool("dvc"), "repro", "--single-item", "evaluate@mnist")  # DVC's lock was left: it recovers
    assert metrics.read_bytes() == before and changed(project) == set()


def _running(pid: int, module: str) -> bool:
    """Whether a process below ``pid`` runs ``python -m module``."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if module in cmdline.read_bytes().decode(errors="replace") and _below(int(cmdline.parent.name), pid):
                return True
        except OSError:
            continue
    return False


def _below(child: int, ancestor: int) -> bool:
    while child > 1:
        try:
            child = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if child == ancestor:
            return True
    return False


def test_a_retrain_to_the_same_weights_reruns_nothing_below(project):
    """The model file holds no time, commit or temporary name (they go to results/provenance/):
    retrained from scratch, it is the same bytes, and no stage below it is stale but the curve's
    PNG, whose CSV keeps each row's wall-clock time (the DVC plot by time draws it)."""
    model = (project / "models/swiss_roll.pt").read_bytes()
    metrics = (project / "results/metrics/evaluate/swiss_roll.json").read_bytes()
    shutil.rmtree(project / "checkpoints/swiss_roll")
    run(project, tool("dvc"), "repro", "--force", "--single-item", "train@swiss_roll")
    assert (project / "models/swiss_roll.pt").read_bytes() == model
    assert changed(project) <= {"curves@swiss_roll"}
    run(project, tool("dvc"), "repro")
    assert (project / "results/metrics/evaluate/swiss_roll.json").read_bytes() == metrics and changed(project) == set()


def test_every_stage_depends_on_the_project_modules_it_imports(project):
    """dvc.yaml's deps must name every dpm/ and pipeline/ file a stage imported when it ran
    (lazy imports included: each stage records them, dpm.base.stages._record_imports)."""
    stages = {" ".join(stage.cmd.split()[2:]): stage for stage in dvc_bridge.load_stages(project)
              if stage.default}  # python -m …; the studies' stages: tests/test_studies.py
    stages.update({" ".join(stage.gate.split()[2:]): stage for stage in stages.values() if stage.gate})
    records = [json.loads(line) for line in (project / "imports.jsonl").read_text().splitlines()]
    seen = set()
    studies = {" ".join(stage.cmd.split()[2:]) for stage in dvc_bridge.load_stages(project) if not stage.default}
    for record in records:
        command = " ".join([record["module"], *record["argv"]])
        if command in studies:
            continue  # tests/test_studies.py
        stage = stages[command]
        seen.add(stage.name)
        ours = {f for f in record["files"] if f.split("/")[0] in ("dpm", "pipeline", "workflow") and not f.endswith("__init__.py")}
        missing = {f for f in ours if not any(f == d or f.startswith(d + "/") for d in stage.deps)}
        assert not missing, f"stage {stage.name} imports {sorted(missing)} but dvc.yaml does not list them"
    assert seen == {stage.name for stage in stages.values()}  # every stage ran (or its gate check) and was checked


def _project_files(folder: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file of the project but Snakemake's and DVC's own state."""
    skip = (".snakemake/", ".dvc/tmp/", ".dvc/cache/", ".git/", "imports.jsonl")
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file() and not p.relative_to(folder).as_posix().startswith(skip)}


def test_a_dry_run_changes_nothing(project):
    """Edit a param, dry-run, undo the edit: no file of the project moved, and nothing is planned."""
    params = (project / "params.yaml").read_text()
    set_param(project, "swiss_roll.train.learning_rate", 0.05)
    before = _project_files(project)
    plan = run(project, tool("snakemake"), "--cores", "1", "-n")
    assert "train_swiss_roll" in plan and "table1" in plan
    assert _project_files(project) == before
    (project / "params.yaml").write_text(params)
    assert changed(project) == set()
    assert "Nothing to be done" in run(project, tool("snakemake"), "--cores", "1", "-n")


def test_both_tools_run_the_same_job(project, tmp_path):
    """The same params give bit-identical K and the same device record under dvc repro as under
    Snakemake (the project fixture's run): both run each stage with params.yaml's threads. In a
    copy of the project as the tests above left it, DVC trains afresh (no checkpoint) and
    evaluates again on the same data."""
    other = copy_built(project, tmp_path / "other")
    stages = [f"{stage}@{name}" for name in ("swiss_roll", "mnist") for stage in ("train", "evaluate")]
    for name in ("swiss_roll", "mnist"):
        shutil.rmtree(other / f"checkpoints/{name}")
        (other / f"results/metrics/evaluate/{name}.json").unlink()
    assert stages_run(run(other, tool("dvc"), "repro", "--force", "--single-item", *stages)) == set(stages)
    for name in ("swiss_roll", "mnist"):
        ours, theirs = (json.loads((folder / f"results/metrics/evaluate/{name}.json").read_text()) for folder in (project, other))
        assert theirs["device"] == ours["device"]
        assert theirs["K"] == ours["K"] and theirs["K_se"] == ours["K_se"], name


def test_outputs_are_shared_through_a_dvc_remote(project, tmp_path):
    """Push to a local-folder remote; a fresh clone pulls, and neither tool finds anything to do."""
    run(project, tool("dvc"), "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    run(project, tool("dvc"), "remote", "modify", "shared", "verify", "true")  # as the README's recipe
    push = run(project, tool("dvc"), "push")
    assert "pushed" in push
    commit_all(project, "pipeline run")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    run(clone, tool("dvc"), "pull", "dvc.yaml")  # the studies (studies/dvc.yaml) were not run: nothing to pull
    assert (clone / "models/mnist.pt").stat().st_size > 0
    assert json.loads(run(clone, tool("dvc"), "status", "--json", "dvc.yaml")) == {}
    assert "Nothing to be done" in run(clone, tool("snakemake"), "--cores", "1", "-n")
    run(project, tool("dvc"), "remote", "remove", "shared")


def test_a_corrupted_object_in_the_remote_is_refused_naming_its_file(project, tmp_path):
    """A remote with `verify = true` (the README's recipe): each object pulled is hashed, and one
    whose bytes changed in the remote is not checked out; `dvc pull` fails naming its output."""
    remote = tmp_path / "remote"
    run(project, tool("dvc"), "remote", "add", "--local", "verified", str(remote))
    run(project, tool("dvc"), "push", "-r", "verified", "dvc.yaml")
    run(project, tool("dvc"), "remote", "remove", "--local", "verified")
    commit_all(project, "pipeline run", allow_empty=True)
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    md5 = next(out["md5"] for out in lock["stages"]["train@swiss_roll"]["outs"]
               if out["path"] == "models/swiss_roll.pt")
    stored = remote / "files" / "md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    damaged = bytearray(stored.read_bytes())
    damaged[-100] ^= 1
    stored.write_bytes(bytes(damaged))
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    run(clone, tool("dvc"), "remote", "add", "--local", "--default", "verified", str(remote))
    run(clone, tool("dvc"), "remote", "modify", "--local", "verified", "verify", "true")
    output = run(clone, tool("dvc"), "pull", "dvc.yaml", fail=True)
    assert "models/swiss_roll.pt" in output
    assert not (clone / "models/swiss_roll.pt").exists()
    assert (clone / "models/mnist.pt").stat().st_size > 0  # the others are pulled


def test_the_copy_takes_nothing_the_readmes_steps_change_in_a_working_copy(tmp_path, monkeypatch):
    """copy_project from a clone where a user took the README's steps (a default DVC remote added,
    a typo in params.yaml, dvc.lock rewritten): the copy has no remote, the committed lock, and
    params.yaml composed, so no test fails on what the user did there."""
    user = tmp_path / "user"
    run(tmp_path, "git", "clone", "-q", str(ROOT), str(user))
    run(user, tool("dvc"), "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    set_param(user, "swiss_roll.train.learning_rat", 0.02)
    (user / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    monkeypatch.setattr(smoke, "ROOT", user)
    copy = copy_project(tmp_path / "copy")
    assert run(copy, tool("dvc"), "remote", "list").strip() == ""
    assert (copy / "dvc.lock").read_text() == run(user, "git", "show", "HEAD:dvc.lock")
    run(copy, "python", "-m", "pipeline.check_params")
    assert yaml.safe_load((copy / "params.yaml").read_text())["profile"] == "smoke"


def test_plain_dvc_commands_are_clean_and_an_experiment_reads_in_a_short_table(project, tmp_path):
    """The README's steps in a clone, every DVC command in its plain form: `dvc push`, `dvc pull`,
    `dvc exp run -S`, `dvc exp apply` exit 0 with no warning (no study output is DVC-cached, so
    none is missing), and `dvc exp show --only-changed` holds the value and the headline metrics
    in at most 30 columns (no study result is a DVC metric)."""
    remote = tmp_path / "remote"
    run(project, tool("dvc"), "remote", "add", "--local", "plain", str(remote))
    push = run(project, tool("dvc"), "push", "-r", "plain")
    run(project, tool("dvc"), "remote", "remove", "--local", "plain")
    assert "WARNING" not in push, push
    commit_all(project, "pipeline run", allow_empty=True)
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    run(clone, tool("dvc"), "remote", "add", "--local", "--default", "shared", str(remote))
    pull = run(clone, tool("dvc"), "pull")
    assert "WARNING" not in pull and "ERROR" not in pull, pull
    ran = stages_run(run(clone, tool("dvc"), "exp", "run", "-S", "swiss_roll.train.learning_rate=0.02", "-n", "lr"))
    assert "train@swiss_roll" in ran and not {s for s in ran if "@" in s and not s.endswith(("swiss_roll", "figure1"))}
    header = run(clone, tool("dvc"), "exp", "show", "--only-changed", "--csv").splitlines()[0].split(",")
    assert len(header) <= 30 and {"swiss_roll.train.learning_rate", "swiss_roll.K", "swiss_roll.K_minus_L_null"} <= set(header), header
    assert not [column for column in header if "ablations" in column or "seeds" in column], header
    # the README's recipe: every dataset's headline, the values that differ, no file hashes
    recipe = run(clone, tool("dvc"), "exp", "show", "--only-changed", "--keep", r".*\.K", "--drop", ".*/|params.yaml", "--csv")
    headline = {f"{name}.{key}" for name in registry.NAMES for key in ("K", "K_minus_L_null")}
    assert set(recipe.splitlines()[0].split(",")) == {"Experiment", "rev", "typ", "Created", "swiss_roll.train.learning_rate"} | headline
    for command in (("exp", "apply", "lr"), ("status",), ("push",)):
        output = run(clone, tool("dvc"), *command)
        assert "WARNING" not in output and "ERROR" not in output, (command, output)


def test_snakemake_report_holds_the_tables_and_figures(project):
    run(project, tool("snakemake"), "--touch", "--forceall", "--cores", "1")  # records what `dvc repro` made
    assert changed(project) == set()
    log = run(project, tool("snakemake"), "--report", "report.html")
    assert "Missing metadata" not in log
    page = (project / "report.html").read_text(errors="replace")
    for name in ("table1.csv", "table2.csv", "figure1.png", "figure5_full.png", "mnist.png"):
        assert name in page, name
    # captions: what each is, its stage and command, the values it ran with, DVC's verdict, the commit
    for text in ("Fig. 1: the swiss roll", "python -m pipeline.figures figure1", "swiss_roll.net.n_hidden",
                 "up to date", "git commit"):
        assert text in page, text


def test_dvc_plots_show_needs_no_internet(project):
    run(project, tool("dvc"), "plots", "show")
    page = (project / "dvc_plots/index.html").read_text()
    assert "vegaEmbed('#results_curves_mnist_csv'" in page  # the curve of each dataset, titled by its file
    assert "vegaEmbed('#results_provenance_time_curves_bark_csv'" in page
    assert "<script src=" not in page and "function" in page  # the libraries inlined, nothing fetched


def test_the_readmes_posterior_example_runs_on_the_trained_mnist(project):
    """The README's Python example, as written, on the project's trained MNIST (smoke)."""
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run([sys.executable, "-c", code + "\nprint(left_kept.shape, denoised.isfinite().all().item())"],
                            cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["torch.Size([16,", "784])", "True"]
