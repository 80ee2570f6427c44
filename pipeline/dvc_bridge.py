"""Bridge that lets Snakemake execute the pipeline declared in ``dvc.yaml``.

``dvc.yaml`` is the single pipeline specification.  The ``Snakefile`` at the
repository root derives one rule per DVC stage from the helpers below, so the
two tools can never drift apart:

* :func:`load_stages` reads DVC's *resolved* stages (``${...}`` templating,
  ``vars`` and ``foreach``/``matrix`` already expanded by DVC itself) and
  turns each one into a small immutable :class:`StageSpec`.
* :func:`changed_stages` asks DVC's own ``status`` which stages it would
  rerun (changed params, deps, command, missing/modified outs, new stages).
* :func:`sync_sentinels` turns that answer into file mtimes that Snakemake
  understands: every stage gets a sentinel file under
  ``.snakemake/dpm-stage-state/``, an input of its rule, newer than its
  outputs exactly while DVC reports the stage changed.
  Every input of a rule is ``ancient()``: file mtimes decide nothing, so
  files restored by ``dvc checkout``/``dvc pull`` in any order are not
  stale. Downstream stages rerun through Snakemake's propagation of forced
  jobs.
* :func:`rule_inputs` and :func:`shell_command` provide the remaining pieces
  of each generated rule.

Only DVC decides *whether* a stage is stale; Snakemake decides *when* (and in
parallel with what) it runs, and every job runs the stage through
``dvc repro --single-item`` so ``dvc.lock`` stays the record of what ran.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

SENTINEL_DIR = Path(".snakemake") / "dpm-stage-state"
"""Sentinel directory, relative to the repository root."""

PROJECT_FILE = "dvc.yaml"


@dataclass(frozen=True)
class StageSpec:
    """One resolved DVC pipeline stage, reduced to what Snakemake needs.

    All paths are POSIX paths relative to the repository root.

    Attributes:
        name: DVC address of the stage, usable as a ``dvc repro`` target
            (``train``, ``train@us``, or ``sub/dvc.yaml:train`` for stages
            declared in a nested ``dvc.yaml``).
        cmd: The resolved command; multiple commands are newline-separated,
            exactly as DVC treats them.
        deps: Paths of the stage's file/directory dependencies (params files
            excluded, they are tracked per key through ``params``).
        outs: Paths of all outputs, including ``metrics`` and ``plots`` outs.
        dir_outs: The subset of ``outs`` that are directories.
        persist_outs: The subset of ``outs`` marked ``persist: true``.
        params: Tracked parameter keys; keys from a file other than
            ``params.yaml`` are written ``file:key``; a bare file name means
            the whole file is tracked.
        gate: The stage's ``meta: {gate: <command>}``: the stage is a check
            that DVC runs before every stage depending on its outs
            (``check_params``), and <command> does the same check without
            writing anything. Snakemake runs <command> when it parses the
            Snakefile (:func:`check_gates`), so a gate gets no rule and its
            outs are no rule's inputs; the Snakefile has DVC run it before
            the first job (:func:`record_gates`), which writes its outs and
            records it in ``dvc.lock``. (As a rule with ``ancient()`` edges it
            would hide every stale stage below it: Snakemake does not look
            at jobs downstream of one that must run, and ``ancient`` then
            stops the rerun from propagating.)
        default: Declared in the root ``dvc.yaml``, so a plain ``dvc repro``
            runs it, and Snakemake's ``all`` builds it. Stages of other
            ``dvc.yaml`` files (the studies, ``studies/dvc.yaml``) get rules
            but are built only on request: ``dvc repro studies/dvc.yaml``,
            ``snakemake <their output>``.
    """

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    dir_outs: frozenset[str]
    persist_outs: frozenset[str]
    params: tuple[str, ...]
    gate: str = ""
    default: bool = True

    @property
    def rule_outs(self) -> tuple[str, ...]:
        """Outs to declare as Snakemake outputs: all but ``persist`` ones.

        Snakemake deletes a job's outputs before running it (or, with
        ``update()``, restores the old version if the job fails); both would
        defeat DVC's ``persist`` (e.g. resume state of an interrupted run).
        DVC still checks persistent outs through ``dvc status``.
        """
        return tuple(o for o in self.outs if o not in self.persist_outs)

    @property
    def rule_name(self) -> str:
        """Snakemake-safe rule name (non-word characters become ``_``)."""
        return re.sub(r"\W", "_", self.name)


def load_stages(root: str | os.PathLike[str]) -> list[StageSpec]:
    """Load DVC's resolved pipeline stages of the repository at ``root``.

    Data sources tracked by ``.dvc`` files (``dvc add``/``dvc import``) have
    no command and are therefore skipped: to Snakemake they are plain source
    files.

    Args:
        root: Repository root (the directory containing ``.dvc/``).

    Returns:
        One :class:`StageSpec` per pipeline stage, in DVC's index order.

    Raises:
        ValueError: If two stage names map to the same Snakemake rule name.
    """
    return load_pipeline(root, status=False)[0]


def _to_spec(stage, root_dir: str) -> StageSpec:
    """Convert a DVC ``PipelineStage`` into a :class:`StageSpec`."""
    from dvc.dependency.param import ParamsDependency

    plain_deps = [d for d in stage.deps if not isinstance(d, ParamsDependency)]
    outs = [(_repo_path(out, root_dir), out) for out in stage.outs]
    cmd = stage.cmd if isinstance(stage.cmd, str) else "\n".join(stage.cmd)
    return StageSpec(
        name=_address(stage),
        cmd=cmd,
        deps=tuple(_repo_path(dep, root_dir) for dep in plain_deps),
        outs=tuple(path for path, _ in outs),
        dir_outs=frozenset(path for path, out in outs if _is_dir_out(out)),
        persist_outs=frozenset(path for path, out in outs if out.persist),
        params=tuple(_param_keys(stage.params)),
        gate=str((stage.meta or {}).get("gate") or ""),
        default=Path(stage.path_in_repo).as_posix() == PROJECT_FILE,
    )


def _address(stage) -> str:
    """Return the stage's DVC address relative to the repository root.

    DVC's own ``stage.addressing`` is relative to the *current* directory,
    which is why it is recomputed here from ``path_in_repo``.
    """
    dvcfile = Path(stage.path_in_repo).as_posix()
    if dvcfile == PROJECT_FILE:
        return stage.name
    return f"{dvcfile}:{stage.name}"


def _repo_path(item, root_dir: str) -> str:
    """Return a dep/out path relative to ``root_dir`` (POSIX), or as declared.

    Non-local items (``s3://``, ``http://`` ...) and paths outside the
    repository are returned as DVC stores them.
    """
    if item.protocol != "local":
        return item.def_path
    rel = os.path.relpath(item.fs_path, root_dir)
    if rel.startswith(os.pardir):
        return item.fs_path
    return Path(rel).as_posix()


def _is_dir_out(out) -> bool:
    """Decide whether an output is a directory (for Snakemake ``directory()``).

    The first available source of truth wins: the workspace (the out exists),
    ``dvc.lock`` (DVC recorded a ``.dir`` hash), a trailing ``/`` in
    ``dvc.yaml``, and finally the name: an out without a file suffix (e.g.
    ``data/prepared``) is assumed to be a directory, one with a suffix (e.g.
    ``model.pt``) a file.  A wrong guess is reported by Snakemake after the
    job (``ImproperOutputException``); add a suffix or a trailing ``/``.
    """
    if out.protocol != "local":
        return False
    if os.path.exists(out.fs_path):
        return os.path.isdir(out.fs_path)
    if out.hash_info and out.hash_info.isdir:
        return True
    if out.def_path.endswith(("/", os.sep)):
        return True
    return not PurePosixPath(out.def_path).suffix


def _param_keys(params_deps: Iterable) -> Iterable[str]:
    """Yield tracked parameter keys, prefixed with the file if not default."""
    for dep in params_deps:
        file = Path(dep.def_path).as_posix()
        if not dep.params:
            yield file
        prefix = "" if file == dep.DEFAULT_PARAMS_FILE else f"{file}:"
        for key in dep.params:
            yield f"{prefix}{key}"


def _check_unique_rule_names(specs: list[StageSpec]) -> None:
    """Raise ``ValueError`` if two stages share a Snakemake rule name."""
    seen: dict[str, str] = {}
    for spec in specs:
        other = seen.setdefault(spec.rule_name, spec.name)
        if other != spec.name:
            raise ValueError(
                f"DVC stages {other!r} and {spec.name!r} both map to the "
                f"Snakemake rule name {spec.rule_name!r}; rename one of them."
            )


def load_pipeline(root: str | os.PathLike[str], status: bool = True) -> tuple[list[StageSpec], frozenset[str]]:
    """:func:`load_stages` and, with ``status``, :func:`changed_stages`, from one opening of the
    repository (DVC builds its index once: about a second less on every Snakemake run).

    Under DVC's repository lock, waiting for it: on a cluster every job reads the Snakefile again
    while other jobs' ``dvc repro`` rewrite ``dvc.lock``, which read unlocked can be half-written.
    """
    from dvc.repo import Repo, lock_repo
    from dvc.stage import PipelineStage

    with Repo(os.fspath(root), _wait_for_lock=True) as repo, lock_repo(repo):
        stages = [stage for stage in repo.index.stages if isinstance(stage, PipelineStage)]
        specs = [_to_spec(stage, repo.root_dir) for stage in stages]
        report = repo.status() if status else {}
        changed = frozenset(_address(stage) for stage in stages if stage.addressing in report)
    _check_unique_rule_names(specs)
    return specs, changed


def changed_stages(root: str | os.PathLike[str]) -> frozenset[str]:
    """Return the names of the stages that DVC would rerun.

    Uses DVC's own ``status`` (``dvc status``): a stage is reported when its
    command, params or deps changed, its outs are missing or modified, it is
    new (no ``dvc.lock`` entry yet) or it is ``always_changed``.  Stages that
    are stale only because an upstream stage has not run yet are *not*
    reported; Snakemake reruns those below a job that runs.

    Args:
        root: Repository root.

    Returns:
        Stage names as in :attr:`StageSpec.name`.
    """
    return load_pipeline(root)[1]


def with_downstream(stages: Iterable[StageSpec], changed: Iterable[str]) -> frozenset[str]:
    """``changed`` and every stage that depends, through any chain of deps and outs, on one of them.

    DVC reports only the first stage of a stale chain (the others are stale because it has not
    run yet). Snakemake looks at nothing below a job that must run and reruns it only through
    inputs that are not ``ancient()``: the Snakefile leaves the outputs of exactly these stages
    not ancient, and every other input ancient (mtimes, which ``dvc pull`` and ``dvc checkout``
    set in no particular order, decide nothing).
    """
    stages = list(stages)
    gates = {s.name for s in stages if s.gate}  # its out does not change while it passes (StageSpec.gate)
    stale = set(changed) - gates
    grew = True
    while grew:
        below = {s.name for s in stages if s.name not in stale and any(
            _overlaps(dep, out) for dep in s.deps for u in stages if u.name in stale for out in u.outs)}
        stale |= below
        grew = bool(below)
    return frozenset(stale)


def sentinel_path(root: str | os.PathLike[str], stage: StageSpec) -> Path:
    """Return the sentinel file of ``stage`` (named after its rule name).

    Args:
        root: Repository root.
        stage: The stage.

    Returns:
        ``<root>/.snakemake/dpm-stage-state/<rule name>``.
    """
    return Path(root) / SENTINEL_DIR / stage.rule_name


def sync_sentinels(
    root: str | os.PathLike[str],
    stages: Iterable[StageSpec],
    changed: Iterable[str],
) -> dict[str, str]:
    """Set each stage's sentinel from DVC's verdict: a function of DVC's state alone.

    A changed stage's sentinel gets the current mtime, so it is newer than
    the stage's outputs and Snakemake reruns the stage.  Its content changes
    too (a nanosecond timestamp): Snakemake >= 8 ignores an input that is
    newer than the outputs if its checksum equals the one recorded at the
    last run, so touching alone is not enough.  The sentinel of an up-to-date
    stage is empty with mtime 0, so it never forces a rerun; one a dry run
    (``snakemake -n``) set for a change that was then undone is reset to that
    at the next parse. So a dry run has no effect on any later run, and
    nothing of the project changes (the sentinels live in Snakemake's own
    ``.snakemake/``). (Snakemake offers no parse-time ``--forcerun``: its DAG
    settings are attached to the workflow only after the Snakefile is read;
    and it does not rerun a job for a missing output that no job requests.)

    Args:
        root: Repository root.
        stages: All stages, as returned by :func:`load_stages`.
        changed: Names of changed stages, see :func:`changed_stages`.

    Returns:
        Mapping of stage name to sentinel path relative to ``root``.
    """
    changed = set(changed)
    paths = {}
    for stage in stages:
        path = sentinel_path(root, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        if stage.name in changed:
            path.write_text(f"dvc status reported a change at {time.time_ns()}\n")
        elif not path.exists() or path.stat().st_size or path.stat().st_mtime:
            path.write_text("")
            os.utime(path, (0, 0))
        paths[stage.name] = path.relative_to(root).as_posix()
    return paths


def rule_inputs(
    stage: StageSpec, stages: Iterable[StageSpec]
) -> tuple[list[str], list[str]]:
    """Split a stage's deps into upstream outputs and source files.

    A dep that equals, lies inside, or contains rule outputs of other stages
    (:attr:`StageSpec.rule_outs`) is replaced by those outputs, so Snakemake
    links the rules like DVC's DAG; a ``persist`` out of another stage (not a
    rule output) by that stage's other outputs, so the rule still runs after
    it.  Remaining deps are source files. The
    Snakefile marks both ``ancient()``: DVC's content hashes (through the
    sentinel), not mtimes, decide what is stale. Outs of a ``gate``
    stage are left out (:attr:`StageSpec.gate`).

    Args:
        stage: The stage whose inputs are wanted.
        stages: All stages of the pipeline.

    Returns:
        ``(upstream_outs, source_deps)``, both without duplicates.
    """
    others = [o for s in stages if s.name != stage.name and not s.gate for o in s.rule_outs]
    gates = [o for s in stages if s.gate for o in s.outs]
    upstream: dict[str, None] = {}
    sources: dict[str, None] = {}
    for dep in stage.deps:
        if "://" in dep or dep in gates:  # remote: DVC checks it, Snakemake cannot; gates: see StageSpec
            continue
        producers = [out for out in others if _overlaps(dep, out)]
        if not producers:  # a persist out of another stage: no rule output, so order after that stage's others
            producers = [out for s in stages if s.name != stage.name and not s.gate
                         and any(_overlaps(dep, o) for o in s.persist_outs) for out in s.rule_outs]
        target = upstream if producers else sources
        target.update(dict.fromkeys(producers or [dep]))
    return list(upstream), list(sources)


def _overlaps(a: str, b: str) -> bool:
    """Return True if POSIX paths ``a`` and ``b`` are equal or nested."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def shell_command() -> str:
    """Return the Snakemake ``shell:`` template that runs a stage via DVC.

    The stage is taken from the rule's ``params.stage``.  It must not be
    baked into the string: Snakemake evaluates a ``shell:`` expression
    lazily, inside the job, so a loop variable would already point at the
    last stage by then (``params`` are evaluated when the rule is created).

    ``dvc repro --single-item`` runs just this stage (Snakemake already
    ordered its upstream stages) with DVC's own shell, working directory,
    environment and run-cache, and records the result in ``dvc.lock``.
    ``--wait-for-lock`` makes concurrent jobs queue for DVC's repository
    lock instead of failing; DVC releases that lock while the stage command
    runs, so independent stages execute in parallel.  ``python`` is the
    interpreter running Snakemake: the Snakefile puts its directory first on
    ``PATH`` (:func:`interpreter_path`), which jobs inherit, on a cluster node too;
    no machine's path is written into the command (Snakemake records it, and a
    changed command would rerun the job).

    Returns:
        A command template for Snakemake's ``shell:`` directive.
    """
    return "python -m dvc --wait-for-lock repro --single-item {params.stage:q}"


def interpreter_path(path: str) -> str:
    """``path`` (a ``PATH`` value) with the running interpreter's directory first."""
    return os.pathsep.join([os.path.dirname(sys.executable), path])


REPORT_CATEGORIES = (("results/curves/*.png", "Learning curves"), ("results/table*.csv", "Tables"),
                     ("results/*.png", "Figures"))
"""Outputs that ``snakemake --report`` shows, by category (the first pattern that matches)."""


def report_category(path: str) -> str | None:
    """The ``snakemake --report`` category of output ``path``, or None if the report leaves it out."""
    for pattern, category in REPORT_CATEGORIES:
        if PurePosixPath(path).match(pattern) and path.count("/") == pattern.count("/"):
            return category
    return None


def check_gates(root: str | os.PathLike[str]) -> str | None:
    """Run the check command of each gate stage of ``dvc.yaml`` (:attr:`StageSpec.gate`; ``python``
    is this interpreter). ``dvc.yaml`` is read directly, not through DVC, which would fail first,
    with a traceback, on the very params file the gate is there to check.

    Returns:
        The first failing check's message (its stderr), or None if every check passed.
    """
    import subprocess

    import yaml
    stages = yaml.safe_load((Path(root) / PROJECT_FILE).read_text()).get("stages", {})
    gates = [stage["meta"]["gate"] for stage in stages.values() if (stage.get("meta") or {}).get("gate")]
    env = {**os.environ, "PATH": interpreter_path(os.environ.get("PATH", ""))}
    for command in gates:
        result = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            return result.stderr.strip() or f"{command}: exited with {result.returncode}"
    return None


def record_gates(root: str | os.PathLike[str], stages: Iterable[StageSpec]) -> None:
    """Run the ``gate`` stages through DVC (each a quick check, skipped by DVC when up to date),
    so that their outs exist for the jobs' ``dvc repro`` and ``dvc.lock`` records them as after
    ``dvc repro``. A Snakemake run with no job leaves them as they were.

    Raises:
        subprocess.CalledProcessError: a gate failed (it cannot, after the Snakefile's own
            check at parse time, unless params.yaml changed in between).
    """
    import subprocess
    for stage in stages:
        if stage.gate:
            subprocess.run([sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", "--quiet",
                            stage.name], cwd=root, check=True)
