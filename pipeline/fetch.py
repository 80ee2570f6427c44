"""Stage ``fetch``: the raw files of an image dataset, each checked against its recorded checksum.

Usage: python -m pipeline.fetch {mnist,cifar10,bark} OUT_DIR

Files come from the folder named by ``DPM_DATA_MIRROR`` when it holds them, else from their
official download address. A file that is in neither place stops the stage with an error that
says what to download, from where, its checksum, and where to put it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpm.data import cifar10, mnist, textures
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=["mnist", "cifar10", "bark"])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.dataset == "mnist":
        mnist.fetch_all(args.out_dir)
    elif args.dataset == "cifar10":
        fetch = cifar10.fetch_subset if config.cifar10.data.source == "subset" else cifar10.fetch_full
        fetch(args.out_dir)
    else:
        fetch = textures.fetch_bark if config.bark.data.source == "bark" else textures.fetch_stand_in
        fetch(args.out_dir)


if __name__ == "__main__":
    common.run(main)
