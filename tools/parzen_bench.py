"""The "perfect model" Parzen row of Table 2 on real MNIST, timed.

    python -m tools.parzen_bench [--mirror DIR] [--threads N]

Centres: training images 0–9,999; σ chosen on training images 50,000–50,999; test: the 10,000
test images; all /255 into [0, 1]. The MNIST files are read from the ``mnist/`` folder of the
offline mirror: ``--mirror``, else $DPM_DATA_MIRROR, else ``../shared/data-mirror`` (relative to
the working directory, as on the team's machines when run from the repository root).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from dpm.estimate import parzen
from dpm.datasets import mnist
from dpm.report.paper_table2 import TABLE_2_MNIST

PAPER_BITS, PAPER_SE_BITS, PAPER_NATS, PAPER_SE_NATS = TABLE_2_MNIST["Perfect model"]


def main(argv: list[str] | None = None) -> parzen.ParzenResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", default=os.environ.get("DPM_DATA_MIRROR") or "../shared/data-mirror")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_images, _, test_images, _ = mnist.load(Path(args.mirror) / "mnist")
    train, test = train_images / 255.0, test_images / 255.0
    start = time.perf_counter()
    result = parzen.estimate(test, train[50_000:51_000], train[:10_000], device=args.device)
    seconds = time.perf_counter() - start
    print(f"threads {torch.get_num_threads()}, device {args.device or 'cpu'}")
    print(f"sigma      {result.sigma:.4f}")
    print(f"nats       {result.mean_nats:.1f} ± {result.se_nats:.1f}   (paper {PAPER_NATS:.0f} ± {PAPER_SE_NATS})")
    print(f"bits       {result.mean_bits:.1f} ± {result.se_bits:.1f}   (paper {PAPER_BITS:.0f} ± {PAPER_SE_BITS})")
    print(f"wall time  {seconds:.2f} s (σ search + test)")
    return result


if __name__ == "__main__":
    main()
