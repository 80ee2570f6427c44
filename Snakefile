"""Snakemake front-end for the DVC pipeline.

``dvc.yaml`` is the ONE pipeline spec.  Nothing here names a stage or a path:
one rule per DVC stage is generated from DVC's resolved stages by
``pipeline/dvc_bridge.py``, so this file and ``dvc.yaml`` cannot drift.

Usage (from the repository root):
    snakemake --cores 4            # build every stage's outs (rule ``all``)
    snakemake --cores 4 <out>      # build one output and what it needs (also a study's,
                                   # studies/dvc.yaml: not in ``all``, as not in ``dvc repro``)
    snakemake -n                   # what would run (agrees with dvc status)

Gate stages (``meta: {gate: <check>}`` in dvc.yaml; here ``check_params``) get no rule: their
check runs when this file is parsed, before any job, and DVC records them (``onstart``).

Needs ``.snakemake/`` and ``.snakemake_timestamp`` in ``.dvcignore``: Snakemake
writes ``.snakemake_timestamp`` into directory outputs after each job, which
DVC would otherwise report as a modification of that output.

How staleness is decided:
    DVC decides *whether* a stage is stale.  At parse time the bridge asks
    ``dvc status`` and sets ``.snakemake/dpm-stage-state/<stage>`` (an input
    of the stage's rule, the only one not ``ancient()``): newer than the
    outputs (new mtime and new content, since Snakemake >= 8 ignores a newer
    input whose checksum it has already seen) while DVC reports the stage
    changed or below a changed stage (``dvc_bridge.with_downstream``), empty
    with mtime 0 otherwise.
    The sentinels are a function of DVC's state alone: a dry run changes no
    project file, and a change undone after ``snakemake -n`` plans nothing.
    Every other input is ``ancient()`` (mtimes decide nothing, so outputs
    restored by ``dvc pull``/``dvc checkout`` in whatever order are not
    stale), except the outputs of the stages that will rerun: Snakemake does
    not propagate a rerun across ``ancient()`` inputs.
    Params files are not inputs at all: DVC tracks individual keys, so editing
    ``a.x`` only reruns stages that use ``a.x``.  ``persist: true`` outs are
    not declared as outputs, since Snakemake would delete them before the job
    (DVC checks them anyway).

How a stage runs -- approach (a), ``dvc --wait-for-lock repro --single-item
<stage>``, chosen over (b), "run the cmd in the shell, then
``dvc --wait-for-lock commit --force <stage>``":
    * It is just as parallel.  ``dvc repro`` does NOT hold the repository
      lock for the whole run: DVC releases it while the stage command runs
      (``unlocked_repo(cmd_run)`` in dvc/stage/run.py) and keeps only
      per-path read/write locks.  Verified with dvc 3.67.1: two concurrent
      ``dvc --wait-for-lock repro -s`` of independent 2 s stages take ~3 s,
      and tests/test_dvc_bridge.py asserts that such stages overlap under
      ``--cores 2``.  ``--wait-for-lock`` makes jobs queue for the short
      locked phases (collect, hash, write dvc.lock) instead of failing.
    * It runs the stage exactly as ``dvc repro`` would: DVC's shell (not
      Snakemake's ``bash -euo pipefail``), the stage's ``wdir``,
      ``DVC_ROOT``/``DVC_STAGE`` env vars, multi-line ``cmd`` lists, and no
      brace-escaping of the cmd for Snakemake's ``str.format``.
    * It keeps DVC's run-cache: Snakemake deletes a job's outputs before it
      starts, so a rerun whose deps/params/cmd match an earlier run (e.g. an
      upstream stage rebuilt identical data, or a param was set back) is
      restored from ``.dvc/cache`` instead of recomputed (this also holds
      for ``snakemake -R/-F``; use ``dvc repro -f`` to really recompute).
      DVC keeps no run-cache for stages with ``persist`` outs (train,
      parzen_samples): those always run their command, which resumes from
      their checkpoint.
      With (b) the command always runs, and ``commit --force`` records
      whatever is in the workspace even if the command did something else.
"""

import os
import sys

import yaml

sys.path.insert(0, workflow.basedir)

from pipeline import cluster, dvc_bridge  # noqa: E402  (needs the sys.path entry)

ROOT = workflow.basedir


workdir: ROOT


# Pre-flight: the gate stages' checks (check_params: params.yaml validated) run before anything is
# scheduled, so a bad value stops the run, in one line naming the key, before a job deletes an output.
_failed = dvc_bridge.check_gates(ROOT) if workflow.is_main_process else None
if _failed:
    sys.stderr.write(_failed + "\n")
    sys.exit(1)
# Only the main Snakemake process asks DVC; spawned job processes (cluster or
# remote executors re-read this file) must not move sentinels mid-run.
STAGES, _CHANGED_BY_DVC = dvc_bridge.load_pipeline(ROOT, status=workflow.is_main_process)
CHANGED = dvc_bridge.with_downstream(STAGES, _CHANGED_BY_DVC)
SENTINELS = dvc_bridge.sync_sentinels(ROOT, STAGES, CHANGED) if workflow.is_main_process else {
    stage.name: dvc_bridge.sentinel_path(ROOT, stage).relative_to(ROOT).as_posix() for stage in STAGES}
# Jobs run `python` (dvc_bridge.shell_command): this interpreter, in every job and on every node.
os.environ["PATH"] = dvc_bridge.interpreter_path(os.environ.get("PATH", ""))
PARAMS = yaml.safe_load(open(os.path.join(ROOT, "params.yaml"))) or {}


# outputs of the stages that will rerun: the only inputs not ancient(), so the rerun reaches every
# stage below (Snakemake does not propagate a rerun across ancient() inputs)
_STALE_OUTS = {out for stage in STAGES if stage.name in CHANGED for out in stage.rule_outs}


# what a plain `dvc repro` runs: the root dvc.yaml's stages (the studies of studies/dvc.yaml are
# built on request, `snakemake --cores 2 results/ablations.csv`)
rule all:
    localrule: True
    input:
        [out for stage in STAGES if stage.default and not stage.gate for out in stage.rule_outs],


# The gate stages (check_params) get no rule: params.yaml was validated above. Before the first
# job DVC runs them (quick, skipped when up to date), so their outs exist and dvc.lock records
# them as `dvc repro` would.
onstart:
    dvc_bridge.record_gates(ROOT, STAGES)


for _stage in (stage for stage in STAGES if not stage.gate):
    _upstream, _sources = dvc_bridge.rule_inputs(_stage, STAGES)

    rule:
        name:
            _stage.rule_name
        input:
            [path if path in _STALE_OUTS else ancient(path) for path in _upstream + _sources],
            sentinel=SENTINELS[_stage.name],
        output:
            [
                directory(path) if path in _stage.dir_outs
                else report(path, category=dvc_bridge.report_category(path)) if dvc_bridge.report_category(path)
                else path
                for path in _stage.rule_outs
            ],
        params:
            stage=_stage.name,  # shell: is evaluated lazily; bind the name here
        threads: cluster.threads(_stage.name, PARAMS)  # what the stage uses (pipeline.common.load_config), in either tool
        resources: **cluster.resources(_stage.name, PARAMS)  # for a cluster scheduler (profiles/slurm)
        shell:
            dvc_bridge.shell_command()
