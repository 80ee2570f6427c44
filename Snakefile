"""Snakemake front-end for the DVC pipeline.

``dvc.yaml`` is the ONE pipeline spec.  Nothing here names a stage or a path:
one rule per DVC stage is generated from DVC's resolved stages by
``workflow/dvc_bridge.py``, so this file and ``dvc.yaml`` cannot drift.

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
    ``dvc status`` and, for each stage DVC would rerun, writes one marker per
    change it reports, named in DVC's words
    (``.snakemake/dvc-status/train_mnist/modified param mnist.train.learning_rate``):
    inputs of the stage's rule newer than its outputs (new mtime and new
    content, since Snakemake >= 8 ignores a newer input whose checksum it has
    already seen), so Snakemake's reason for the job names what changed.
    The markers are a function of DVC's state alone: a dry run changes no
    project file, and a change undone after ``snakemake -n`` plans nothing.
    A rule's set of inputs varies with them, so the workflow profile
    (profiles/default) keeps Snakemake's ``mtime`` rerun trigger alone.
    Every other input is ``ancient()`` (mtimes decide nothing, so outputs
    restored by ``dvc pull``/``dvc checkout`` in whatever order are not
    stale), except the outputs of the stages that will rerun (the changed
    ones and those below them, ``dvc_bridge.with_downstream``): Snakemake
    does not propagate a rerun across ``ancient()`` inputs.
    Params files are not inputs at all: DVC tracks individual keys, so editing
    ``a.x`` only reruns stages that use ``a.x``.  ``persist: true`` files are
    ``update()`` outputs (kept during the job, put back if it fails, as DVC
    leaves them); ``persist: true`` directories are not declared, since
    Snakemake would delete them before the job (DVC checks them anyway).

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
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from dpm.base.provenance import git_commit  # noqa: E402  (needs the sys.path entry)
from workflow import cluster, dvc_bridge  # noqa: E402

ROOT = workflow.basedir


workdir: ROOT
report: "report/workflow.rst"


# Snakemake takes no config of its own: every value is in params.yaml, which DVC tracks key by key
# (schemas/config.schema.yaml). A `--config` value no stage would read is refused, in one line.
try:
    validate(config, "schemas/config.schema.yaml")
except WorkflowError:
    given = ", ".join(f"{key}={value!r}" for key, value in config.items())
    sys.stderr.write(f"error: snakemake --config {given}: this workflow takes no config; every value the stages "
                     "read is in params.yaml, which DVC tracks: set it there (edit the file, or compose it: "
                     "python -m workflow.params key=value) and run again\n")
    sys.exit(1)


# Pre-flight: the gate stages' checks (check_params: params.yaml validated) run before anything is
# scheduled, so a bad value stops the run, in one line naming the key, before a job deletes an output.
_failed = dvc_bridge.check_gates(ROOT) if workflow.is_main_process else None
if _failed:
    sys.stderr.write(_failed + "\n")
    sys.exit(1)
# Only the main Snakemake process asks DVC; spawned job processes (cluster or
# remote executors re-read this file) must not move the markers mid-run.
try:
    STAGES, _REASONS = dvc_bridge.load_pipeline(ROOT, status=workflow.is_main_process)
except dvc_bridge.PipelineBusy as _busy:  # a concurrent run: one line, not DVC's LockError traceback
    sys.stderr.write(f"error: {_busy}\n")
    sys.exit(1)
CHANGED = dvc_bridge.with_downstream(STAGES, _REASONS)
MARKERS = (dvc_bridge.sync_markers(ROOT, STAGES, _REASONS) if workflow.is_main_process
           else dvc_bridge.read_markers(ROOT, STAGES))
COMMIT = git_commit()  # of the working copy: `-dirty` where the code or params.yaml differ from it
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
            MARKERS[_stage.name],  # what DVC reports changed, if anything (dvc_bridge.sync_markers)
        output:
            [
                directory(path) if path in _stage.dir_outs
                else update(path) if path in _stage.update_outs  # persist: kept, put back if the job fails
                else report(path, **dvc_bridge.report_flag(path)) if dvc_bridge.report_flag(path)
                else path
                for path in _stage.rule_outs
            ],
        log:
            _stage.log,
        params:
            stage=_stage.name,  # shell: is evaluated lazily; bind the name here
            # for the report's captions (report/output.rst): what the stage is and what it ran with
            desc=_stage.desc, cmd=_stage.cmd, used=dict(_stage.used), commit=COMMIT,
            dvc_status=dvc_bridge.status_line(_stage.name, _REASONS, CHANGED),
        threads: cluster.threads(_stage.resources, PARAMS)  # what the stage uses (dpm.base.stages.load_config), in either tool
        resources: **cluster.resources(_stage.resources, PARAMS)  # for a cluster scheduler (profiles/slurm)
        shell:
            dvc_bridge.shell_command()
    # the rule's code as `snakemake -p`, errors and the report show it: the stage's DVC command first
    workflow.get_rule(_stage.rule_name).shellcmd = dvc_bridge.shown_command(_stage)
