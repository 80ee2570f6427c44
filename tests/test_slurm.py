"""Stages of the smoke pipeline as jobs of a real SLURM cluster: ``snakemake --profile profiles/slurm``
in a temporary copy of the project, against a single-node cluster started for the test
(tests/slurm_cluster.py); and workflow/cluster.py's classes of stages against dvc.yaml."""

import re
import time

import pytest
import yaml

from workflow import cluster, dvc_bridge
from tests import slurm_cluster
from tests.smoke import ROOT, copy_project, run, set_param, stages_run, tool

# The swiss-roll chain: one stage of each kind of `resources` (default, train, sample), the last
# two side by side. The whole smoke pipeline (36 jobs, each starting Snakemake twice) takes over
# five minutes on two cores.
TARGETS = ("results/figure1.png", "results/metrics/evaluate/swiss_roll.json")
STAGES = {"data@swiss_roll", "train@swiss_roll", "evaluate@swiss_roll", "toy_figure@figure1"}
# Our cluster keeps no accounting (slurmdbd), so job states come from squeue; it is ours alone, so
# the first status check comes after 2 s rather than the plugin's 40. Successful jobs' logs are kept
# (profiles/slurm) to show what ran in them.
PROFILE = ("--profile", "profiles/slurm", "--slurm-status-command", "squeue",
           "--slurm-init-seconds-before-status-checks", "2")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


@pytest.fixture(scope="module")
def slurm():
    """A running cluster; its clients (sbatch, squeue, the jobs' srun) find it through the environment
    that `run` hands every command."""
    with slurm_cluster.cluster() as running, pytest.MonkeyPatch.context() as patch:
        for name in ("SLURM_CONF", "PATH"):
            patch.setenv(name, running.env[name])
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("slurm-project"))


def job(slurm, job_id: str) -> dict[str, str]:
    """SLURM's own record of a job (squeue and scontrol keep finished jobs for MinJobAge)."""
    line = slurm.run("scontrol", "show", "job", "--oneliner", job_id).stdout
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def queue(slurm) -> list[str]:
    """Every job SLURM knows of, as ``<id> <comment>`` (the plugin's comment names the rule)."""
    return slurm.run("squeue", "--states=all", "--noheader", "--format=%i %k").stdout.splitlines()


@pytest.mark.pipeline
def test_each_stage_runs_as_a_slurm_job_with_its_resources_and_dvc_agrees(slurm, project):
    """Each job: the stage DVC ran in the log SLURM wrote for it; SLURM's record of it (completed,
    on our node, the plugin's comment naming the rule, the memory and time limit of the stage's
    kind of `resources`)."""
    log = run(project, tool("snakemake"), *PROFILE, *TARGETS)
    submitted = {job_id: project / path for job_id, path in SUBMITTED.findall(log)}
    params = yaml.safe_load((project / "params.yaml").read_text())
    specs = {stage.name: stage for stage in dvc_bridge.load_stages(project)}
    ran = {}
    for job_id, slurm_log in submitted.items():
        (stage,) = stages_run(slurm_log.read_text())
        ran[stage] = job_id
        record = job(slurm, job_id)
        assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", record
        assert record["Comment"] == f"rule_{specs[stage].rule_name}" and record["JobName"].startswith("dpm_")
        assert slurm_log.parent.name == f"rule_{specs[stage].rule_name}"  # the SLURM log, kept, in the stage's folder
        assert f"Running stage '{stage}'" in (project / f"logs/{stage}.log").read_text()
        asked = cluster.resources(specs[stage].resources, params)
        assert record["MinMemoryNode"] == f"{asked['mem_mb']}M"
        assert record["TimeLimit"] == f"{asked['runtime'] // 60:02d}:{asked['runtime'] % 60:02d}:00"
        assert record["NodeList"] == slurm_cluster.NODE
    assert set(ran) == STAGES and len(submitted) == len(STAGES), log[-3000:]
    assert {specs[stage].resources for stage in ran} == set(cluster.KINDS)
    status = run(project, tool("dvc"), "status", "--with-deps", *STAGES)
    assert "Data and pipelines are up to date" in status, status
    assert "Nothing to be done" in run(project, tool("snakemake"), "--cores", "1", "-n", *TARGETS)


@pytest.mark.pipeline
def test_a_stage_asking_for_a_gpu_fails_at_once_instead_of_running_on_the_cpu(slurm, project):
    """The node has no GPU: sbatch refuses the job, and Snakemake stops with SLURM's reason."""
    params = (project / "params.yaml").read_text()
    set_param(project, "device", "cuda")  # the config check requires it once a stage asks for a GPU
    set_param(project, "resources.train.gpus", 1)
    jobs_before = queue(slurm)
    start = time.monotonic()
    try:
        log = run(project, tool("snakemake"), "models/swiss_roll.pt", *PROFILE, "--forcerun", "train_swiss_roll",
                  fail=True)
    finally:
        (project / "params.yaml").write_text(params)
    assert time.monotonic() - start < 60, log[-3000:]
    assert "--gpus=1" in log and "Requested node configuration is not available" in log, log[-3000:]
    for line in set(queue(slurm)) - set(jobs_before):  # SLURM's record of the refused submission
        record = job(slurm, line.split()[0])
        assert record["JobState"] == "FAILED" and record["RunTime"] == "00:00:00" and not record["NodeList"], record


@pytest.mark.pipeline
def test_every_stage_that_trains_or_runs_a_model_says_so_in_its_meta():
    """Each stage's ``meta: {resources: ...}`` is a kind of workflow/cluster.py; the stages that
    write a model are ``train``, those reading one ``sample`` (the studies' too); a stage that fits
    one without keeping it (an ablation) is ``train`` too."""
    stages = dvc_bridge.load_stages(ROOT)
    assert {stage.resources for stage in stages} == set(cluster.KINDS)
    models = {out for stage in stages for out in stage.outs if out.startswith("models/")}
    for stage in stages:
        writes, reads = models & set(stage.outs), models & set(stage.deps)
        if writes or reads:
            assert stage.resources == ("train" if writes else "sample"), stage.name
        else:
            assert stage.resources != "sample", stage.name
    assert {stage.name.rsplit("@")[0] for stage in stages if stage.resources == "train" and not
            models & set(stage.outs)} == {"studies/dvc.yaml:ablation"}
