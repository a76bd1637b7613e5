"""Load a scenario file and point every error at its file, line and field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.audio.fixtures import FixtureLibrary
from harness.errors import InputError
from harness.scenario.model import BackchannelStep, BargeInStep, Pick, SayStep, Scenario
from harness.thresholds import ThresholdError, parse_threshold


class ScenarioError(InputError):
    """A scenario that cannot run; the message reads `file:line: field: what is wrong`."""

    def __init__(self, path: Path | str, line: int | None, field: str, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from and a hash of its bytes."""

    scenario: Scenario
    path: Path
    sha256: str


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location."""
    node = root
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == key), None)
            if nxt is not None:  # else: a union tag, not a key of the file
                node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            continue  # union/tag names in the location have no node of their own
    return node


_UNION_MEMBERS = ("str", "Pick", "WaitFor")


def _field_name(loc: tuple[Any, ...]) -> str:
    """`steps[2].barge_in.after_ms` from a pydantic location (union and tag names dropped)."""
    out, prev = "", None
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        elif key == prev or key in _UNION_MEMBERS or key.startswith(("literal[", "function-")):
            continue
        else:
            out += f".{key}" if out else str(key)
        prev = key
    return out


MAX_SCENARIO_BYTES = 2**20
"""A scenario is a short YAML file; anything larger (or a device like /dev/zero) is refused unread."""


def read_yaml_model(path: Path | str, model: type[BaseModel], what: str = "scenario",
                    shape: str = "a mapping with version, name and steps"):
    """Read a small YAML file and validate it as `model`: (instance, YAML node tree, raw bytes).
    Every error is a ScenarioError reading `file:line: field: what is wrong`."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ScenarioError(path, None, "", f"not a regular file (a {what} is a YAML file)")
        with path.open("rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as e:
        raise ScenarioError(path, None, "", f"cannot read: {e.strerror}") from e
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(path, None, "", f"larger than {MAX_SCENARIO_BYTES // 2**20} MiB: not a {what}")
    text = raw.decode("utf-8", errors="replace")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ScenarioError(path, mark.line + 1 if mark else None, "", f"invalid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(data, dict):
        raise ScenarioError(path, 1, "", f"a {what} is {shape}")
    try:
        return model.model_validate(data), root, raw
    except ValidationError as e:
        # a union (e.g. `wait: reply` or `wait: {ms: …}`) reports each branch: the deepest error is
        # the one about what was actually written
        err = max(e.errors(), key=lambda x: len(x["loc"]))
        raise ScenarioError(path, line_of(root, err["loc"]), _field_name(err["loc"]),
                            err["msg"] + (f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else "")) from None


def line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a field location (None if the file has no such node)."""
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def load_scenario(path: Path | str, fixtures: FixtureLibrary | None = None) -> LoadedScenario:
    """Parse and validate a scenario file (and its fixture references) before any call."""
    path = Path(path)
    scenario, root, raw = read_yaml_model(path, Scenario)
    for i, expr in enumerate(scenario.defaults.thresholds):
        try:
            parse_threshold(expr)
        except ThresholdError as e:
            node = _node_at(root, ("defaults", "thresholds", i))
            raise ScenarioError(path, node.start_mark.line + 1 if node is not None else None,
                                f"defaults.thresholds[{i}]", str(e)) from None
    if fixtures is not None:
        _check_fixtures(path, root, scenario, fixtures)
    return LoadedScenario(scenario, path, hashlib.sha256(raw).hexdigest())


def _check_fixtures(path: Path, root: yaml.Node, scenario: Scenario, fixtures: FixtureLibrary) -> None:
    for i, step in enumerate(scenario.steps):
        if isinstance(step, SayStep):
            sel, loc = step.say, ("steps", i, "say")
        elif isinstance(step, BargeInStep):
            sel, loc = step.barge_in.fixture, ("steps", i, "barge_in", "fixture")
        elif isinstance(step, BackchannelStep):
            sel, loc = step.backchannel.fixture, ("steps", i, "backchannel", "fixture")
        else:
            continue
        node = _node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else None
        if isinstance(sel, Pick):
            if not fixtures.select(sel.pick, sel.voice):
                raise ScenarioError(path, line, _field_name(loc),
                                    f"no fixture of kind {sel.pick!r}" + (f" and voice {sel.voice!r}" if sel.voice else ""))
        elif sel not in fixtures:
            near = sorted(f for f in fixtures.fixtures if f.split("_")[0] == sel.split("_")[0])[:5]
            hint = f"; known ids like: {', '.join(near)}" if near else ""
            raise ScenarioError(path, line, _field_name(loc),
                                f"unknown fixture {sel!r} (not in {fixtures.directory}/manifest.json){hint}")
