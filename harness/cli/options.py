"""Option groups shared by the commands that call a target (`run`, `sweep`, `load`, `calibrate`,
`bench`): each group is declared once, so the commands cannot drift apart.

A group adds its click options and hands the command one value built from them (a dict of the
transport's option values, an impairment profile), keeping each command's own parameters few.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.cli.common import Finite
from harness.errors import InputError
from harness.transports.registry import TransportOption, all_transport_options, transport_names

DEFAULT_REPORTS = Path("reports")


def option_group(options: list, collect: dict[str, Callable[[dict], Any]]):
    """A decorator adding `options` to a command; for each `name: build` in `collect`, the
    command receives `name=build(values)` instead of the options' own parameters (`values`
    holds every option of the group, keyed by parameter name)."""
    def decorate(func):
        keys = [o.name for o in _params(options)]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {k: kwargs.pop(k) for k in keys if k in kwargs}
            for name, build in collect.items():
                kwargs[name] = build(values)
            return func(*args, **kwargs)

        for opt in reversed(options):
            wrapper = opt(wrapper)
        return wrapper
    return decorate


def _params(options: list) -> list[click.Parameter]:
    """The click parameters a list of option decorators would add."""
    def probe():
        pass
    for opt in options:
        probe = opt(probe)
    return list(getattr(probe, "__click_params__", []))


def _click_option(o: TransportOption):
    kinds = {"float": Finite(min=0, max=10_000), "choice": click.Choice(o.choices) if o.choices else None}
    return click.option(o.flag, o.key, type=kinds.get(o.kind), default=o.default, multiple=o.multiple,
                        metavar=o.metavar, help=o.help, show_default=not o.multiple and o.default not in (None, ""))


def transport_options():
    """--transport and every registered transport's own options (declared in the registry); the
    command receives `transport` and `transport_values` (the options by key, for
    `transport_settings`)."""
    choice = click.option("--transport", type=click.Choice(transport_names()), default=None,
                          help="Wire protocol (default: the scenario's defaults.transport). See docs/transports.md.")
    group = option_group([_click_option(o) for o in all_transport_options()], {"transport_values": dict})

    def decorate(func):
        return choice(group(func))
    return decorate


def _impairment(values: dict):
    from harness.transports.impair import resolve_profile
    try:
        return resolve_profile(values.get("impair"), delay_ms=values.get("delay_ms"),
                               jitter_ms=values.get("jitter_ms"), loss=values.get("loss"),
                               burst=values.get("loss_burst"), reorder=values.get("reorder") or None)
    except ValueError as e:
        raise InputError(str(e)) from None


def impairment_options(func):
    """--impair PROFILE and explicit --delay-ms/--jitter-ms/--loss/--loss-burst/--reorder (they
    override the profile's fields); the command receives `impairment` (a profile, or None)."""
    from harness.transports.impair import PROFILES
    opts = [
        click.option("--impair", "impair", type=click.Choice(sorted(PROFILES)), default=None,
                     help="Network impairment on the caller's side, both directions, seeded: "
                          + "; ".join(p.describe() for p in PROFILES.values()) + "."),
        click.option("--delay-ms", type=Finite(min=0, max=10_000), default=None, help="One-way added delay."),
        click.option("--jitter-ms", type=Finite(min=0, max=10_000), default=None,
                     help="Per-packet delay spread (standard deviation); order is kept."),
        click.option("--loss", type=Finite(0, 0.99), default=None,
                     help="Share of packets lost (0.01 = 1 %); a lost packet is silence."),
        click.option("--loss-burst", type=Finite(min=1, max=1000), default=None,
                     help="Mean loss burst length in packets (1 = independent losses)."),
        click.option("--reorder", is_flag=True, default=None,
                     help="Let jitter reorder packets (off: order is kept within each direction)."),
    ]
    return option_group(opts, {"impairment": _impairment})(func)


def target_options(func):
    """What a command calls: --target, the transport group, the impairment, and the built-in
    agents' --agent-args / --oracle (one definition for run, sweep and load)."""
    from harness.agent.targets import BUILTIN_TARGETS
    opts = [
        click.option("--target", "-t", default=None,
                     help=f"ws:// or http:// URL of the agent, or a built-in agent ({', '.join(BUILTIN_TARGETS)}). "
                          "Default: the scenario's defaults.target (the reference agent if it names none)."),
        transport_options(),
        impairment_options,
        click.option("--agent-args", default="", metavar="'OPTIONS'",
                     help="Options for the reference agent that `--target reference` starts, as one string, e.g. "
                          "\"--turn semantic\" or \"--pipeline batch --llm sim\" (see `turnbench agent serve "
                          "--help`). Its log goes to agent.log in the run folder."),
        click.option("--oracle", "oracle_opts", multiple=True, metavar="KEY=VALUE",
                     help="Oracle behaviour when --target oracle, e.g. delay_ms=lognormal:300:800, reply_ms=1500, "
                          "noise_dbfs=-50 (repeatable; see `turnbench agent serve --help`)."),
        click.option("--agent-token", envvar="TURNBENCH_AGENT_TOKEN", default=None, metavar="TOKEN",
                     help="The agent's bearer token (`agent serve --token`): sent by every call as `Authorization: "
                          "Bearer TOKEN`, written to no result file. Default: $TURNBENCH_AGENT_TOKEN."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def output_options(what: str = "run folder"):
    """--out DIR and --fixtures DIR."""
    opts = [
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_REPORTS,
                     show_default=True, help=f"Directory the {what} is created in."),
        fixtures_option,
    ]

    def decorate(func):
        for opt in reversed(opts):
            func = opt(func)
        return func
    return decorate


fixtures_option = click.option(
    "--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Fixture directory with manifest.json (default: the fixtures that ship with turnbench).")
