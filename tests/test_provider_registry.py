"""Providers are entry points of the `turnbench.providers` group, turnbench's own included, so a
third-party package adds one without editing turnbench."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.agent.providers.registry import BUILTIN, available, create, parse_provider_opts, registered
from harness.errors import InputError
from tests.browser import CHROMIUM, NEEDS_CHROMIUM, render_offline

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


MATRIX = """\
# the package's TTS against a built-in one, and a cell whose LLM server is not there
base: {stt: sim, llm: sim}
cells:
  - {name: beep, tts: beep, options: {tts: {ms_per_char: 25}}}
  - {name: sim-tts, tts: sim}
  - {name: no-server, tts: sim, llm: openai, options: {llm: {base_url: "http://127.0.0.1:PORT/v1"}}}
"""
ONE_TURN = "version: 1\nname: one-turn\ndefaults: {calls: 1, concurrency: 1}\nsteps:\n  - say: utt_01_joe\n  - wait: reply\n"


@pytest.mark.slow
def test_a_provider_package_installed_beside_turnbench_runs_in_a_matrix_cell(tmp_path):
    """The documented plugin path, end to end: build the package into a fresh environment, run
    `turnbench matrix` with a cell that uses it, a built-in cell and a cell that cannot start."""
    package = shutil.copytree(PACKAGE, tmp_path / "package")  # builds leave files beside the sources
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(package)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "m.yaml").write_text(MATRIX.replace("PORT", str(port)))
    (tmp_path / "one.yaml").write_text(ONE_TURN)
    r = subprocess.run([str(py), "-m", "harness.cli", "matrix", "one.yaml", "--cells", "m.yaml", "--rounds", "1",
                        "--no-progress", "--out", str(tmp_path / "runs")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=400)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]  # 1: a cell failed; the others were measured
    assert "round 1/1 · cell 1/3 beep: P50" in r.stderr  # progress names round and cell
    (top,) = (tmp_path / "runs").iterdir()
    doc = json.loads((top / "matrix.json").read_text())
    assert doc["schema"] == "turnbench.matrix/1" and doc["status"] == "completed"
    cells = {c["name"]: c for c in doc["cells"]}
    beep = cells["beep"]
    assert beep["status"] == "ok" and beep["providers_run"]["tts"] == "beep" and beep["latency_ms"]["n"] == 1
    assert [x["status"] for x in beep["rounds"]] == ["completed"]
    assert beep["usage"]["replies"] >= 2 and beep["usage"]["tts_chars"] > 0
    failed = cells["no-server"]
    assert failed["status"] == "failed" and f"127.0.0.1:{port}/v1/models: cannot connect" in failed["errors"][0]
    assert {p["metric"] for p in doc["pairwise"]} == {"latency_ms.p50", "latency_ms.p99"}
    assert [(p["a"], p["b"]) for p in doc["pairwise"]] == [("beep", "sim-tts")] * 2
    assert [r["cell"] for r in doc["ranking"]][-1] == "no-server"
    # and turnbench itself was not touched: the provider is not known outside that environment
    assert "beep" not in available("tts")
    if CHROMIUM is None:
        pytest.skip(NEEDS_CHROMIUM)
    page = top / "matrix.html"

    def check(pg) -> None:
        assert pg.locator("svg").count() == 2  # latency with intervals, and where the time goes
        for i in range(2):
            box = pg.locator("svg").nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 80
        assert pg.locator("text=within noise").count() + pg.locator("td", has_text="beep").count() > 2

    seen = render_offline(page, tmp_path / "matrix.png", check)
    assert not seen.console and not seen.errors, seen.console + seen.errors
    assert seen.requests == [page.as_uri()]  # nothing fetched but the file itself
