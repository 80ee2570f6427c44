"""Stage ``fetch``: the raw files of a dataset, each checked against its recorded checksum.

Usage: python -m pipeline.fetch DATASET OUT_DIR

Files come from the folder named by ``DPM_DATA_MIRROR`` when it holds them, else from their
official download address. A file that is in neither place stops the stage with an error that
says what to download, from where, its checksum, and where to put it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpm.base import registry
from dpm.base import stages


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=[d.name for d in registry.DATASETS.values() if d.fetched])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    config = stages.load_config()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    registry.get(args.dataset).data_module().fetch_raw(config.section(args.dataset).data, args.out_dir)


if __name__ == "__main__":
    stages.run(main)
