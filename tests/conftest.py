"""Every test (and every stage a test runs) reads raw data from the offline mirror: the folder
named by DPM_DATA_MIRROR, else ../shared/data-mirror beside the repository (as on the team's
machines). The pipeline tests share one smoke build (``smoke_build``)."""

import os
import shutil
from pathlib import Path

import pytest

MIRROR_CANDIDATES = [Path(__file__).resolve().parents[2] / "shared" / "data-mirror"]

if not os.environ.get("DPM_DATA_MIRROR"):
    found = next((p for p in MIRROR_CANDIDATES if p.is_dir()), None)
    if found is not None:
        os.environ["DPM_DATA_MIRROR"] = str(found)


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory) -> Path:
    """The smoke project built once for the session by Snakemake (tests/smoke.py's ``build``): every
    stage's outputs and the ablation study. No test changes it; one that changes a project works
    on a copy of it (``smoke.copy_built``). Under pytest-xdist its workers share one build: the
    first to need it builds it, the others wait for it (a lock in the session's folder)."""
    from filelock import FileLock

    from tests import smoke
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, which holds each worker's
    folder, done = root / "smoke-build", root / "smoke-build.done"
    with FileLock(root / "smoke-build.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            smoke.build(folder)
            done.touch()
    return folder
