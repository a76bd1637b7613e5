"""The transport registry: one entry per wire protocol, everything else reads it.

An entry says how a caller reaches an agent over that protocol (its `Transport` class, imported
lazily), which command-line options it takes and how they become the class's constructor
options, what a valid target URL looks like, how to probe one before any call, and where the
built-in agents serve it (path and endpoint class). What a transport's calls can do (continuous
media, a connection set-up time) is declared on its `Transport` class, where the caller reads it.
`run`, `sweep`, `load` and `calibrate`, the scenario model, the agent server and the docs all read
this table, so adding a transport is its own modules plus one `register(...)` call (see
docs/adding-a-transport.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError, MissingDependency


@dataclass(frozen=True)
class TransportOption:
    """One command-line option of a transport, declared without click (the CLI builds it)."""

    flag: str
    """e.g. `--twilio-param`."""
    key: str
    """The parameter name the command receives, e.g. `twilio_params`."""
    help: str
    kind: str = "str"
    """str, float (non-negative), or choice (with `choices`)."""
    default: Any = None
    multiple: bool = False
    choices: tuple[str, ...] = ()
    metavar: str | None = None


@dataclass(frozen=True)
class TransportEntry:
    """Everything turnbench knows about one transport."""

    name: str
    summary: str
    caller: str
    """`module:Class` of the caller side (a `Transport`), imported on first use."""
    url_schemes: tuple[str, ...]
    url_example: str
    agent_path: str
    """Where the built-in agents serve it (`url_for`): `ws://HOST:PORT{agent_path}` or http."""
    agent_endpoint: str
    """`module:Class` of the agent side's endpoint, constructed with the agent server."""
    options: tuple[TransportOption, ...] = ()
    settings: Callable[[dict], dict] = field(default=lambda values: {})
    """Option values (keyed by `TransportOption.key`) → the caller class's constructor options."""
    requires: tuple[str, str] | None = None
    """(importable module, extra) the caller side needs, e.g. ("aiortc", "webrtc")."""
    probe: Callable[[str, float], Awaitable[None]] | None = None
    """Is anything there? Raises `TargetUnreachable`; None: a WebSocket upgrade."""
    caller_variants: dict[str, str] = field(default_factory=dict)
    """Other caller classes selectable with a `client` option (benchmarks' baselines)."""
    secret_settings: tuple[str, ...] = ()
    """Constructor options whose values may be credentials: recorded with every value as `***`."""

    def check_available(self) -> None:
        """Raise MissingDependency naming the extra when the caller side cannot be imported."""
        if self.requires is None:
            return
        module, extra = self.requires
        if importlib.util.find_spec(module) is None:
            raise MissingDependency(f"--transport {self.name} needs {module}: pip install 'turnbench[{extra}]' "
                                    "(bash scripts/setup.sh run installs it)")

    def check_url(self, url: str) -> None:
        """Raise InputError saying what is wrong with `url` for this transport."""
        from harness.transports.websocket import check_url
        try:
            check_url(url, self.url_schemes, f"expected {self.url_example}")
        except ValueError as e:
            raise InputError(f"--target {e} (for --transport {self.name})") from None

    def caller_class(self, variant: str | None = None) -> type:
        path = self.caller if variant is None else self.caller_variants.get(variant)
        if path is None:
            raise InputError(f"{self.name} client {variant!r}: expected one of "
                             f"{', '.join(['lean', *self.caller_variants])}")
        return _load(path)

    def endpoint_class(self) -> type:
        """The agent side's endpoint class (ImportError when its extra is missing)."""
        return _load(self.agent_endpoint)


_REGISTRY: dict[str, TransportEntry] = {}


def register(entry: TransportEntry) -> TransportEntry:
    """Add a transport; its name must be new."""
    if entry.name in _REGISTRY:
        raise ValueError(f"transport {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def transport_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def transport_entry(name: str) -> TransportEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown transport {name!r} (available: {', '.join(_REGISTRY)})") from None


def all_transport_options() -> list[TransportOption]:
    """Every registered transport's options, in registration order (a command takes them all)."""
    return [o for e in _REGISTRY.values() for o in e.options]


def transport_settings(name: str, values: dict) -> dict:
    """The constructor options of transport `name` from a command's option values (run.json records them)."""
    from harness.transports.per_call import check_placeholders
    entry = transport_entry(name)
    known = {o.key: o.default for o in entry.options}
    given = {k: v for k, v in values.items() if k in known}
    flags = {o.key: o.flag for o in entry.options}
    for key, value in given.items():
        check_placeholders(value, flags[key])
    return entry.settings({**known, **given})


def recordable_settings(name: str, settings: dict) -> dict:
    """A transport's constructor options as result files may hold them (credentials hidden)."""
    secret = transport_entry(name).secret_settings
    return {k: ({kk: "***" for kk in v} if isinstance(v, dict) else "***") if k in secret and v else v
            for k, v in settings.items()}


def make_transport(name: str, url: str, **options):
    """A caller-side `Transport` by name; `client=` picks a baseline variant where one exists."""
    variant = options.pop("client", None)
    return transport_entry(name).caller_class(None if variant in (None, "lean") else variant)(url, **options)


def _load(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def parse_pairs(values: tuple[str, ...] | list[str], flag: str) -> dict[str, str]:
    """KEY=VALUE options → a dict; InputError naming the flag for anything else."""
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} {v!r}: expected KEY=VALUE")
        out[key] = val
    return out
