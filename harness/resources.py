"""Where turnbench's own data lives: the default fixtures and the built-in scenarios.

In a source checkout (or an editable install) they are the repository's `audio_fixtures/` and
`scenarios/`; a built wheel carries copies of both as package data under `harness/_data/`
(setup.py's build step), so `turnbench run smoke` works from any directory after `pip install`.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import InputError

PACKAGE_DATA = Path(__file__).resolve().with_name("_data")
CHECKOUT = Path(__file__).resolve().parents[1]


def _data_dir(name: str) -> Path:
    for base in (PACKAGE_DATA, CHECKOUT):
        if (base / name).is_dir():
            return base / name
    raise InputError(f"turnbench's {name}/ is missing (looked in {PACKAGE_DATA} and {CHECKOUT}): "
                     "reinstall the package, or pass the directory explicitly")


def default_fixtures_dir() -> Path:
    """The fixtures that ship with turnbench (with manifest.json)."""
    return _data_dir("audio_fixtures")


def builtin_scenarios() -> dict[str, Path]:
    """Name → file of every scenario that ships with turnbench."""
    return {p.stem: p for p in sorted(_data_dir("scenarios").glob("*.yaml"))}


def resolve_scenario(arg: str) -> Path:
    """A scenario argument: an existing file, else the name of a built-in scenario (`smoke`,
    `smoke.yaml`); InputError listing the built-in ones otherwise."""
    path = Path(arg)
    if path.is_file():
        return path
    builtins = builtin_scenarios()
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and name in builtins:
        return builtins[name]
    if path.exists():
        raise InputError(f"{arg}: not a regular file (a scenario is a YAML file)")
    raise InputError(f"{arg}: no such scenario file, and no built-in scenario of that name "
                     f"(built-in: {', '.join(builtins)}; `turnbench scenarios list`)")
