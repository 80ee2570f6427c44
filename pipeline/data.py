"""Stage ``data``: make one dataset's train/holdout split (generated, or from fetched raw files).

Usage: python -m pipeline.data DATASET OUT_DIR [--raw RAW_DIR]
"""

from __future__ import annotations

import argparse

from dpm import config as cfg, datasets
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=cfg.DATASETS)
    parser.add_argument("out_dir")
    parser.add_argument("--raw", help="folder of the fetched raw files (mnist, cifar10, bark)")
    args = parser.parse_args(argv)
    config = common.load_config()
    datasets.save(datasets.make(args.dataset, config, args.raw), args.out_dir)


if __name__ == "__main__":
    common.run(main)
