"""workflow/params.py records the profile where DVC's composition reads it; a refused
``dvc exp run -S`` composition is put back by check_params (workflow/hydra_plugins/): both in a
copy of conf/ (the end-to-end runs through DVC are in tests/test_pipeline.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpm.base import config as cfg
from pipeline import check_params
from workflow import params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """conf/ as the working tree has it, its profile quick, params.yaml composed; the cwd."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    params.set_project_profile("quick")
    params.compose_file([])
    return tmp_path


def dvc_compose(folder: Path, overrides: list[str]) -> dict:
    """params.yaml as ``dvc exp run -S`` composes it (Hydra, conf/config.yaml's defaults)."""
    from dvc.utils.hydra import compose_and_dump
    out = folder / "dvc-composed.yaml"
    compose_and_dump(str(out), str(folder / "conf"), None, "config", str(folder), overrides)
    return cfg.read_yaml(out)


def test_a_profile_given_to_the_command_becomes_the_projects_profile(project, capsys):
    before = (project / "conf/config.yaml").read_text()
    params.main(["profile=smoke"])
    after = (project / "conf/config.yaml").read_text()
    assert "the project's profile is smoke" in capsys.readouterr().out
    # one line changed, in the defaults list: every comment and value kept
    assert [line for line in after.splitlines() if line not in before.splitlines()] == ["  - profile: smoke"]
    assert len(after.splitlines()) == len(before.splitlines())
    assert cfg.read_yaml(project / "params.yaml")["profile"] == "smoke"
    # what `dvc exp run -S key=value` composes now: the smoke profile with the one value changed
    composed = dvc_compose(project, ["swiss_roll.train.learning_rate=0.02"])
    assert composed == cfg.compose(["swiss_roll.train.learning_rate=0.02"], project / "conf")
    assert (composed["profile"], composed["swiss_roll"]["train"]["n_iterations"]) == ("smoke", 100)
    # a value alone keeps the profile; `-S profile=paper` in `dvc exp run` does not touch conf/
    params.main(["mnist.train.n_iterations=50"])
    assert cfg.read_yaml(project / "params.yaml")["profile"] == "smoke"
    assert "- profile: smoke" in (project / "conf/config.yaml").read_text()


def test_an_unknown_profile_changes_neither_file(project, capsys):
    conf, composed = (project / "conf/config.yaml").read_text(), (project / "params.yaml").read_text()
    with pytest.raises(SystemExit):
        params.main(["profile=huge"])
    assert "error: conf/: cannot compose" in capsys.readouterr().err
    assert (project / "conf/config.yaml").read_text() == conf and (project / "params.yaml").read_text() == composed
    with pytest.raises(cfg.ConfigError, match="no profile 'huge'"):
        params.set_project_profile("huge")


def test_the_plugin_dvc_loads_keeps_params_yaml_before_the_composition(project):
    """As `dvc exp run -S` does (.dvc/config: hydra.plugins_path = workflow): Hydra's plugins are
    loaded from workflow/, then the composition is written over params.yaml. A fresh process,
    since Hydra scans for plugins once per process."""
    (project / ".dvc/tmp").mkdir(parents=True)
    hand_edited = (project / "params.yaml").read_text().replace("learning_rate: 0.01", "learning_rate: 0.015")
    (project / "params.yaml").write_text(hand_edited)
    code = ("import os; from dvc.utils.hydra import compose_and_dump; "
            f"compose_and_dump('params.yaml', 'conf', None, 'config', {str(ROOT / 'workflow')!r}, "
            "['swiss_roll.train.n_iterations=abc']); print(os.environ['DPM_PARAMS_BEFORE_EXP'])")
    kept = subprocess.run([sys.executable, "-c", code.replace("'conf'", repr(str(project / "conf")))],
                          cwd=project, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(kept) == (project / ".dvc/tmp/params.yaml.before-exp").resolve()
    assert Path(kept).read_text() == hand_edited
    assert yaml.safe_load((project / "params.yaml").read_text())["swiss_roll"]["train"]["n_iterations"] == "abc"


def test_check_params_puts_back_the_file_it_refuses_inside_an_experiment(project, monkeypatch):
    hand_edited = (project / "params.yaml").read_text().replace("learning_rate: 0.01", "learning_rate: 0.015")
    refused = hand_edited.replace("n_iterations: 8000", "n_iterations: abc")
    (project / "params.yaml").write_text(refused)
    with pytest.raises(cfg.ConfigError, match=r"swiss_roll\.train\.n_iterations: .*") as outside:
        check_params.main([])  # dvc repro, Snakemake: the file is the user's own, left as it is
    assert "is back as it was" not in str(outside.value) and (project / "params.yaml").read_text() == refused
    before = project / "before.yaml"
    before.write_text(hand_edited)
    monkeypatch.setenv(check_params.BEFORE_EXP_ENV, str(before))
    with pytest.raises(cfg.ConfigError, match=r"^swiss_roll\.train\.n_iterations: .*params\.yaml is back as it was"):
        check_params.main([])
    assert (project / "params.yaml").read_text() == hand_edited
    check_params.main([])  # valid: nothing to put back, nothing changed
    assert (project / "params.yaml").read_text() == hand_edited and os.path.exists(before)
