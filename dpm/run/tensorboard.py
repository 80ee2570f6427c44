"""TensorBoard logs that compare across runs: one folder per training run, its params as hparams.

A training run logs into ``<runs_dir>/<name>/``, named by ``run_name``: the DVC experiment's name
under ``dvc exp run`` (DVC sets ``DVC_EXP_NAME``), else the UTC time it started. Earlier runs'
folders are kept, so ``tensorboard --logdir runs`` overlays them; a run resumed from its
checkpoint continues in the folder whose name the checkpoint saved (``dpm.run.train.Run.name``). The
runs are no DVC output (no checkout, ``exp apply`` or rerun removes one), and an experiment run in
a temporary copy of the project (``dvc exp run --temp``, ``--queue``) logs into the project's own
``runs_dir`` (``runs_folder``), since the copy is deleted.

The run's params go into its own folder as the hparams plugin's session-start summary, so the
HParams view has one row per run. Its metrics are the last values of the run's scalars (the
plugin reads them there): after a resume, those of the resumed run.

Deviation from ``SummaryWriter.add_hparams``: that writes into a sub-run of its own, beside a
copy of the metrics, and adds an experiment summary. The plugin takes the experiment summary of
one arbitrary run as the columns of all, so a logdir holding several datasets (whose ``net`` and
``data`` sections differ) would lose the others' params; without one it takes the union of every
run's params and offers every scalar as a metric (checked with tensorboard 2.21).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

EXPERIMENT_NAME = "DVC_EXP_NAME"
"""The environment variable in which ``dvc exp run`` names the experiment it runs."""


EXPERIMENT_COPIES = (".dvc", "tmp", "exps")
"""Where ``dvc exp run --queue`` and ``--temp`` copy the project: ``<project>/.dvc/tmp/exps/<copy>``
(``exps/standalone/<copy>`` for ``--temp``)."""


def runs_folder(runs_dir: str | Path, cwd: Path | None = None) -> Path:
    """``runs_dir``, or, in a DVC experiment's temporary copy of the project (the working directory
    under ``<project>/.dvc/tmp/exps/``), the same folder in the project itself."""
    parts = (cwd or Path.cwd()).absolute().parts
    starts = [i for i in range(len(parts) - 3) if parts[i:i + 3] == EXPERIMENT_COPIES]
    if Path(runs_dir).is_absolute() or not starts:
        return Path(runs_dir)
    return Path(*parts[:starts[0]]) / runs_dir


def run_name(runs_dir: str | Path, environ: Mapping[str, str] = os.environ, now: datetime | None = None) -> str:
    """The name of a fresh run's folder under ``runs_dir``: ``$DVC_EXP_NAME``, else the UTC time
    as ``20261201T103005Z``; ``-2``, ``-3``, … appended if a folder of that name exists (an
    experiment rerun under its name, two runs in one second), so no earlier run is ever written to.

    Raises:
        ValueError: ``DVC_EXP_NAME`` is not a plain folder name (DVC's names never are).
    """
    base = environ.get(EXPERIMENT_NAME) or (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    if base in (".", "..") or Path(base).name != base:
        raise ValueError(f"{EXPERIMENT_NAME}={base!r} is not a folder name")
    name, suffix = base, 1
    while (runs_folder(runs_dir) / name).exists():
        suffix += 1
        name = f"{base}-{suffix}"
    return name


def flat_params(sections: Mapping[str, object], **extra: object) -> dict[str, float | int | bool | str]:
    """Sections (dataclasses or mappings) flattened to dotted keys, ``train.learning_rate``, then
    ``extra`` as given; values the hparams plugin cannot hold (lists, None) as their text."""
    flat: dict[str, float | int | bool | str] = {}
    for prefix, section in sections.items():
        values = dataclasses.asdict(section) if dataclasses.is_dataclass(section) else dict(section)
        for key, value in values.items():
            if isinstance(value, Mapping):
                flat.update(flat_params({f"{prefix}.{key}": value}))
            else:
                flat[f"{prefix}.{key}"] = _plain(value)
    flat.update({key: _plain(value) for key, value in extra.items()})
    return flat


def _plain(value: object) -> float | int | bool | str:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def open_writer(runs_dir: str | Path, params: Mapping[str, object], name: str, resumed_from: int | None):
    """A SummaryWriter for run ``name`` in ``runs_dir/name``, its ``params`` written as hparams.

    A resumed run (``resumed_from``: the checkpoint's iteration) drops the events its folder
    holds from after the checkpoint (``purge_step``): they were logged by the interrupted run
    and are logged again. Its params are written again, the same values: a folder whose first
    run died before they reached the disk gets them too (the plugin reads the first).
    """
    from torch.utils.tensorboard import SummaryWriter
    folder = runs_folder(runs_dir) / name
    log.info("TensorBoard run %s%s", folder, "" if resumed_from is None else f", resumed after step {resumed_from}")
    writer = SummaryWriter(str(folder), purge_step=None if resumed_from is None else resumed_from + 1)
    write_hparams(writer, params)
    return writer


def write_hparams(writer, params: Mapping[str, object]) -> None:
    """Write ``params`` into the writer's own folder as the hparams plugin's session-start info
    (no experiment summary: see the module docstring), and flush."""
    from torch.utils.tensorboard.summary import hparams
    _, session_start, _ = hparams(dict(params), {})
    writer.file_writer.add_summary(session_start)
    writer.flush()
