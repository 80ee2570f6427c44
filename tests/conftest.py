"""Every test (and every stage a test runs) reads raw data from the offline mirror: the folder
named by DPM_DATA_MIRROR, else ../shared/data-mirror beside the repository (as on the team's
machines)."""

import os
from pathlib import Path

MIRROR_CANDIDATES = [Path(__file__).resolve().parents[2] / "shared" / "data-mirror"]

if not os.environ.get("DPM_DATA_MIRROR"):
    found = next((p for p in MIRROR_CANDIDATES if p.is_dir()), None)
    if found is not None:
        os.environ["DPM_DATA_MIRROR"] = str(found)
