"""`turnbench report`: the HTML report (rendered in headless Chromium), comparisons and tables."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.metrics.envelope import decode
from harness.report.data import load_run
from harness.report.html import build_report, pick_timelines
from tests.browser import CHROMIUM, NEEDS_CHROMIUM, render_offline
from tests.fakes.runs import synthetic_turns, write_run

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)


def test_a_single_run_report_has_the_headline_and_every_figure(tmp_path):
    run = write_run(tmp_path / "r", synthetic_turns(300, seed=1), thresholds=["latency_ms.p99<800"])
    html = build_report([load_run(run)])
    for metric in ("latency_ms.p50", "latency_ms.p99", "false_interruption_rate_paused", "barge_in_success_rate",
                   "backchannel_success_rate", "turn_detection_ms.p50", "wer"):
        assert f'data-metric="{metric}"' in html
    figs = set(re.findall(r'data-figure="([^"]+)"', html))
    assert {"latency-cdf", "latency-histogram", "stage-waterfall", "latency-over-time",
            "latency-vs-concurrency"} <= figs
    assert not re.search(r'(src|href)="https?:', html) and "<script" not in html
    # the P99 threshold of the run is shown as such, latency P50 against the 300 ms budget
    row = re.search(r'data-metric="latency_ms.p50">(.*?)</tr>', html, re.S).group(1)
    assert "FAIL" in row and "budget" in row
    assert "(threshold)" in re.search(r'data-metric="latency_ms.p99">(.*?)</tr>', html, re.S).group(1)


def test_timelines_pick_the_slowest_calls_and_every_false_interruption(tmp_path):
    turns = synthetic_turns(100, seed=2, fi_rate=0.0)
    turns[7]["false_interruption"], turns[7]["false_interruption_at_ms"] = True, 300.0
    turns[3]["barge_in_success"] = False
    turns[51]["latency_ms"] = 9999.0
    picks = dict(pick_timelines(load_run(write_run(tmp_path / "r", turns))))
    assert picks[turns[51]["call_id"]].startswith("slowest turn 1 (9999 ms)")
    assert "false interruption in turn 2" in picks[turns[7]["call_id"]]
    assert "failed barge-in in turn 3" in picks[turns[3]["call_id"]]
    assert len(picks) == 4  # three slowest calls (one also failed its barge-in) + the false interruption


def test_a_comparison_overlays_runs_and_flags_significant_deltas(tmp_path):
    a = write_run(tmp_path / "a", synthetic_turns(500, seed=1))
    b = write_run(tmp_path / "b", synthetic_turns(500, seed=2, median_ms=700), scenario_sha="b" * 64)
    out = tmp_path / "cmp.html"
    r = cli("report", a, b, "--label", "provider A", "--label", "provider B", "-o", out)
    assert r.exit_code == 0, r.output
    html = out.read_text()
    rows = re.findall(r'<tr class="(\w*)"><td>provider B</td><td><code>([\w.]+)</code>.*?<td>([\w ]+)</td></tr>', html)
    verdicts = {m: (cls, v) for cls, m, v in rows}
    assert verdicts["latency_ms.p50"] == ("fail", "worse")
    assert verdicts["false_interruption_rate"][1] == "not significant"
    assert 'data-role="hash-mismatch"' in html and html.count("provider A") > 3


def test_tables_in_json_csv_and_markdown(tmp_path):
    run = write_run(tmp_path / "r", synthetic_turns(50, seed=1))
    doc = json.loads(cli("report", run, "--format", "json").output)
    assert doc["runs"][0]["summary"]["turns"] == 50
    csv = cli("report", run, "--format", "csv", "--table", "turns").output.splitlines()
    assert csv[0].startswith("run,call_id,turn,kind") and len(csv) == 51
    md = cli("report", run, "--format", "markdown").output
    assert md.startswith("| metric | r |") and "| latency_ms.p50 |" in md


def test_bad_input_names_the_file_and_line(tmp_path):
    run = write_run(tmp_path / "r", synthetic_turns(10, seed=1))
    (run / "turns.jsonl").write_text('{"schema": "turnbench.turn/1"}\nnot json\n{}\n')
    r = CliRunner().invoke(main, ["report", str(run)])
    assert r.exit_code == 2 and f"{run / 'turns.jsonl'}:2: not valid JSON" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "summary.json: missing" in r.output


@pytest.fixture(scope="module")
def conversation_run(tmp_path_factory):
    """A real conversation run against the oracle over a loopback socket (about 40 s)."""
    out = tmp_path_factory.mktemp("runs")
    subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "scenarios/conversation.yaml"),
                    "--target", "oracle", "--calls", "2", "--concurrency", "2", "--out", str(out), "--no-progress",
                    "--oracle", "false_interrupt_pause_ms=300"],
                   check=False, capture_output=True, text=True, timeout=240)
    (folder,) = out.iterdir()
    return folder


@pytest.mark.slow
def test_a_run_writes_timelines_that_match_its_turns(conversation_run):
    rows = [json.loads(x) for x in (conversation_run / "timelines.jsonl").read_text().splitlines()]
    turns = [json.loads(x) for x in (conversation_run / "turns.jsonl").read_text().splitlines()]
    assert {r["call_id"] for r in rows} == {t["call_id"] for t in turns} and len(rows) == 2
    for t in turns:
        if t["latency_ms"] is None:
            continue
        tl = next(r for r in rows if r["call_id"] == t["call_id"])
        caller, agent = decode(tl["caller_peaks"]), decode(tl["agent_peaks"])
        i_eos = int(t["eos_s"] * 100)
        assert caller[i_eos - 30 : i_eos].max() > 0.02  # the caller was speaking just before EOS
        assert caller[i_eos + 3 : i_eos + 20].max() < 0.02  # and silent after it
        j = int((t["response_onset_s"] - tl["agent_origin_s"]) * 100)
        assert agent[j - 10 : j - 1].max() < 0.02 < agent[j + 1 : j + 20].max()  # the agent starts there
    assert (conversation_run / "report.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NEEDS_CHROMIUM)
def test_the_report_renders_in_headless_chromium_offline(conversation_run, tmp_path):
    report = conversation_run / "report.html"
    html = report.read_text()
    expected = re.findall(r'data-figure="([^"]+)"', html)
    assert {"latency-cdf", "latency-histogram", "latency-over-time"} <= set(expected)
    assert any(e.startswith("timeline-") for e in expected)

    def check(page):
        assert page.locator("#headline table tr").count() >= 11
        assert page.locator("#headline").is_visible()
        for fig in expected:
            box = page.locator(f'[data-figure="{fig}"] svg').bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100, fig

    shot = tmp_path / "report.png"
    seen = render_offline(report, shot, check)
    assert not seen.console and not seen.errors, seen.console + seen.errors
    assert seen.requests == [report.as_uri()]  # nothing fetched but the file itself
    from PIL import Image
    img = Image.open(shot).convert("L")
    assert img.height > 2000 and len(set(img.resize((64, 256)).tobytes())) > 20  # drawn, not blank


def test_a_call_timeline_shows_the_filler_before_the_content_and_the_dead_air(tmp_path):
    from harness.report.figures import call_timeline
    turns = synthetic_turns(4, seed=3, fi_rate=0.0)
    t = turns[0]
    t.update(eos_s=2.0, response_onset_s=2.3, latency_ms=300.0, first_content_ms=1450.0,
             dead_air_start_s=2.9, dead_air_ms=420.0)
    run = load_run(write_run(tmp_path / "r", turns))
    svg = call_timeline(run, t["call_id"], None, "test")
    assert "filler" in svg and "content 1450 ms" in svg and "dead air 420 ms" in svg
    plain = [dict(x, first_content_ms=x.get("latency_ms"), dead_air_ms=0.0) for x in turns]
    svg = call_timeline(load_run(write_run(tmp_path / "p", plain)), t["call_id"], None, "test")
    assert "filler" not in svg and "dead air" not in svg  # content at once, no gap: nothing to mark
