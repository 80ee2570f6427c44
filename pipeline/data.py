"""Stage ``data``: make one dataset's train/holdout split (generated, or from fetched raw files).

Usage: python -m pipeline.data DATASET OUT_DIR [--raw RAW_DIR]
"""

from __future__ import annotations

import argparse

from dpm.base import registry
from dpm.data import split as splits
from dpm.base import stages


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    parser.add_argument("out_dir")
    parser.add_argument("--raw", help="folder of the fetched raw files (datasets that have them)")
    args = parser.parse_args(argv)
    config = stages.load_config()
    dataset = registry.get(args.dataset)
    if dataset.fetched and args.raw is None:
        raise stages.StageError(f"{args.dataset}: needs --raw, the folder of its fetched raw files")
    splits.save(dataset.data_module().make_split(config.section(args.dataset).data, args.raw), args.out_dir)


if __name__ == "__main__":
    stages.run(main)
