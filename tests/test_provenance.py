"""A number's git commit says ``-dirty`` whenever the code or the params it ran with differ from it."""

import subprocess

from dpm.base.provenance import git_commit


def git(folder, *args):
    subprocess.run(["git", "-c", "user.email=ci@dpm", "-c", "user.name=ci", *args], cwd=folder, check=True,
                   capture_output=True)


def test_the_commit_is_dirty_when_code_or_params_differ_from_it(tmp_path, monkeypatch):
    for name, text in (("dpm/a.py", "x = 1\n"), ("pipeline/b.py", "y = 2\n"), ("params.yaml", "lr: 0.01\n"),
                       ("README.md", "notes\n")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "first")
    monkeypatch.chdir(tmp_path)
    clean = git_commit()
    assert len(clean) == 12 and not clean.endswith("-dirty")
    (tmp_path / "README.md").write_text("other notes\n")  # neither code nor params
    assert git_commit() == clean
    for name, text in (("params.yaml", "lr: 0.02\n"), ("dpm/a.py", "x = 2\n"), ("pipeline/new.py", "")):
        original = (tmp_path / name).read_text() if (tmp_path / name).exists() else None
        (tmp_path / name).write_text(text)
        assert git_commit() == clean + "-dirty", name
        if original is None:
            (tmp_path / name).unlink()
        else:
            (tmp_path / name).write_text(original)
        assert git_commit() == clean, name


def test_outside_a_checkout_the_commit_is_unknown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit() == "unknown"
