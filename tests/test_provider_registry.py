"""Providers are entry points of the `turnbench.providers` group, turnbench's own included, so a
third-party package adds one without editing turnbench."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.agent.providers.registry import BUILTIN, available, create, parse_provider_opts, registered
from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).parent / "fakes" / "provider_package"


def test_the_built_in_providers_are_the_entry_points_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["turnbench.providers"]
    assert declared == BUILTIN
    assert {"pocketsphinx", "whisper", "sim"} <= set(available("stt"))
    assert registered()["tts"]["piper"] == "harness.agent.providers.tts_piper:PiperTts"


def test_provider_options_are_typed_and_checked():
    assert parse_provider_opts(["llm.model=qwen", "stt.beam_size=2", "tts.fast=true", "llm.stop=[\".\"]"]) == {
        "llm": {"model": "qwen", "stop": ["."]}, "stt": {"beam_size": 2}, "tts": {"fast": True}}
    for bad in ("model=qwen", "radio.x=1", "llm.=1", "llm.model"):
        with pytest.raises(InputError, match="STAGE.KEY=VALUE"):
            parse_provider_opts([bad])
    with pytest.raises(InputError, match="tts provider 'sim': .*nonsense.*options given: \\['nonsense'\\]"):
        create("tts", "sim", nonsense=1)
    with pytest.raises(InputError, match="unknown tts provider 'carrier'.*piper"):
        create("tts", "carrier")


@pytest.mark.slow
def test_a_provider_package_installed_beside_turnbench_runs_in_the_reference_agent(tmp_path):
    package = shutil.copytree(PACKAGE, tmp_path / "package")  # builds leave files beside the sources
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(package)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(py), "-m", "harness.cli", "run", "smoke", "--target", "reference", "--no-progress",
                        "--out", str(tmp_path / "runs"), "--agent-args",
                        "--stt sim --llm sim --tts beep --provider-opt tts.ms_per_char=25"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["providers"]["tts"]["name"] == "beep" and not summary["providers"]["tts"].get("simulated")
    assert summary["latency_ms"]["n"] == 4  # every turn answered, in tones
    # and turnbench itself was not touched: the provider is not known outside that environment
    assert "beep" not in available("tts")
