"""One validated set of run inputs, built the same way for `run`, `sweep` and `load`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from harness.agent.oracle_config import OracleConfig, parse_overrides
from harness.agent.targets import ResolvedTarget, check_target, open_target
from harness.audio.fixtures import FixtureLibrary
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec
from harness.errors import InputError
from harness.metrics.turns import AnalysisSettings
from harness.resources import resolve_scenario
from harness.results.folder import run_metadata
from harness.scenario import load_scenario
from harness.scenario.loader import LoadedScenario
from harness.thresholds import check_thresholds
from harness.transports.base import auth_headers
from harness.transports.impair import ImpairmentProfile
from harness.transports.registry import recordable_settings, transport_settings

MAX_PRELOAD = 8
"""Sessions the reference agent warms up before the first call (more cost start-up time only)."""


def oracle_config(pairs: tuple[str, ...] | list[str], seed: int | None = None) -> OracleConfig:
    """`--oracle KEY=VALUE` options → the oracle's configuration (InputError naming the field)."""
    try:
        cfg = OracleConfig(**parse_overrides(list(pairs)))
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(f"--oracle {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    except ValueError as e:
        raise InputError(f"--oracle {e}") from None
    return cfg if seed is None else cfg.model_copy(update={"seed": seed})


@dataclass(frozen=True)
class RunInputs:
    """A scenario, its fixtures, the target and how to call it, and how to measure."""

    loaded: LoadedScenario
    fixtures: FixtureLibrary
    target: str
    transport: str
    transport_options: dict
    impairment: ImpairmentProfile | None
    oracle: OracleConfig
    agent_args: str
    thresholds: list[str]
    settings: CallSettings
    analysis: AnalysisSettings
    calls: int
    concurrency: int
    token: str | None = field(default=None, repr=False)
    """The agent's bearer token: sent by every call, written to no result file."""

    @classmethod
    def resolve(cls, scenario: str, *, fixtures_dir: Path | None = None, target: str | None = None,
                transport: str | None = None, transport_values: dict | None = None,
                impairment: ImpairmentProfile | None = None, oracle_opts: tuple[str, ...] = (),
                agent_args: str = "", thresholds: tuple[str, ...] = (), seed: int | None = None,
                response_timeout_s: float | None = None, hints: bool = False, calls: int | None = None,
                concurrency: int | None = None, agent_token: str | None = None) -> RunInputs:
        """Validate everything a run needs before any call; InputError says what is wrong."""
        lib = FixtureLibrary.load(fixtures_dir)
        loaded = load_scenario(resolve_scenario(scenario), lib)
        d = loaded.scenario.defaults
        target, transport = target or d.target, transport or d.transport
        check_target(target, transport)
        if agent_args and target != "reference":
            raise InputError(f"--agent-args applies to --target reference only (the target is {target})")
        if target == "reference" and d.agent_args:  # the scenario's first, so the command line wins
            agent_args = f"{d.agent_args} {agent_args}".strip()
        check_thresholds(thresholds)
        seed_arg, seed = seed, d.seed if seed is None else seed
        timeout = response_timeout_s or d.response_timeout_s
        settings = CallSettings(response_timeout_s=timeout, reply_silence_ms=d.reply_silence_ms,
                                hints=hints or target == "oracle", seed=seed)
        return cls(loaded=loaded, fixtures=lib, target=target, transport=transport,
                   transport_options=transport_settings(transport, transport_values or {}),
                   impairment=impairment, oracle=oracle_config(oracle_opts, seed_arg),
                   agent_args=agent_args, thresholds=[*d.thresholds, *thresholds], settings=settings,
                   analysis=AnalysisSettings(response_timeout_s=timeout, barge_in_threshold_ms=d.barge_in_threshold_ms),
                   calls=calls or d.calls, concurrency=concurrency or d.concurrency, token=agent_token or None)

    @property
    def scenario(self):
        return self.loaded.scenario

    @property
    def name(self) -> str:
        return self.loaded.scenario.name

    def with_preload(self, sessions: int) -> RunInputs:
        """The reference agent warms up `sessions` (at most MAX_PRELOAD) unless told otherwise."""
        if self.target != "reference" or "--preload" in self.agent_args:
            return self
        return replace(self, agent_args=f"{self.agent_args} --preload {max(1, min(sessions, MAX_PRELOAD))}".strip())

    def metadata(self, **fields) -> dict:
        """run.json's fields for a run of these inputs (a command adds its own)."""
        lib, loaded = self.fixtures, self.loaded
        return run_metadata(
            scenario={"name": self.name, "path": str(loaded.path), "sha256": loaded.sha256,
                      "steps": len(self.scenario.steps)},
            fixtures={"dir": str(lib.directory), "digest": lib.digest(), "count": len(lib)},
            target=self.target, transport=self.transport,
            transport_options=recordable_settings(self.transport, self.transport_options),
            seed=self.settings.seed, response_timeout_s=self.settings.response_timeout_s,
            barge_in_threshold_ms=self.analysis.barge_in_threshold_ms,
            oracle=self.oracle.model_dump() if self.target == "oracle" else None,
            impairment=self.impairment.to_json() if self.impairment is not None else None,
            auth="bearer token" if self.token else None, **fields)

    @contextlib.asynccontextmanager
    async def open_target(self, agent_log: Path) -> AsyncIterator[ResolvedTarget]:
        """The target, reachable (a built-in agent started, stopped afterwards)."""
        async with open_target(self.target, self.oracle, self.analysis.barge_in_threshold_ms, self.agent_args,
                               agent_log, self.transport, token=self.token) as resolved:
            yield resolved

    def spec(self, url: str, calls: int | None = None, concurrency: int | None = None,
             run_id: str | None = None) -> RunSpec:
        """The calls of these inputs against `url` (the resolved target); `run_id` is what
        `{run_id}` in transport options becomes (the run folder's name)."""
        spec = RunSpec(self.scenario, self.fixtures, url, self.transport, calls or self.calls,
                       concurrency or self.concurrency, self.settings, self.analysis,
                       call_id_in_url=self.settings.hints, transport_options=self.transport_options,
                       impairment=self.impairment, headers=auth_headers(self.token))
        return replace(spec, run_id=run_id) if run_id else spec

    def agent_meta(self, resolved: ResolvedTarget) -> dict | None:
        """run.json's `agent`: what a built-in agent says of itself, its URL and arguments."""
        if not resolved.info:
            return None
        out = {**resolved.info, "url": resolved.url}
        if self.target == "reference":
            out["args"] = self.agent_args
        return out
