"""The pipeline's own overhead: what each tool costs when there is nothing to do, and per stage.

Usage: python -m tools.pipeline_bench [--repeats N] [--out results/bench/pipeline-overhead]

Run in the repository root with every stage up to date (``dvc status`` clean: the benchmark checks
and refuses otherwise). Each command is timed ``--repeats`` times; the median wall time is kept.
  no-op runs   ``snakemake --cores 2`` and ``dvc repro`` with nothing to do, ``snakemake -n`` and
               ``dvc status`` (what a user waits for before anything runs)
  per stage    the cheapest stage (check_params) run by DVC (``dvc repro --single-item --force``)
               against its bare command, and ``import torch`` (paid by every stage that uses it)
Writes ``<out>.json`` and ``<out>.md``; nothing of the pipeline changes (the forced check_params
rewrites the same verdict; dvc.lock keeps its entry).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from dpm.base.atomic import atomic_write_text
from dpm.base.provenance import git_commit

COMMANDS = {
    "snakemake no-op run (--cores 2)": ["-m", "snakemake", "--cores", "2", "--quiet", "all"],
    "snakemake dry run (-n)": ["-m", "snakemake", "--cores", "2", "-n", "--quiet", "all"],
    "dvc repro, nothing to do": ["-m", "dvc", "repro"],
    "dvc status": ["-m", "dvc", "status"],
    "stage check_params through dvc repro --single-item --force": [
        "-m", "dvc", "repro", "--single-item", "--force", "--quiet", "check_params"],
    "stage check_params, its bare command": ["-m", "pipeline.check_params", "data/params.ok"],
    "python -c 'import torch' (every torch stage)": ["-c", "import torch"],
    "python -c 'pass' (interpreter start)": ["-c", "pass"],
}


def timed(arguments: list[str], repeats: int) -> float:
    """Median wall seconds of ``python <arguments>`` (this interpreter, its directory first on PATH)."""
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"error: {' '.join(arguments)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return statistics.median(times)


def up_to_date() -> bool:
    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], capture_output=True, text=True)
    return result.returncode == 0 and json.loads(result.stdout or "{}") == {}


def versions() -> dict[str, str]:
    from importlib.metadata import version
    return {name: version(name) for name in ("dvc", "snakemake", "torch")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/bench/pipeline-overhead"))
    args = parser.parse_args(argv)
    if not up_to_date():
        raise SystemExit("error: the pipeline is not up to date (`dvc status`): run it first, then benchmark")
    rows = {name: timed(arguments, args.repeats) for name, arguments in COMMANDS.items()}
    dvc_per_stage = rows["stage check_params through dvc repro --single-item --force"] - \
        rows["stage check_params, its bare command"]
    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "git_commit": git_commit(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
              "versions": versions(), "repeats": args.repeats, "seconds": rows,
              "dvc_cost_per_stage_seconds": dvc_per_stage}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    lines = [f"# Pipeline overhead ({record['machine']})", "",
             f"{record['date']}, git {record['git_commit']}, "
             + ", ".join(f"{k} {v}" for k, v in record["versions"].items())
             + f"; median of {args.repeats} runs, everything up to date (`python -m tools.pipeline_bench`).", "",
             "| command | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in rows.items()]
    lines += ["", f"DVC's own cost per stage (its `repro --single-item` around the bare command): "
                  f"{dvc_per_stage:.2f} s. Every Snakemake job runs a stage that way."]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
