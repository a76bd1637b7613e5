"""What an engine process needs to place calls: one JSON document, the same on every machine.

`turnbench load` writes it once; Locust carries it to its workers as a custom option, so a worker
on another machine places exactly the calls the master would (its own copy of the scenario and
fixtures is checked against the master's digests).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from harness.caller.call import CallSettings
from harness.errors import InputError
from harness.metrics.turns import AnalysisSettings


class EngineConfigError(InputError):
    """The config does not fit this machine (missing scenario, different fixtures, bad field)."""


@dataclass
class EngineConfig:
    """Everything a caller engine needs; serialised as JSON between processes and machines."""

    scenario_path: str
    fixtures_dir: str
    target_url: str
    transport: str = "ws-pcm"
    transport_options: dict = field(default_factory=dict)
    impairment: dict | None = None
    call_settings: dict = field(default_factory=dict)
    response_timeout_s: float = 8.0
    barge_in_threshold_ms: float = 500.0
    call_id_in_url: bool = False
    scenario_sha256: str | None = None
    fixtures_digest: str | None = None
    scenario_label: str = ""
    run_started_unix: float | None = None
    """Wall-clock start of the whole load run: every engine's `call_started_s` counts from it."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise EngineConfigError(f"turnbench engine config: {e}") from None

    def run_spec(self):
        """Load the scenario and fixtures here and check they are the master's."""
        from harness.audio.fixtures import FixtureError, FixtureLibrary
        from harness.caller.runner import RunSpec
        from harness.scenario import ScenarioError, load_scenario
        from harness.transports.base import auth_headers
        from harness.transports.impair import ImpairmentProfile
        try:
            lib = FixtureLibrary.load(self.fixtures_dir)
            loaded = load_scenario(self.scenario_path, lib)
        except (ScenarioError, FixtureError, OSError) as e:
            raise EngineConfigError(str(e)) from None
        if self.scenario_sha256 and loaded.sha256 != self.scenario_sha256:
            raise EngineConfigError(f"{self.scenario_path}: differs from the master's scenario "
                                    f"(sha256 {loaded.sha256[:12]} here, {self.scenario_sha256[:12]} there)")
        if self.fixtures_digest and lib.digest() != self.fixtures_digest:
            raise EngineConfigError(f"{self.fixtures_dir}: fixtures differ from the master's "
                                    f"(digest {lib.digest()[:12]} here, {self.fixtures_digest[:12]} there)")
        impairment = None
        if self.impairment:
            keep = {k: v for k, v in self.impairment.items() if k != "description"}
            impairment = ImpairmentProfile(**keep)
        settings = CallSettings(**self.call_settings)
        analysis = AnalysisSettings(response_timeout_s=self.response_timeout_s,
                                    barge_in_threshold_ms=self.barge_in_threshold_ms)
        token = os.environ.get("TURNBENCH_AGENT_TOKEN")  # from the environment: never in a config or argv
        return RunSpec(loaded.scenario, lib, self.target_url, self.transport, 1, 1, settings, analysis,
                       call_id_in_url=self.call_id_in_url, transport_options=self.transport_options,
                       impairment=impairment, headers=auth_headers(token))
