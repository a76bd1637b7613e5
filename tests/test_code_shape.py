"""Code that stays readable: no function in harness/ of 80 lines or more, and no command with
more than 12 parameters of its own (the shared option groups of harness/cli/options.py aside)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import click

import harness
from harness.cli import main

ROOT = Path(harness.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_OWN_PARAMETERS = 12
SHARED_GROUPS = {"target", "transport", "transport_values", "impairment", "agent_args", "oracle_opts", "agent_token", "out_dir",
                 "fixtures_dir"}
"""What `target_options`, `impairment_options` and `output_options` hand a command."""


def long_functions(root: Path, limit: int) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n >= limit:
                    out.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_the_function_length_check_sees_a_long_function(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n" + "    x = 1\n" * 90)
    assert long_functions(tmp_path, MAX_FUNCTION_LINES) == [f"{tmp_path.name}/m.py:1 f (91 lines)"]


def test_no_function_in_harness_is_80_lines_or_longer():
    assert long_functions(ROOT, MAX_FUNCTION_LINES) == []


def test_no_command_has_more_than_12_parameters_of_its_own():
    heavy = {}
    for name, cmd in commands(main):
        own = set(inspect.signature(cmd.callback).parameters) - SHARED_GROUPS
        if len(own) > MAX_OWN_PARAMETERS:
            heavy[name] = sorted(own)
    assert not heavy, heavy
