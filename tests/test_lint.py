"""The tree stays clean: ruff (configured in pyproject.toml) finds nothing, and the built wheel
works on its own from an empty directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or pytest.fail("ruff is missing: pip install -e '.[test]'")
    r = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_the_wheel_alone_runs_the_smoke_scenario_from_an_empty_directory():
    r = subprocess.run(["bash", str(ROOT / "scripts" / "wheel_smoke.sh")], capture_output=True, text=True,
                       cwd=ROOT, timeout=600, env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "smoke → oracle over ws-pcm: 2 calls, 4 turns" in r.stdout
    assert any(line.startswith("smoke ") for line in r.stdout.splitlines())  # `scenarios list` names it
