"""What a training worker started by torchrun (``dpm.run.distributed.relaunch``) leaves for the
stage that started it: its error, which the stage prints once with the other workers'."""

from __future__ import annotations

import os
from pathlib import Path

ERRORS = "DPM_WORKER_ERRORS"
"""The folder where each worker leaves its error (``leave_error``) for the stage to print."""


def leave_error(message: str) -> bool:
    """In a worker started by ``relaunch``: leave this rank's error for the stage, which prints
    it once with the others'; False (nothing done) in any other process."""
    folder = os.environ.get(ERRORS)
    if not folder or "RANK" not in os.environ:
        return False
    Path(folder, f"rank-{os.environ['RANK']}").write_text(message)
    return True
