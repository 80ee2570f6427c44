"""Stage ``data``: generate a toy dataset, split and scale it.

Usage: python -m pipeline.data DATASET OUT_DIR
"""

from __future__ import annotations

import argparse

from dpm import datasets
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=["swiss_roll", "heartbeat"])
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    config = common.load_config()
    datasets.save(datasets.make(args.dataset, config), args.out_dir)


if __name__ == "__main__":
    common.run(main)
