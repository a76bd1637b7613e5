"""The commands that call a target share their option groups: `sweep` and `load` take every
transport, target and impairment option `run` takes, and pass them on to the calls."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.service.inputs import RunInputs
from harness.transports.registry import all_transport_options

RUN_ONLY = {"calls", "concurrency", "response_timeout_s", "hints", "progress", "thresholds", "seed", "out_dir",
            "fixtures_dir", "scenario"}
"""`run`'s own parameters: how many calls and how to show them. Everything else of `run` says
what to call and how, and every command that calls a target must take it too."""


def option_names(command: click.Command) -> set[str]:
    return {p.name for p in command.params}


@pytest.mark.parametrize("name", ["sweep", "load"])
def test_sweep_and_load_take_every_option_run_takes_to_call_a_target(name):
    shared = option_names(main.commands["run"]) - RUN_ONLY
    assert {o.key for o in all_transport_options()} <= shared  # the registry's options are run's too
    missing = shared - option_names(main.commands[name])
    assert not missing, f"`{name}` lacks {sorted(missing)}"


class Resolved(Exception):
    """Stops a command where its inputs are resolved, carrying what it was given."""


@pytest.mark.parametrize("name", ["run", "sweep", "load"])
def test_transport_options_reach_the_run_inputs(name, monkeypatch):
    def capture(cls, scenario, **kw):
        raise Resolved(kw)

    monkeypatch.setattr(RunInputs, "resolve", classmethod(capture))
    result = CliRunner().invoke(main, [name, "smoke", "--target", "oracle", "--transport", "twilio",
                                       "--twilio-param", "tenant=acme", "--webrtc-field", "id={call_id}",
                                       "--delay-ms", "30"])
    assert isinstance(result.exception, Resolved), result.output
    kw = result.exception.args[0]
    assert kw["transport"] == "twilio"
    assert kw["transport_values"]["twilio_params"] == ("tenant=acme",)
    assert kw["transport_values"]["webrtc_fields"] == ("id={call_id}",)
    assert kw["impairment"].delay_ms == 30


def test_run_inputs_build_the_transport_constructor_options():
    inputs = RunInputs.resolve("smoke", target="oracle", transport="twilio",
                               transport_values={"twilio_params": ("tenant=acme", "k=v=w")})
    assert inputs.transport_options == {"custom_parameters": {"tenant": "acme", "k": "v=w"}}
    webrtc = RunInputs.resolve("smoke", target="oracle", transport="webrtc",
                               transport_values={"webrtc_datachannel": "none", "webrtc_fields": ("a=1",)})
    assert webrtc.transport_options["datachannel"] is None
    assert webrtc.transport_options["extra_fields"] == {"a": "1"}
    assert webrtc.transport_options["signalling"] == "json"  # the registry's default


def test_a_malformed_transport_option_is_a_usage_error_naming_it():
    result = CliRunner().invoke(main, ["run", "smoke", "--target", "oracle", "--transport", "twilio",
                                       "--twilio-param", "novalue"])
    assert result.exit_code == 2
    assert "--twilio-param 'novalue': expected KEY=VALUE" in result.output


def test_the_reference_agent_preload_follows_the_concurrency_and_is_bounded():
    inputs = RunInputs.resolve("smoke", target="reference", agent_args="--turn semantic", concurrency=3)
    assert inputs.with_preload(inputs.concurrency).agent_args == "--turn semantic --preload 3"
    assert inputs.with_preload(100).agent_args.endswith("--preload 8")
    mine = RunInputs.resolve("smoke", target="reference", agent_args="--preload 1")
    assert mine.with_preload(4).agent_args == "--preload 1"
    oracle = RunInputs.resolve("smoke", target="oracle")
    assert oracle.with_preload(4).agent_args == ""
