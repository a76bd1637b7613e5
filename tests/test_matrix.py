"""`turnbench matrix`: cells from a grid or a file, usage and cost, the pooled analysis, the ranking.

The end-to-end run (a third-party provider package in a matrix cell, a failing cell, the page in
Chromium) is in tests/test_provider_registry.py, where the package is installed."""

import base64
import json
import re
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.matrix.analysis import RoundResult, matrix_document, matrix_table
from harness.matrix.cost import Prices, cost_per_call_minute, load_prices, usage_of
from harness.matrix.plan import Cell, cells_from_grid, check_cells, load_matrix_file
from harness.matrix.run import round_order
from harness.report.matrix_page import matrix_html
from harness.scenario.loader import ScenarioError
from tests.fakes.runs import synthetic_turns, write_run


def test_a_grid_is_every_combination_named_by_what_varies():
    cells = cells_from_grid({"stt": ["pocketsphinx", "whisper"], "llm": ["sim"], "tts": ["piper", "espeak"]})
    assert [c.name for c in cells] == ["pocketsphinx+piper", "pocketsphinx+espeak", "whisper+piper", "whisper+espeak"]
    assert cells[3].providers == {"stt": "whisper", "llm": "sim", "tts": "espeak"}
    assert cells[3].command_args() == "--stt whisper --llm sim --tts espeak"
    check_cells(cells)
    with pytest.raises(InputError, match="no cells"):
        check_cells(cells_from_grid({}))
    with pytest.raises(InputError, match="unknown stt provider 'nope'.*pocketsphinx"):
        check_cells(cells_from_grid({"stt": ["nope"]}))


def test_a_matrix_file_lists_cells_on_a_base_and_errors_name_the_line(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("version: 1\nbase:\n  llm: sim\n  options: {llm: {ttft_ms: 'const:50'}}\n  agent_args: --eot-silence-ms 400\n"
                 "cells:\n  - name: fast\n    stt: sim\n    tts: espeak\n"
                 "  - stt: pocketsphinx\n    options: {llm: {tokens_per_s: 90}, stt: {x: 'a b'}}\n")
    fast, other = load_matrix_file(f)
    assert fast.name == "fast" and fast.providers == {"stt": "sim", "llm": "sim", "tts": "espeak"}
    assert other.name == "pocketsphinx"  # unnamed: by the provider that differs between the cells
    assert other.options == {"llm": {"ttft_ms": "const:50", "tokens_per_s": 90}, "stt": {"x": "a b"}}
    assert other.command_args() == ("--stt pocketsphinx --llm sim --provider-opt 'stt.x=a b' --provider-opt "
                                    "llm.ttft_ms=const:50 --provider-opt llm.tokens_per_s=90 --eot-silence-ms 400")
    f.write_text("cells:\n  - stt: sim\n  - stt: whisperx\n")
    with pytest.raises(ScenarioError, match=r"m.yaml:3: cells\[1\].stt: unknown stt provider 'whisperx'"):
        load_matrix_file(f)
    f.write_text("cells:\n  - stt: sim\n    color: red\n")
    with pytest.raises(ScenarioError, match=r"m.yaml:3: cells\[0\].color: Extra inputs"):
        load_matrix_file(f)
    f.write_text("grid: {stt: [sim]}\ncells: [{stt: sim}]\n")
    with pytest.raises(ScenarioError, match="exactly one of `cells`"):
        load_matrix_file(f)
    f.write_text("cells:\n  - stt: sim\n    agent_args: --stt whisper\n")
    with pytest.raises(ScenarioError, match=r":3: cells\[0\].agent_args: .*--stt is set by the cell"):
        load_matrix_file(f)
    f.write_text("cells:\n  - {name: a, stt: sim}\n  - {name: a, stt: pocketsphinx}\n")
    with pytest.raises(InputError, match="two cells are named 'a'"):
        load_matrix_file(f)


def test_rounds_alternate_the_order_of_the_cells():
    cells = cells_from_grid({"tts": ["a", "b", "c"]})
    assert [c.name for c in round_order(cells, 0)] == ["a", "b", "c"]
    assert [c.name for c in round_order(cells, 1)] == ["c", "b", "a"]
    positions = {c.name: sum(round_order(cells, r).index(c) for r in range(2)) for c in cells}
    assert len(set(positions.values())) == 1  # over two rounds, every cell at the same mean position


def _folder_with_usage(path: Path, call_seconds: list[float], replies: list[dict]) -> Path:
    path.mkdir(parents=True)
    rows = [{"schema": "turnbench.timeline/1", "call_id": f"c{i}", "step_ms": 10,
             "caller_peaks": base64.b64encode(bytes(int(s * 100))).decode()} for i, s in enumerate(call_seconds)]
    (path / "timelines.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    events = [{"call": "c0", "type": "reply.usage", **u} for u in replies] + [{"call": "c0", "type": "vad.start"}]
    (path / "agent_events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"torn')
    return path


def test_usage_and_cost_per_call_minute(tmp_path):
    folder = _folder_with_usage(tmp_path / "r1", [30.0, 90.0], [
        {"llm_prompt_chars": 4000, "llm_reply_chars": 400, "tts_chars": 380},
        {"llm_prompt_chars": 4000, "llm_reply_chars": 0, "tts_chars": 0, "speculative": True}])
    usage = usage_of(folder)
    assert usage == {"call_minutes": 2.0, "replies": 2, "llm_prompt_chars": 8000, "llm_reply_chars": 400,
                     "tts_chars": 380}
    prices = Prices(stt={"whisper": {"per_audio_minute": 0.006}},
                    llm={"llama": {"per_1k_input_tokens": 0.5, "per_1k_output_tokens": 2.0}},
                    tts={"piper": {"per_1k_chars": 15.0}})
    cost = cost_per_call_minute(usage, {"stt": ["whisper"], "llm": ["llama"], "tts": ["x", "piper"]}, prices)
    # per minute: STT 0.006; LLM (2000 tokens × 0.5 + 100 × 2.0) / 1000 / 2; TTS 0.38 × 15 / 2
    assert cost["by_stage"] == {"stt": 0.006, "llm": 0.6, "tts": 2.85}
    assert cost["per_call_minute"] == pytest.approx(3.456) and cost["missing"] == []
    cost = cost_per_call_minute(usage, {"stt": ["pocketsphinx"], "llm": ["llama"], "tts": ["piper"]}, prices)
    assert cost["per_call_minute"] is None and cost["missing"] == ["stt.pocketsphinx"]


def test_a_prices_file_is_validated(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("currency: EUR\nllm:\n  llama: {per_1k_input_tokens: 0.1}\n")
    with pytest.raises(ScenarioError, match=r"p.yaml:3: llm.llama: .*both per_1k_input_tokens and per_1k_output"):
        load_prices(f)
    f.write_text("stt:\n  whisper: {per_audio_minute: -1}\n")
    with pytest.raises(ScenarioError, match=r"p.yaml:2: stt.whisper.per_audio_minute: .*greater than or equal to 0"):
        load_prices(f)
    f.write_text("currency: EUR\ntts:\n  piper: {per_1k_chars: 0.02}\n")
    assert load_prices(f).tts["piper"].per_1k_chars == 0.02


def _round(tmp_path: Path, cell: str, r: int, median: float, seed: int, status: str = "completed") -> RoundResult:
    folder = tmp_path / cell / f"r{r}"
    if status == "failed":
        folder.mkdir(parents=True)
        return RoundResult(r, folder, "failed", "the reference agent exited with code 2", {})
    write_run(folder, synthetic_turns(200, median_ms=median, seed=seed))
    return RoundResult(r, folder, status, None, {"stt": cell})


def test_the_analysis_pools_rounds_ranks_by_p50_and_does_not_rank_noise(tmp_path):
    cells = [Cell(n, {"stt": n}) for n in ("slow", "fast", "fast2", "broken")]
    results = {"slow": [_round(tmp_path, "slow", r, 800, r) for r in (1, 2)],
               "fast": [_round(tmp_path, "fast", r, 400, 10 + r) for r in (1, 2)],
               "fast2": [_round(tmp_path, "fast2", r, 402, 20 + r) for r in (1, 2)],
               "broken": [_round(tmp_path, "broken", r, 0, 0, "failed") for r in (1, 2)]}
    meta = {"status": "completed", "rounds": 2, "scenario": "s", "calls_per_round": 40, "concurrency": 1, "seed": 1,
            "transport": "ws-pcm", "started_at": "2026-12-07T00:00:00", "ended_at": None}
    doc = matrix_document(cells, results, None, meta)
    by = {c["name"]: c for c in doc["cells"]}
    # pooled over both rounds: 2 × 160 answered turns (backchannels have no latency)
    assert by["slow"]["latency_ms"]["n"] == 320 and by["slow"]["turns"] == 400
    lat = by["fast"]["latency_ms"]
    assert lat["ci95"]["p90"][0] <= lat["p90"] <= lat["ci95"]["p90"][1]
    assert 360 < lat["p50"] < 440 and by["fast"]["status"] == "ok"
    assert abs(sum(s["mean"] for s in by["fast"]["stages_ms"].values()) - lat["mean"]) < 1.0
    assert by["fast"]["wer"] == pytest.approx(0.1) and by["fast"]["false_interruption_rate_n"] == 320
    assert by["broken"]["status"] == "failed" and by["broken"]["latency_ms"] is None
    assert by["broken"]["errors"] == ["round 1: the reference agent exited with code 2",
                                      "round 2: the reference agent exited with code 2"]
    ranks = {r["cell"]: r for r in doc["ranking"]}
    assert ranks["slow"]["rank"] == 3 and ranks["broken"]["rank"] is None
    assert {ranks["fast"]["rank"], ranks["fast2"]["rank"]} == {1}  # 400 vs 402 ms: within noise, one rank
    pair = next(p for p in doc["pairwise"] if {p["a"], p["b"]} == {"slow", "fast"} and p["metric"] == "latency_ms.p50")
    assert pair["significant"] and pair["faster"] == "fast"
    slower_minus_faster = pair["ci95"] if pair["a"] == "fast" else [-x for x in reversed(pair["ci95"])]
    assert slower_minus_faster[0] > 0  # the interval of slow − fast lies wholly above zero
    noise = next(p for p in doc["pairwise"] if {p["a"], p["b"]} == {"fast", "fast2"} and p["metric"] == "latency_ms.p50")
    assert not noise["significant"] and noise["faster"] is None
    assert not any("broken" in (p["a"], p["b"]) for p in doc["pairwise"])
    table = matrix_table(doc)
    assert "FAILED" in table and "broken: round 1: the reference agent exited" in table
    html = matrix_html(doc)
    assert html.count("<svg") == 2 and "within noise" in html and not re.search(r'(src|href)="https?:', html)


def test_a_stage_left_to_the_agents_default_is_priced_under_its_registered_name(tmp_path):
    folder = _folder_with_usage(tmp_path / "c" / "r1", [60.0], [{"llm_prompt_chars": 4000, "llm_reply_chars": 0,
                                                                 "tts_chars": 1000}])
    write_run(folder, synthetic_turns(20, seed=3))
    cell = Cell("c", {"stt": "whisper"})  # llm and tts: the agent's defaults (llama, piper)
    ran = {"stt": "whisper-tiny.en", "llm": "llama-smollm2", "tts": "piper"}  # as the agent names them
    prices = Prices(stt={"whisper": {"per_audio_minute": 0.01}}, llm={"llama": {"per_1k_tokens": 1.0}},
                    tts={"piper": {"per_1k_chars": 2.0}})
    doc = matrix_document([cell], {"c": [RoundResult(1, folder, "completed", None, ran)]}, prices,
                          {"status": "completed"})
    cost = doc["cells"][0]["cost"]
    assert cost["missing"] == [] and cost["by_stage"] == {"stt": 0.01, "llm": 1.0, "tts": 2.0}
