"""Scenario files: the YAML model, its validation and loading."""

from harness.scenario.loader import ScenarioError, load_scenario
from harness.scenario.model import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario"]
