"""`turnbench scenarios list|show`: the scenarios that ship with turnbench."""

from __future__ import annotations

import click

from harness.audio.fixtures import FixtureLibrary
from harness.resources import builtin_scenarios, resolve_scenario
from harness.scenario import load_scenario


@click.group()
def scenarios() -> None:
    """The built-in scenarios: `turnbench run NAME` runs one from any directory."""


@scenarios.command("list")
def list_scenarios() -> None:
    """Name, steps, default calls and what each built-in scenario does."""
    lib = FixtureLibrary.load()
    rows = []
    for name, path in builtin_scenarios().items():
        sc = load_scenario(path, lib).scenario
        rows.append((name, f"{len(sc.steps)} steps", f"{sc.defaults.calls} calls",
                     " ".join(sc.description.split()) or "—"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, width)) + "  " + r[3])


@scenarios.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print a scenario's YAML (a built-in one by name, or a file): a start for your own."""
    click.echo(resolve_scenario(name).read_text(), nl=False)
