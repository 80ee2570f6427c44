"""Stage ``check_params``: params.yaml validated before any other stage can delete an output.

Usage: python -m pipeline.check_params [OUT_FILE]

Every stage depends on OUT_FILE, and this stage depends on the whole of params.yaml, so any edit
of the file (a typo in a key no stage reads included) is checked first: DVC runs stages in
dependency order and stops at the first failure, before it removes the outputs of the stages
below. OUT_FILE's content never changes while the file is valid, so a valid edit reruns only the
stages whose own params changed. Without OUT_FILE it only checks (the Snakefile runs it so when
it is parsed, before any job).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpm import config as cfg
from dpm.atomic import atomic_write_text
from pipeline import common

VERDICT = "params.yaml is valid\n"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_file", type=Path, nargs="?")
    args = parser.parse_args(argv)
    cfg.load(common.PARAMS)  # not common.load_config: no torch here, the check runs before every Snakemake run
    if args.out_file is not None and (not args.out_file.exists() or args.out_file.read_text() != VERDICT):
        atomic_write_text(args.out_file, VERDICT)


if __name__ == "__main__":
    common.run(main)
