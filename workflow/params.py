"""Compose params.yaml from conf/ exactly as ``dvc exp run`` does, without running anything.

    python -m workflow.params profile=smoke                  # the project's profile: smoke
    python -m workflow.params profile=paper mnist.train.n_iterations=1000
    python -m workflow.params --diff                         # params.yaml against conf/ (hand edits)

Overrides are Hydra's (as after ``dvc exp run -S``). The composition is validated before it
replaces params.yaml, which is written atomically: a bad value leaves the old file.
``profile=<name>`` also makes <name> the project's profile: the one conf/config.yaml's defaults
list names (``- profile: <name>``, rewritten in place), which every later ``dvc exp run -S key=value``
composes on. ``dvc exp run -S profile=<name>`` changes the profile of that experiment alone.
Not a pipeline stage: it writes the file the stages read. ``--diff`` composes params.yaml's own
profile and lists every value that differs (a hand edit that ``dvc exp run`` would replace).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from dpm.base import config as cfg
from dpm.base.atomic import atomic_write_text

# the profile entry of conf/config.yaml's defaults list (dpm/base/config.py reads the same layout)
DEFAULT_PROFILE = re.compile(r"(?m)^(\s*-\s*profile:[ \t]*)([^\s#]+)")


def compose_file(overrides: list[str], params: Path = Path("params.yaml"), conf_dir: Path = Path("conf")) -> None:
    """Write ``params`` as DVC's Hydra composition of ``conf_dir`` with ``overrides``, once it validates.

    Raises:
        ConfigError: the composition fails or does not validate (``params`` is left as it was).
    """
    from dvc.utils.hydra import compose_and_dump
    descriptor, temporary = tempfile.mkstemp(suffix=".yaml", dir=params.parent or ".")
    os.close(descriptor)
    try:
        try:
            compose_and_dump(temporary, str(conf_dir.resolve()), None, "config", str(Path.cwd()), overrides)
        except Exception as error:  # Hydra's and OmegaConf's own error types; the message says what
            raise cfg.ConfigError(f"conf/: cannot compose with {overrides}: {error}") from None
        cfg.load(temporary)
        os.replace(temporary, params)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def set_project_profile(profile: str, conf_dir: Path = Path("conf")) -> None:
    """Make ``profile`` the one conf/config.yaml's defaults list names, in place (comments kept).

    Raises:
        ConfigError: conf/ has no such profile, or config.yaml no ``- profile: <name>`` entry.
    """
    if not (conf_dir / "profile" / f"{profile}.yaml").is_file():
        raise cfg.ConfigError(f"conf/: no profile {profile!r} in {conf_dir / 'profile'}")
    path = conf_dir / "config.yaml"
    text = path.read_text()
    rewritten, n = DEFAULT_PROFILE.subn(lambda m: m[1] + profile, text, count=1)
    if n != 1:
        raise cfg.ConfigError(f"{path}: no '- profile: <name>' entry in its defaults list")
    if rewritten != text:
        atomic_write_text(path, rewritten)


def differences(params: Path = Path("params.yaml"), conf_dir: Path = Path("conf")) -> list[str]:
    """``key: params.yaml value (conf/: value)`` for every leaf where params.yaml differs from the
    composition of its own profile."""
    ours = cfg.read_yaml(params)
    composed = cfg.compose([f"profile={ours.get('profile')}"], conf_dir)
    return [f"{key}: {a!r} (conf/: {b!r})" for key, a, b in _leaf_pairs(ours, composed, "") if a != b]


def _leaf_pairs(a, b, path: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            yield from _leaf_pairs(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    else:
        yield path, a, b


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides: profile=smoke, section.key=value")
    parser.add_argument("--diff", action="store_true", help="list where params.yaml differs from conf/")
    args = parser.parse_args(argv)
    try:
        if args.diff:
            lines = differences()
            print("\n".join(lines) if lines else "params.yaml is conf/ composed with its profile")
            return
        compose_file(args.overrides)
        profiles = [o.partition("=")[2] for o in args.overrides if o.partition("=")[0] == "profile"]
        if profiles:
            set_project_profile(profiles[-1])
    except cfg.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"params.yaml: conf/ composed with {args.overrides or 'its defaults'}")
    if profiles:
        print(f"conf/config.yaml: the project's profile is {profiles[-1]} (what `dvc exp run -S key=value` composes on)")


if __name__ == "__main__":
    main()
