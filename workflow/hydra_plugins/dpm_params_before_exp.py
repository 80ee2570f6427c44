"""Keeps params.yaml as it was before ``dvc exp run -S`` writes its composition over it.

DVC composes params.yaml from conf/ with Hydra and writes it into the workspace before the
experiment's first stage runs; when ``check_params`` then refuses the composition, the file the
user had (hand edits included) would be gone. DVC loads the Hydra plugins found under
``.dvc/config``'s ``hydra.plugins_path`` (``workflow``, which holds this ``hydra_plugins`` folder)
just before it composes, and Hydra asks every search-path plugin for its paths as the
composition starts. This one adds no path: it copies params.yaml to ``BEFORE_EXP`` and names the
copy in ``ENV``, which the experiment's stages inherit from DVC's process; ``check_params`` puts
the copy back when it refuses the file. Nothing else sets ``ENV``, so under ``dvc repro`` and
Snakemake a refused params.yaml stays as the user wrote it.

Only the standard library and Hydra: this runs in DVC's own interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

PARAMS = Path("params.yaml")  # the file DVC writes the composition to, in DVC's working directory
BEFORE_EXP = Path(".dvc") / "tmp" / "params.yaml.before-exp"
ENV = "DPM_PARAMS_BEFORE_EXP"


class KeepParamsBeforeExp(SearchPathPlugin):
    """Copies params.yaml aside as each composition starts (see the module's docstring)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        os.environ.pop(ENV, None)
        if not (PARAMS.is_file() and BEFORE_EXP.parent.is_dir()):
            return
        partial = BEFORE_EXP.with_name(BEFORE_EXP.name + ".tmp")
        partial.write_bytes(PARAMS.read_bytes())
        os.replace(partial, BEFORE_EXP)
        os.environ[ENV] = str(BEFORE_EXP.resolve())
