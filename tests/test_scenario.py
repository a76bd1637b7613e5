"""Scenario validation: every error names the file, the line and the field."""

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.model import BargeInStep, Pick, SayStep, WaitFor, WaitStep

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["smoke", "conversation", "pauses", "barge_in"])
def test_shipped_scenarios_are_valid(name, fixtures):
    loaded = load_scenario(REPO / "scenarios" / f"{name}.yaml", fixtures)
    assert loaded.scenario.name == name and len(loaded.sha256) == 64


def test_shorthands_parse(tmp_path):
    p = write(tmp_path, "version: 1\nname: t\nsteps:\n  - say: {pick: paused, voice: joe}\n"
                       "  - wait: 500\n  - wait: silence\n  - barge_in: {fixture: intr_01_rms}\n")
    s = load_scenario(p).scenario
    assert isinstance(s.steps[0], SayStep) and s.steps[0].say == Pick(pick="paused", voice="joe")
    assert isinstance(s.steps[1], WaitStep) and s.steps[1].wait == WaitFor(ms=500)
    assert isinstance(s.steps[3], BargeInStep) and s.steps[3].barge_in.after_ms == 800


@pytest.mark.parametrize("text,line,field,words", [
    ("version: 1\nname: t\nsteps:\n  - say: utt_01_joe\n  - barge_in: {fixture: x, after_ms: -5}\n",
     5, "steps[1].barge_in.after_ms", "greater than or equal to 0"),
    ("version: 1\nname: t\ndefaults:\n  calls: lots\nsteps:\n  - say: a\n", 4, "defaults.calls", "integer"),
    ("version: 1\nname: t\nsteps:\n  - say: a\n  - sing: b\n", 5, "steps[1]", "one of say, wait"),
    ("version: 1\nname: t\nsteps:\n  - wait: forever\n", 4, "steps[0].wait", "'reply' or 'silence'"),
    ("version: 2\nname: t\nsteps:\n  - say: a\n", 1, "version", "1"),
    ("version: 1\nname: t\nsteps: []\n", 3, "steps", "at least 1"),
    ("version: 1\nname: t\ncolour: red\nsteps:\n  - say: a\n", 3, "colour", "not permitted"),
    # numbers are finite and within their documented range
    ("version: 1\nname: t\nsteps:\n  - say: a\n  - wait: {ms: .nan}\n", 5, "steps[1].wait.ms", "finite number"),
    ("version: 1\nname: t\nsteps:\n  - say: a\n  - wait: 1.0e+300\n", 5, "steps[1].wait.ms", "less than or equal"),
    ("version: 1\nname: t\nsteps:\n  - say: a\n  - barge_in: {fixture: x, after_ms: 1e300}\n",
     5, "steps[1].barge_in.after_ms", "less than or equal to 60000"),
    ("version: 1\nname: t\nsteps:\n  - say: a\n  - wait: {reply: true, timeout_s: 1e300}\n", 5,
     "steps[1].wait.timeout_s", "less than or equal to 600"),
    ("version: 1\nname: t\ndefaults:\n  response_timeout_s: .inf\nsteps:\n  - say: a\n", 4,
     "defaults.response_timeout_s", "finite number"),
    ("version: 1\nname: t\ndefaults:\n  thresholds:\n    - latency_ms.p99<800\n    - latency_ms.p99 <<\n"
     "steps:\n  - say: a\n", 6, "defaults.thresholds[1]", "expected a number"),
])
def test_bad_fields_point_at_line_and_field(tmp_path, text, line, field, words):
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, text))
    assert e.value.line == line and e.value.field == field and words in e.value.message
    assert str(e.value).startswith(f"{tmp_path / 's.yaml'}:{line}: {field}: ")


def test_unknown_fixture_is_caught_before_any_call(tmp_path, fixtures):
    p = write(tmp_path, "version: 1\nname: t\nsteps:\n  - say: utt_01_joe\n  - wait: reply\n  - say: utt_99_bob\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p, fixtures)
    assert e.value.line == 6 and "unknown fixture 'utt_99_bob'" in str(e.value)


def test_pick_with_no_match_is_an_error(tmp_path, fixtures):
    p = write(tmp_path, "version: 1\nname: t\nsteps:\n  - say: {pick: paused, voice: nobody}\n")
    with pytest.raises(ScenarioError, match="no fixture of kind 'paused' and voice 'nobody'"):
        load_scenario(p, fixtures)


def test_bad_yaml_names_the_line(tmp_path):
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, "version: 1\nname: t\nsteps:\n  - say: [unclosed\n"))
    assert e.value.line is not None and "invalid YAML" in e.value.message


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_a_device_or_a_huge_file_is_refused_unread(tmp_path):
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2**20 + 10))
    with pytest.raises(ScenarioError, match="larger than 1 MiB"):
        load_scenario(big)
