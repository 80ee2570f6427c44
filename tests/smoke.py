"""The smoke project the pipeline tests run: a copy of this working tree set to the smoke profile
(copy_project), built once per session by Snakemake (conftest.py's ``smoke_build``), and cheap
copies of the built one (copy_built) for the tests that change a project: its outputs, DVC cache,
lock and Snakemake's records come along, so nothing is retrained that the test does not change."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


def run(folder: Path, *command: str, fail: bool = False) -> str:
    """Run a command as a user with this environment activated (stages call plain `python`);
    every stage appends the project files it imported to ``imports.jsonl``. It must succeed, or
    with ``fail`` exit non-zero."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "DPM_IMPORTS_LOG": str(folder / "imports.jsonl")}
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    assert (result.returncode != 0) == fail, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


# What the README's own steps write in a working copy (a hand edit, `dvc exp run`, `dvc repro`):
# the tests take these as committed, so that they pass whatever the user did there.
USER_STATE = ("params.yaml", "dvc.lock", "studies/dvc.lock")


def copy_project(folder: Path) -> Path:
    """The tracked files (as a clean clone has them), the smoke profile, a fresh git repository.

    The code and conf/ as the working tree has them, new files git does not ignore included
    (what is being tested); ``USER_STATE`` as committed; no DVC remote (``dvc remote add`` writes
    one into .dvc/config) and no results/.
    Pinned to the CPU (``device: cpu`` in the copy's conf/, so every composition keeps it): the
    tests give the same result on a GPU machine, and their bit-identity checks are the CPU's."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file() and not name.startswith("results/"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    for name in USER_STATE:
        committed = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=ROOT, capture_output=True)
        if committed.returncode == 0:
            (folder / name).write_bytes(committed.stdout)
    _remove_remotes(folder / ".dvc" / "config")
    conf = folder / "conf" / "config.yaml"
    pinned = re.sub(r"(?m)^device: .*$", "device: cpu", conf.read_text())
    assert "device: cpu" in pinned, "conf/config.yaml has no top-level device key"
    conf.write_text(pinned)
    run(folder, "python", "-m", "workflow.params", "profile=smoke")
    (folder / ".gitignore").write_text((folder / ".gitignore").read_text() + "imports.jsonl\n")
    run(folder, "git", "init", "-q")
    run(folder, "git", "-c", "user.email=ci@dpm", "-c", "user.name=ci", "commit", "-qm", "copy", "--allow-empty")
    return folder


def _remove_remotes(dvc_config: Path) -> None:
    """DVC's project config without its remotes (nor a default one): a test adds its own."""
    from configobj import ConfigObj  # DVC's own config format
    config = ConfigObj(str(dvc_config))
    for section in [name for name in config if name.startswith("remote ")]:
        del config[section]
    config.get("core", {}).pop("remote", None)
    config.write()


def set_param(folder: Path, key: str, value) -> None:
    """Change one value of params.yaml by hand, as a user of `dvc repro` or Snakemake may."""
    path = folder / "params.yaml"
    data = yaml.safe_load(path.read_text())
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def commit_all(folder: Path, message: str, allow_empty: bool = False) -> None:
    """Commit everything in the project's git repository, as its user would."""
    run(folder, "git", "add", "-A")
    run(folder, "git", "-c", "user.email=ci@dpm", "-c", "user.name=ci", "commit", "-qm", message,
        *(["--allow-empty"] if allow_empty else []))


def changed(folder: Path) -> set[str]:
    return set(json.loads(run(folder, tool("dvc"), "status", "--json", "dvc.yaml")))  # the studies run on request


def stages_run(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}


def build(folder: Path) -> Path:
    """A copy of the project (copy_project) with every stage's outputs (Snakemake's rule all) and
    the ablation study (a study: built on request), as `snakemake` builds them."""
    copy_project(folder)
    run(folder, tool("snakemake"), "--cores", "2")
    run(folder, tool("snakemake"), "--cores", "2", "results/ablations.csv")
    return folder


def copy_built(built: Path, folder: Path) -> Path:
    """A copy of a built project to change at will: every file as it is (the DVC cache, dvc.lock,
    Snakemake's records, git's), their modification times kept, so that both tools find it up to
    date as they find ``built``. Its ``imports.jsonl`` holds the build's records too."""
    shutil.copytree(built, folder, symlinks=True, dirs_exist_ok=True)
    return folder
