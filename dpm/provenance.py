"""Where a number came from: the git commit of the code that computed it."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """The commit of the code that ran, with ``-dirty`` if tracked files under dpm/ or pipeline/
    differ from it; ``unknown`` outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dpm", "pipeline"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")
