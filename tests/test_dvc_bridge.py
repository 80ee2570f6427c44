"""End-to-end tests of the DVC -> Snakemake bridge (Snakefile + dvc_bridge).

Every test builds a tiny throw-away DVC project in ``tmp_path``::

    params a.x, seed.txt -> a1 (a1.txt) -> a2 (directory a2/) --\\
                                                                  join
    params b.y ------------> b1 (b1.txt) -> b2 (b2.txt) ----------/

copies the repository's ``Snakefile`` and ``workflow/dvc_bridge.py`` into it
and drives ``dvc`` and ``snakemake`` as subprocesses from the interpreter's
own bin directory, so the tests also work inside CI's virtualenv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
sys.path.insert(0, str(REPO_ROOT))

from workflow import dvc_bridge  # noqa: E402

PARALLEL_PAUSE_S = 2  # a1/b1 sleep time when checking that they overlap
RERUN_ON_A_X = {"a1", "a2", "join"}  # chain a and the join, never chain b
OUTS = {"a1": "a1.txt", "a2": "a2", "b1": "b1.txt", "b2": "b2.txt",
        "join": "join.json"}


def _first_step(name: str, key: str) -> dict:
    """Stage reading param ``key`` into ``<name>.txt`` (and timing info)."""
    group, leaf = key.split(".")
    code = (
        "import time, yaml; t = time.time(); time.sleep(${pause}); "
        f"v = yaml.safe_load(open('params.yaml'))['{group}']['{leaf}']; "
        f"open('{name}.txt', 'w').write(str(v)); "
        f"open('{name}.time', 'w').write('%s %s' % (t, time.time()))"
    )
    return {"cmd": f'python -c "{code}"', "params": [key],
            "outs": [f"{name}.txt"]}


def _pipeline(pause: float) -> dict:
    """The dvc.yaml of the test project (templated with ``vars``)."""
    a2 = ("import os; os.makedirs('a2', exist_ok=True); "
          "open('a2/v.txt', 'w').write(open('a1.txt').read() + '!')")
    b2 = "open('b2.txt', 'w').write(open('b1.txt').read() + '?')"
    join = ("import json; json.dump(dict(v=open('a2/v.txt').read() "
            "+ open('b2.txt').read()), open('join.json', 'w'))")
    return {"vars": [{"pause": pause}], "stages": {
        "a1": {**_first_step("a1", "a.x"), "deps": ["seed.txt"]},
        "a2": {"cmd": f'python -c "{a2}"', "deps": ["a1.txt"], "outs": ["a2"]},
        "b1": _first_step("b1", "b.y"),
        "b2": {"cmd": f'python -c "{b2}"', "deps": ["b1.txt"],
               "outs": ["b2.txt"]},
        "join": {"cmd": f'python -c "{join}"', "deps": ["a2/v.txt", "b2.txt"],
                 "metrics": ["join.json"]},
    }}


def run(project: Path, tool: str, *args: str) -> str:
    """Run ``tool`` (git, dvc, snakemake) in ``project``; return its output.

    Fails the test, showing the output, if the command fails.
    """
    exe = shutil.which("git") if tool == "git" else str(BIN_DIR / tool)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([exe, *args], cwd=project, env=env, text=True,
                          capture_output=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{tool} {' '.join(args)} failed:\n{output}"
    return output


def make_project(tmp_path: Path, pause: float = 0) -> Path:
    """Create a git + DVC project with the pipeline, Snakefile and bridge.

    Args:
        tmp_path: Empty directory to create the project in.
        pause: Seconds that stages a1 and b1 sleep.

    Returns:
        ``tmp_path``.
    """
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, "dvc", "init", "-q")
    run(tmp_path, "dvc", "config", "core.check_update", "false")
    (tmp_path / ".dvcignore").write_text(".snakemake/\n.snakemake_timestamp\n")
    (tmp_path / ".gitignore").write_text(".snakemake/\n*.time\n")
    write_params(tmp_path, x=1, y=2)
    (tmp_path / "seed.txt").write_text("source data\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(_pipeline(pause)))
    shutil.copy(REPO_ROOT / "Snakefile", tmp_path / "Snakefile")
    (tmp_path / "workflow").mkdir()
    shutil.copy(REPO_ROOT / "workflow" / "dvc_bridge.py", tmp_path / "workflow")
    for name in ("profiles/default/config.yaml", "schemas/config.schema.yaml", "report/workflow.rst",
                 "report/output.rst"):  # the workflow profile (rerun triggers), the config schema, the report
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project whose stages do not sleep."""
    return make_project(tmp_path)


def write_params(project: Path, x: int, y: int) -> None:
    """Write ``params.yaml`` with ``a.x`` and ``b.y``."""
    params = {"a": {"x": x}, "b": {"y": y}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def dvc_status(project: Path) -> dict:
    """``dvc status --json`` as a dict (empty when everything is clean)."""
    return json.loads(run(project, "dvc", "status", "--json"))


def planned_jobs(project: Path) -> set[str]:
    """Stage rules that ``snakemake -n`` would run (``all`` excluded)."""
    out = run(project, "snakemake", "-n", "--cores", "1")
    return set(re.findall(r"^(?:local)?rule (\w+):", out, re.M)) - {"all"}


def out_mtimes(project: Path) -> dict[str, int]:
    """mtime (ns) of each stage's output file (a2's file inside its dir)."""
    paths = {**OUTS, "a2": "a2/v.txt"}
    return {s: (project / p).stat().st_mtime_ns for s, p in paths.items()}


def interval(project: Path, stage: str) -> tuple[float, float]:
    """(start, end) wall-clock time of a stage's command."""
    start, end = (project / f"{stage}.time").read_text().split()
    return float(start), float(end)


def test_load_stages_resolves_dvc_yaml(project: Path) -> None:
    """The bridge sees DVC's resolved stages, independent of the cwd."""
    stages = {s.name: s for s in dvc_bridge.load_stages(project)}

    assert list(stages) == ["a1", "a2", "b1", "b2", "join"]
    assert "time.sleep(0)" in stages["a1"].cmd  # ${pause} was resolved
    assert stages["a1"].params == ("a.x",)
    assert stages["join"].deps == ("a2/v.txt", "b2.txt")
    assert stages["join"].outs == ("join.json",)  # metrics outs included
    assert stages["a2"].dir_outs == frozenset({"a2"})
    assert dvc_bridge.rule_inputs(stages["join"], stages.values()) == (
        ["a2", "b2.txt"], [])
    assert dvc_bridge.rule_inputs(stages["a1"], stages.values()) == (
        [], ["seed.txt"])


def test_persist_directories_are_not_snakemake_outputs_and_persist_files_are_updated() -> None:
    """Snakemake must not own (and delete, or put back) a ``persist: true`` directory; a
    ``persist: true`` file is an ``update()`` output (kept during the job, put back if it fails)."""
    def spec(name, deps=(), outs=(), persist=(), dirs=()):
        return dvc_bridge.StageSpec(name, "true", tuple(deps), tuple(outs),
                                    frozenset(dirs), frozenset(persist), ())
    train = spec("train@x", outs=["m.pt", "ckpt", "curve.csv"], persist=["ckpt", "curve.csv"], dirs=["ckpt"])
    report = spec("report", deps=["m.pt", "ckpt/last"])
    curve = spec("curve", deps=["ckpt/last"])  # reads only the persist directory: still ordered after train

    assert train.rule_outs == ("m.pt", "curve.csv") and train.update_outs == {"curve.csv"}
    assert train.rule_name == "train_x"
    assert dvc_bridge.rule_inputs(report, [train, report]) == (["m.pt", "curve.csv"], [])
    assert dvc_bridge.rule_inputs(curve, [train, curve]) == (["m.pt", "curve.csv"], [])


@pytest.mark.pipeline
def test_a_failed_stage_leaves_its_persist_file_under_both_tools(project: Path) -> None:
    """A stage whose output is ``persist: true`` and written whole at its end: a run that fails
    first (a bad value) leaves the previous file, under ``dvc repro --single-item`` (DVC does not
    remove it) and under Snakemake (``update()``: not removed, put back); both then agree."""
    code = ("import sys, yaml; x = yaml.safe_load(open('params.yaml'))['a']['x']; "
            "sys.exit('error: a.x: negative') if x < 0 else open('kept.txt', 'w').write(str(x))")
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    pipeline["stages"]["keep"] = {"cmd": f'python -c "{code}"', "params": ["a.x"], "deps": ["seed.txt"],
                                  "outs": [{"kept.txt": {"persist": True}}]}
    pipeline["stages"]["after"] = {"cmd": "python -c \"open('after.txt', 'w').write(open('kept.txt').read())\"",
                                   "deps": ["kept.txt"], "outs": ["after.txt"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    run(project, "snakemake", "--cores", "1")
    assert (project / "after.txt").read_text() == "1" and dvc_status(project) == {}
    write_params(project, x=-1, y=2)
    for command in (("dvc", "repro", "--single-item", "keep"), ("snakemake", "--cores", "1", "after.txt")):
        failed = subprocess.run([str(BIN_DIR / command[0]), *command[1:]], cwd=project, capture_output=True, text=True)
        assert failed.returncode != 0 and "a.x: negative" in failed.stdout + failed.stderr
        assert (project / "kept.txt").read_text() == "1", command
    assert set(dvc_status(project)) == {"keep", "a1"}
    assert {"keep", "after", "a1"} <= planned_jobs(project)
    write_params(project, x=1, y=2)
    assert dvc_status(project) == {} and planned_jobs(project) == set()


@pytest.mark.pipeline
def test_snakemake_builds_all_and_dvc_agrees(tmp_path: Path) -> None:
    """(i) snakemake builds the final target in parallel; dvc is clean."""
    project = make_project(tmp_path, pause=PARALLEL_PAUSE_S)
    run(project, "snakemake", "--cores", "2", "join.json")

    assert json.loads((project / "join.json").read_text()) == {"v": "1!2?"}
    assert dvc_status(project) == {}
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(OUTS)
    assert "Running stage" not in run(project, "dvc", "repro", "--dry")
    (a_start, a_end), (b_start, b_end) = (interval(project, s)
                                          for s in ("a1", "b1"))
    assert a_start < b_end and b_start < a_end, "a1 and b1 did not overlap"


@pytest.mark.pipeline
def test_dvc_repro_then_snakemake_has_nothing_to_do(project: Path) -> None:
    """(ii) after a plain ``dvc repro`` Snakemake plans no job."""
    run(project, "dvc", "repro")

    assert planned_jobs(project) == set()

    os.utime(project / "seed.txt")  # newer, same content: DVC does not care
    assert dvc_status(project) == {}
    assert planned_jobs(project) == set()


@pytest.mark.pipeline
def test_param_change_reruns_only_its_chain(project: Path) -> None:
    """(iii) changing a.x reruns chain a and join, never chain b."""
    run(project, "snakemake", "--cores", "2")
    before = out_mtimes(project)

    write_params(project, x=5, y=2)
    assert set(dvc_status(project)) == {"a1"}  # DVC: the stage using a.x
    assert planned_jobs(project) == RERUN_ON_A_X
    run(project, "snakemake", "--cores", "2")

    after = out_mtimes(project)
    assert {s for s in OUTS if after[s] != before[s]} == RERUN_ON_A_X
    assert json.loads((project / "join.json").read_text()) == {"v": "5!2?"}
    assert dvc_status(project) == {}

    write_params(project, x=6, y=2)
    repro = run(project, "dvc", "repro")
    ran = set(re.findall(r"Running stage '(\w+)'", repro))
    assert ran == RERUN_ON_A_X
    assert planned_jobs(project) == set()


GATE_CHECK = ("import sys, yaml; x = yaml.safe_load(open('params.yaml'))['a']['x']; "
              "sys.exit(0) if x >= 0 else sys.exit('error: a.x: must be >= 0')")


def add_gate(project: Path) -> None:
    """A gate stage (``meta: {gate: <check>}``) whose out every other stage depends on."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text())
    check = f'python -c "{GATE_CHECK}"'
    gate = {"cmd": f"{check} && echo ok > gate.ok", "deps": ["params.yaml"],
            "outs": [{"gate.ok": {"cache": False}}], "meta": {"gate": check}}
    spec["stages"] = {"gate": gate, **spec["stages"]}
    for stage in spec["stages"].values():
        if stage is not gate:
            stage["deps"] = [*stage.get("deps", []), "gate.ok"]
    (project / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.mark.pipeline
def test_a_gate_is_checked_at_parse_time_gets_no_rule_and_is_recorded_after(project: Path) -> None:
    add_gate(project)
    stages = {s.name: s for s in dvc_bridge.load_stages(project)}
    assert stages["gate"].gate.startswith("python -c")
    assert dvc_bridge.rule_inputs(stages["a1"], stages.values()) == ([], ["seed.txt"])  # no gate.ok
    run(project, "snakemake", "--cores", "2")
    assert "gate" not in planned_jobs(project)
    assert dvc_status(project) == {}  # the gate was recorded (dvc repro --single-item gate)
    write_params(project, x=-1, y=2)
    for command in (("snakemake", "--cores", "1"), ("dvc", "repro")):
        exe = str(BIN_DIR / command[0])
        failed = subprocess.run([exe, *command[1:]], cwd=project, capture_output=True, text=True)
        assert failed.returncode != 0 and "error: a.x: must be >= 0" in failed.stderr + failed.stdout
        assert (project / "a1.txt").read_text() == "1"  # nothing rerun, nothing removed
    write_params(project, x=3, y=2)
    run(project, "snakemake", "--cores", "2")
    assert (project / "a1.txt").read_text() == "3" and dvc_status(project) == {}


def add_study(project: Path) -> None:
    """A second pipeline file, ``studies/dvc.yaml``, whose stage reads ``join.json`` and ``a.x``."""
    code = ("import json, yaml; x = yaml.safe_load(open('params.yaml'))['a']['x']; "
            "open('extra.txt', 'w').write(json.load(open('join.json'))['v'] + str(x))")
    (project / "studies").mkdir()
    (project / "studies" / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"extra": {
        "wdir": "..", "cmd": f'python -c "{code}"', "deps": ["join.json"], "params": ["a.x"],
        "outs": ["extra.txt"]}}}))


@pytest.mark.pipeline
def test_a_study_is_built_on_request_only(project: Path) -> None:
    """Stages of another dvc.yaml (the studies) have rules, but are neither in ``all`` nor in a
    plain ``dvc repro``: each tool builds them when asked, and then both agree they are done."""
    add_study(project)
    stages = {s.name: s for s in dvc_bridge.load_stages(project)}
    study = stages["studies/dvc.yaml:extra"]
    assert (study.deps, study.outs, study.params) == (("join.json",), ("extra.txt",), ("a.x",))
    assert not study.default and all(s.default for name, s in stages.items() if s is not study)

    run(project, "snakemake", "--cores", "1")
    run(project, "dvc", "repro")
    assert not (project / "extra.txt").exists()
    assert planned_jobs(project) == set()

    run(project, "snakemake", "--cores", "1", "extra.txt")
    assert (project / "extra.txt").read_text() == "1!2?1"
    assert dvc_status(project) == {}
    write_params(project, x=3, y=2)
    run(project, "dvc", "repro", "studies/dvc.yaml")
    assert (project / "extra.txt").read_text() == "3!2?3"
    assert planned_jobs(project) == set()
    assert dvc_status(project) == {}


def dry_run(project: Path) -> str:
    return run(project, "snakemake", "-n", "--cores", "1")


@pytest.mark.pipeline
def test_snakemake_gives_dvcs_reason_and_each_job_logs_to_logs_stage(project: Path) -> None:
    """The reason Snakemake gives for a job is what `dvc status` says changed (a marker named by
    it); each job's DVC output is in logs/<stage>.log."""
    assert "input: seed.txt, .snakemake/dvc-status/a1/not in dvc.lock" in dry_run(project)  # never run
    run(project, "snakemake", "--cores", "2")
    assert "Running stage 'a1'" in (project / "logs/a1.log").read_text()
    assert (project / "logs/join.log").exists()
    write_params(project, x=5, y=2)
    (project / "seed.txt").write_text("other data\n")
    plan = dry_run(project)
    reason = next(line for line in plan.splitlines() if "reason:" in line and "dvc-status/a1/" in line)
    assert "reason: Updated input files:" in reason
    assert ".snakemake/dvc-status/a1/modified param a.x" in reason and "dvc-status/a1/modified dep seed.txt" in reason
    assert "dvc-status" not in plan.split("rule b1")[-1].split("rule ")[0]  # chain b: nothing changed
    write_params(project, x=1, y=2)
    (project / "seed.txt").write_text("source data\n")
    assert planned_jobs(project) == set() and not list((project / ".snakemake/dvc-status").rglob("*.*"))


def test_a_changed_section_is_named_by_the_values_in_it_that_changed(tmp_path: Path) -> None:
    class Dep:  # a params dependency: what dvc.lock recorded, and its file
        hash_info = type("HashInfo", (), {"value": {"s.train": {"lr": 0.01, "n": 5, "opt": {"b1": 0.9}}}})()

        def __init__(self, now, name):
            self.fs_path = str(tmp_path / name)
            (tmp_path / name).write_text(yaml.safe_dump({"s": {"train": now}}))

    changed = dvc_bridge._changed_leaves(Dep({"lr": 0.02, "n": 5, "opt": {"b1": 0.8}}, "a.yaml"), "s.train")
    assert changed == ["s.train.lr", "s.train.opt.b1"]
    many = {"lr": 1, "n": 1, "opt": {"b1": 1}, "x": 1, "y": 1}
    assert dvc_bridge._changed_leaves(Dep(many, "b.yaml"), "s.train") == ["s.train (5 values)"]
    assert dvc_bridge._changed_leaves(None, "s.x") == ["s.x"]


@pytest.mark.pipeline
def test_snakemake_config_is_refused_in_one_line(project: Path) -> None:
    failed = subprocess.run([str(BIN_DIR / "snakemake"), "-n", "--cores", "1", "--config", "profile=smoke"],
                            cwd=project, capture_output=True, text=True)
    errors = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error:")]
    assert failed.returncode != 0 and len(errors) == 1 and "Traceback" not in failed.stderr
    assert errors[0].startswith("error: snakemake --config profile='smoke': this workflow takes no config")
    assert "params.yaml" in errors[0]


@pytest.mark.pipeline
def test_the_report_captions_each_result_with_its_stage_command_and_values(project: Path) -> None:
    spec = yaml.safe_load((project / "dvc.yaml").read_text())
    spec["stages"]["table"] = {"desc": "A table of a and b.",
                               "cmd": "mkdir -p results && cp join.json results/table9.csv",
                               "deps": ["join.json"], "params": ["a.x"], "outs": ["results/table9.csv"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump(spec))
    run(project, "snakemake", "--cores", "2")
    log = run(project, "snakemake", "--report", "report.html")
    assert "Missing metadata" not in log
    page = (project / "report.html").read_text(errors="replace")
    for text in ("table9.csv", "A table of a and b.", "cp join.json results/table9.csv", "a.x", "up to date"):
        assert text in page, text


@pytest.mark.pipeline
def test_snakemake_beside_a_running_dvc_stage_says_so_in_one_line(project: Path) -> None:
    """While another DVC run writes a stage's output (DVC's rwlock), ``snakemake -n`` cannot ask
    ``dvc status``: one line naming the output and the process, not DVC's LockError traceback."""
    from dvc.fs import LocalFileSystem
    from dvc.rwlock import rwlock
    run(project, "dvc", "repro")
    held = str(project / "b1.txt")
    with rwlock(str(project / ".dvc" / "tmp"), LocalFileSystem(), "dvc repro b1", [], [held], False):
        failed = subprocess.run([str(BIN_DIR / "snakemake"), "-n", "--cores", "1"], cwd=project,
                                capture_output=True, text=True)
    assert failed.returncode != 0
    errors = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error:")]
    assert errors == [f"error: another DVC run is writing b1.txt (PID {os.getpid()}: dvc repro b1): wait for it "
                      "to end, then run again (if no such process runs, remove .dvc/tmp/rwlock)"]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert planned_jobs(project) == set()  # released: as before
