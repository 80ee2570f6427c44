"""Bridge that lets Snakemake execute the pipeline declared in ``dvc.yaml``.

``dvc.yaml`` is the single pipeline specification.  The ``Snakefile`` at the
repository root derives one rule per DVC stage from the helpers below, so the
two tools can never drift apart:

* :func:`load_stages` reads DVC's *resolved* stages (``${...}`` templating,
  ``vars`` and ``foreach``/``matrix`` already expanded by DVC itself) and
  turns each one into a small immutable :class:`StageSpec`.
* :func:`changed_stages` asks DVC's own ``status`` which stages it would
  rerun (changed params, deps, command, missing/modified outs, new stages),
  and what changed, in DVC's words (:func:`reasons`).
* :func:`sync_markers` turns that answer into files Snakemake understands:
  a stage DVC would rerun gets one marker per reason under
  ``.snakemake/dvc-status/<rule>/``, inputs of its rule newer than its
  outputs, named by the reason, so Snakemake's own reason for the job says
  which param or file changed.
  Every other input of a rule is ``ancient()``: file mtimes decide nothing,
  so files restored by ``dvc checkout``/``dvc pull`` in any order are not
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

MARKER_DIR = Path(".snakemake") / "dvc-status"
"""Where the main Snakemake process writes what ``dvc status`` reports (:func:`sync_markers`),
relative to the repository root."""

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
        used: The values of ``params`` the stage last ran with, as ``dvc.lock``
            records them, one ``(key, value)`` per leaf
            (``swiss_roll.train.learning_rate``); empty before its first run.
            The Snakefile hands them to the rule as ``params.used``, which the
            report shows beside the stage's outputs.
        desc: The stage's ``desc`` in ``dvc.yaml`` (``dvc stage list``
            shows it), the caption of its outputs in the report.
        resources: The stage's ``meta: {resources: <kind>}``, its entry of
            params.yaml's ``resources`` on a cluster (workflow/cluster.py):
            ``train``, ``sample``, or ``default`` where the stage names none.
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
    used: tuple[tuple[str, object], ...] = ()
    desc: str = ""
    resources: str = "default"

    @property
    def rule_outs(self) -> tuple[str, ...]:
        """Outs to declare as Snakemake outputs: all but ``persist`` directories.

        Snakemake deletes a job's outputs before running it. A ``persist``
        file is declared ``update()`` (:attr:`update_outs`): Snakemake keeps
        it while the job runs and puts the previous version back if the job
        fails, as DVC leaves it (the stage replaces it whole when it
        succeeds). A ``persist`` directory (resume state of an interrupted
        run) is not declared: putting its previous version back would undo
        the failed run's progress. DVC still checks it through ``dvc status``.
        """
        return tuple(o for o in self.outs if o not in self.persist_outs or o not in self.dir_outs)

    @property
    def update_outs(self) -> frozenset[str]:
        """The ``persist`` files: Snakemake outputs flagged ``update()`` (:attr:`rule_outs`)."""
        return self.persist_outs - self.dir_outs

    @property
    def rule_name(self) -> str:
        """Snakemake-safe rule name (non-word characters become ``_``)."""
        return re.sub(r"\W", "_", self.name)

    @property
    def log(self) -> str:
        """The rule's ``log:``, what ``dvc repro`` printed running the stage: ``logs/<stage>.log``
        (``logs/train@mnist.log``; a study's ``logs/studies/<stage>.log``)."""
        dvcfile, _, name = self.name.rpartition(":")
        return (PurePosixPath("logs") / PurePosixPath(dvcfile).parent / f"{name}.log").as_posix()


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
        used=tuple(_used_params(stage.params)),
        desc=" ".join((stage.desc or "").split()),
        resources=str((stage.meta or {}).get("resources") or "default"),
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


def _used_params(params_deps: Iterable) -> Iterable[tuple[str, object]]:
    """Yield ``(key, value)`` for every leaf of the values ``dvc.lock`` records for the stage's
    params (prefixed with the file if not the default one); nothing before its first run."""
    for dep in params_deps:
        file = Path(dep.def_path).as_posix()
        prefix = "" if file == dep.DEFAULT_PARAMS_FILE else f"{file}:"
        recorded = dep.hash_info.value if dep.hash_info and isinstance(dep.hash_info.value, dict) else {}
        for key, value in recorded.items():
            yield from _leaves(f"{prefix}{key}", value)


def _leaves(key: str, value) -> Iterable[tuple[str, object]]:
    if isinstance(value, dict) and value:
        for name, inner in value.items():
            yield from _leaves(f"{key}.{name}", inner)
    else:
        yield key, value


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


def load_pipeline(root: str | os.PathLike[str],
                  status: bool = True) -> tuple[list[StageSpec], dict[str, tuple[str, ...]]]:
    """:func:`load_stages` and, with ``status``, :func:`changed_stages`, from one opening of the
    repository (DVC builds its index once: about a second less on every Snakemake run).

    Under DVC's repository lock, waiting for it: on a cluster every job reads the Snakefile again
    while other jobs' ``dvc repro`` rewrite ``dvc.lock``, which read unlocked can be half-written.

    Returns:
        The stages, and for each stage DVC would rerun what changed, in DVC's words (:func:`reasons`).

    Raises:
        PipelineBusy: another DVC run holds an output it must read (``dvc status`` cannot tell
            while a stage writes it), in one line.
    """
    from dvc.lock import LockError
    from dvc.repo import Repo, lock_repo
    from dvc.stage import PipelineStage

    try:
        with Repo(os.fspath(root), _wait_for_lock=True) as repo, lock_repo(repo):
            stages = [stage for stage in repo.index.stages if isinstance(stage, PipelineStage)]
            specs = [_to_spec(stage, repo.root_dir) for stage in stages]
            report = repo.status() if status else {}
            changed = {_address(stage): reasons(stage, report[stage.addressing])
                       for stage in stages if stage.addressing in report}
    except LockError as error:
        raise PipelineBusy(busy_message(str(error), root)) from None
    _check_unique_rule_names(specs)
    return specs, changed


class PipelineBusy(RuntimeError):
    """Another DVC run (``dvc repro``, a Snakemake job) holds what this one needs."""


def busy_message(dvc_message: str, root: str | os.PathLike[str]) -> str:
    """DVC's lock message (``'<path>' is busy, it is being blocked by:`` and a line per process,
    or ``Unable to acquire lock``) in one line: the path, the processes, what to do."""
    lines = [line.strip() for line in dvc_message.splitlines() if line.strip()]
    held = re.match(r"'(.*)' is busy", lines[0]) if lines else None
    if held is None:
        return ("another DVC run holds the repository lock: wait for it to end (if none runs, remove "
                ".dvc/tmp/lock)")
    path = os.path.relpath(held.group(1), root)
    by = "; ".join(re.sub(r"^\(PID (\d+)\):", r"PID \1:", line) for line in lines if line.startswith("(PID"))
    return (f"another DVC run is writing {path} ({by or 'a process'}): wait for it to end, then run again "
            f"(if no such process runs, remove .dvc/tmp/rwlock)")


def changed_stages(root: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """Return the stages that DVC would rerun, each with what changed (:func:`reasons`).

    Uses DVC's own ``status`` (``dvc status``): a stage is reported when its
    command, params or deps changed, its outs are missing or modified, it is
    new (no ``dvc.lock`` entry yet) or it is ``always_changed``.  Stages that
    are stale only because an upstream stage has not run yet are *not*
    reported; Snakemake reruns those below a job that runs.

    Args:
        root: Repository root.

    Returns:
        Stage names as in :attr:`StageSpec.name`, each with its reasons.
    """
    return load_pipeline(root)[1]


MAX_LEAVES = 4
"""A changed params section lists at most this many of its changed values by name."""


def reasons(stage, entries: list) -> tuple[str, ...]:
    """What ``dvc status`` reports of ``stage`` (its list of entries), one phrase per change:
    ``modified param swiss_roll.train.learning_rate``, ``modified dep dpm/run/train.py``, ``deleted out
    models/mnist.pt``, ``changed command``; ``not in dvc.lock`` for a stage that never ran. A
    tracked params section that changed is named by the values in it that changed (``dvc.lock``
    against the params file), up to :data:`MAX_LEAVES` of them."""
    from dvc.dependency.param import ParamsDependency

    if stage.deps and not any(dep.hash_info and dep.hash_info.value for dep in stage.deps):
        return ("not in dvc.lock",)
    params = {str(dep): dep for dep in stage.deps if isinstance(dep, ParamsDependency)}
    phrases: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            phrases.append(entry)
            continue
        for kind, changes in entry.items():
            noun = "dep" if kind == "changed deps" else "out"
            for path, change in changes.items():
                if isinstance(change, dict):  # a params file: key -> status
                    for key, key_status in change.items():
                        phrases.extend(f"{key_status} param {leaf}" for leaf in _changed_leaves(params.get(path), key))
                else:
                    phrases.append(f"{change} {noun} {path}")
    return tuple(phrases)


def _changed_leaves(dep, key: str) -> list[str]:
    """The dotted keys under ``key`` whose value differs between ``dvc.lock`` and the params file
    (``key`` itself where it is no section, or more than :data:`MAX_LEAVES` of them changed)."""
    recorded = dep.hash_info.value if dep is not None and dep.hash_info and dep.hash_info.value else {}
    now = _params_file(dep.fs_path) if dep is not None else {}
    for part in key.split("."):
        now = now.get(part) if isinstance(now, dict) else None
    old, new = dict(_leaves(key, recorded.get(key))), dict(_leaves(key, now))
    leaves = [leaf for leaf in {**old, **new} if old.get(leaf, ...) != new.get(leaf, ...)]
    if not leaves or leaves == [key] or len(leaves) > MAX_LEAVES:
        return [key if len(leaves) <= MAX_LEAVES else f"{key} ({len(leaves)} values)"]
    return leaves


_PARAMS_FILES: dict[tuple, dict] = {}


def _params_file(path: str) -> dict:
    """A params file's values, parsed once while it is unchanged (every changed stage asks);
    empty if it cannot be read (DVC says why itself when the stage runs)."""
    import yaml
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in _PARAMS_FILES:
            with open(path) as file:
                _PARAMS_FILES[key] = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        return _PARAMS_FILES[key]
    except (OSError, yaml.YAMLError):
        return {}


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


def sync_markers(root: str | os.PathLike[str], stages: Iterable[StageSpec],
                 changed: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Write, for each stage DVC would rerun, one marker file per reason, named by it:
    ``.snakemake/dvc-status/<rule>/modified param swiss_roll.train.learning_rate``. They are the
    rule's only inputs that are not ``ancient()`` and they are new (a new mtime and new content:
    Snakemake >= 8 ignores a newer input whose checksum it has seen), so Snakemake reruns the
    stage and gives as its reason ``Updated input files: .snakemake/dvc-status/<rule>/<what DVC
    says changed>``. Every earlier marker is removed first: a function of DVC's state alone, so a
    dry run (``snakemake -n``) of a change then undone plans nothing at the next parse, and no
    project file changes (the markers live in Snakemake's own ``.snakemake/``). The set of a
    rule's inputs thus varies, which Snakemake's ``input`` rerun trigger would take for a change:
    the workflow profile (profiles/default) keeps the ``mtime`` trigger alone. (Snakemake offers
    no parse-time ``--forcerun``: its DAG settings are attached to the workflow only after the
    Snakefile is read.)

    Returns:
        Each stage's marker paths relative to ``root`` (none for a stage DVC finds up to date).
    """
    import shutil

    folder = Path(root) / MARKER_DIR
    shutil.rmtree(folder, ignore_errors=True)
    markers: dict[str, list[str]] = {}
    for stage in stages:
        markers[stage.name] = []
        for reason in changed.get(stage.name, ()):
            text = f"dvc status: {stage.name}: {reason} ({time.time_ns()})\n"
            path = folder / stage.rule_name / reason
            try:
                if reason.startswith("/") or ".." in PurePosixPath(reason).parts:
                    raise OSError  # a path outside the project
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            except OSError:  # or a folder of another reason's (dep data/x and dep data/x/y): one flat name
                path = folder / stage.rule_name / reason.replace("/", "\u2215")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            markers[stage.name].append(path.relative_to(root).as_posix())
    return markers


def read_markers(root: str | os.PathLike[str], stages: Iterable[StageSpec]) -> dict[str, list[str]]:
    """The markers the main Snakemake process wrote (:func:`sync_markers`), for a job's process,
    which reads the Snakefile again and must not change them."""
    folder = Path(root) / MARKER_DIR
    return {stage.name: sorted(path.relative_to(root).as_posix() for path in (folder / stage.rule_name).rglob("*")
                               if path.is_file()) for stage in stages}


def rule_inputs(
    stage: StageSpec, stages: Iterable[StageSpec]
) -> tuple[list[str], list[str]]:
    """Split a stage's deps into upstream outputs and source files.

    A dep that equals, lies inside, or contains rule outputs of other stages
    (:attr:`StageSpec.rule_outs`) is replaced by those outputs, so Snakemake
    links the rules like DVC's DAG; a ``persist`` directory of another stage
    (not a rule output) by that stage's other outputs, so the rule still runs
    after it.  Remaining deps are source files. The
    Snakefile marks both ``ancient()``: DVC's content hashes (through the
    markers, :func:`sync_markers`), not mtimes, decide what is stale. Outs of a ``gate``
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
        if not producers:  # a persist directory of another stage: no rule output, so after that stage's others
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
    no machine's path is written into the command. What DVC prints goes to
    the console (a SLURM job's log) and to the rule's ``log:``
    (:attr:`StageSpec.log`); Snakemake's shell sets ``pipefail``, so the
    job fails when DVC does.

    Returns:
        A command template for Snakemake's ``shell:`` directive.
    """
    return "python -m dvc --wait-for-lock repro --single-item {params.stage:q} 2>&1 | tee {log:q}"


def shown_command(stage: StageSpec) -> str:
    """The rule's code as ``snakemake -p``, an error and the report show it: :func:`shell_command`
    after a comment naming the stage and its ``dvc.yaml`` command, what the job really runs (the
    Snakefile sets it as the rule's ``shellcmd``; the job runs :func:`shell_command` itself)."""
    what = "; ".join(" ".join(line.split()) for line in stage.cmd.splitlines())
    what = what.replace("{", "{{").replace("}", "}}")  # literal braces for Snakemake's str.format
    return f"# DVC stage {stage.name}: {what}\n{shell_command()}"


def interpreter_path(path: str) -> str:
    """``path`` (a ``PATH`` value) with the running interpreter's directory first."""
    return os.pathsep.join([os.path.dirname(sys.executable), path])


REPORT_CATEGORIES = (("results/curves/*.png", "Learning curves"), ("results/table*.csv", "Tables"),
                     ("results/*.png", "Figures"))
"""Outputs that ``snakemake --report`` shows, by category (the first pattern that matches)."""
REPORT_CAPTION = "report/output.rst"
"""The caption of each of them (a template of the rule's params: the stage's ``desc``, command, values)."""


def report_category(path: str) -> str | None:
    """The ``snakemake --report`` category of output ``path``, or None if the report leaves it out."""
    for pattern, category in REPORT_CATEGORIES:
        if PurePosixPath(path).match(pattern) and path.count("/") == pattern.count("/"):
            return category
    return None


def report_flag(path: str) -> dict[str, str] | None:
    """The arguments of Snakemake's ``report()`` for output ``path`` (category, caption), or None."""
    category = report_category(path)
    return {"category": category, "caption": REPORT_CAPTION} if category else None


def status_line(name: str, reasons: dict[str, tuple[str, ...]], stale: Iterable[str]) -> str:
    """What ``dvc status`` says of stage ``name``, for the report: ``up to date``, its reasons, or
    that a stage above it changed."""
    if name in reasons:
        return "changed: " + "; ".join(reasons[name])
    return "stale: below a stage that changed" if name in stale else "up to date"


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
