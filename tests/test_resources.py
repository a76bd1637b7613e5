"""turnbench's own data: default fixtures and built-in scenarios, found from any directory."""

from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.resources import builtin_scenarios, default_fixtures_dir, resolve_scenario


def test_the_built_in_scenarios_and_fixtures_are_found():
    names = builtin_scenarios()
    assert {"smoke", "conversation", "pauses", "barge_in"} <= set(names)
    assert (default_fixtures_dir() / "manifest.json").is_file()


def test_a_scenario_is_a_file_first_then_a_built_in_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario("smoke") == builtin_scenarios()["smoke"]
    assert resolve_scenario("smoke.yaml") == builtin_scenarios()["smoke"]
    (tmp_path / "smoke").write_text("version: 1\n")
    assert resolve_scenario("smoke").resolve() == (tmp_path / "smoke").resolve()  # a file wins over the name


def test_an_unknown_scenario_names_the_built_in_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"nosuch: no such scenario file.*built-in: .*smoke"):
        resolve_scenario("nosuch")
    with pytest.raises(InputError, match="no such scenario file"):
        resolve_scenario("some/dir/smoke")  # a path is never taken for a name
    (tmp_path / "adir").mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        resolve_scenario("adir")
