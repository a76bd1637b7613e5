"""bench capacity's document: sustained levels per layout and the ratios between layouts."""

from harness.load.capacity import Level, capacity_document, capacity_table


def lv(layout, n, p99, cpu):
    return Level(layout, n, n, n * 500, 0.5, p99, cpu, round(cpu / n, 4), p99 <= 5 and cpu <= 90)


def test_capacity_and_ratios():
    levels = [lv("per-call", 50, 2.0, 25), lv("shared", 50, 1.5, 20), lv("per-call", 100, 7.0, 50),
              lv("shared", 100, 3.0, 40), lv("shared", 200, 9.0, 80)]
    doc = capacity_document("ws-pcm", levels, {"seconds": 10})
    assert doc["layouts"]["per-call"]["sustained_callers"] == 50 and doc["layouts"]["per-call"]["first_failed"] == 100
    assert doc["layouts"]["shared"]["sustained_callers"] == 100 and doc["layouts"]["shared"]["first_failed"] == 200
    assert doc["layouts"]["shared"]["callers_per_core_at_90pct_cpu"] == 225  # 90 % / 0.4 % per caller
    assert doc["ratios"] == {"baseline": "per-call", "sustained_callers": 2.0,
                             "cpu_per_caller_baseline_over_shared": 1.25, "at_callers": 100}
    text = capacity_table(doc)
    assert "shared: 100 callers sustained" in text and "× 2.0" in text


def test_with_repeats_a_level_is_sustained_by_most_of_its_runs():
    runs = [lv("shared", 500, 1.5, 60), lv("shared", 500, 19.0, 80), lv("shared", 500, 2.0, 66),
            lv("shared", 600, 8.0, 78), lv("shared", 600, 3.0, 72), lv("shared", 600, 30.0, 88)]
    for i, x in enumerate(runs):
        x.run = i % 3
    doc = capacity_document("ws-pcm", runs, {})
    shared = doc["layouts"]["shared"]
    assert shared["sustained_callers"] == 500 and shared["runs_held"] == "2/3"
    assert shared["first_failed"] == 600 and shared["first_failed_runs_held"] == "1/3"
    assert shared["cpu_pct_per_caller"] == 0.132  # the median run's 66 % / 500
    text = capacity_table(doc)
    assert "500 callers sustained on one core (in 2/3 runs;" in text and "600 held in 1/3 runs" in text
    assert [line.split()[2] for line in text.splitlines()[1:7]] == ["1", "2", "3", "1", "2", "3"]


def test_a_layout_that_never_held():
    doc = capacity_document("webrtc", [lv("per-call", 5, 8.0, 30)], {})
    assert doc["layouts"]["per-call"]["sustained_callers"] == 0 and "ratios" not in doc


def test_the_naive_layout_is_the_baseline_when_it_ran():
    levels = [lv("naive", 100, 2.0, 60), lv("per-call", 100, 2.0, 40), lv("shared", 100, 1.0, 30),
              lv("naive", 200, 9.0, 95), lv("per-call", 200, 4.0, 70), lv("shared", 200, 2.0, 50),
              lv("shared", 400, 4.0, 88)]
    doc = capacity_document("ws-pcm", levels, {})
    assert doc["ratios"]["baseline"] == "naive" and doc["ratios"]["sustained_callers"] == 4.0
    assert doc["ratios"]["at_callers"] == 200 and doc["ratios"]["cpu_per_caller_baseline_over_shared"] == 1.9
    assert "shared ÷ naive" in capacity_table(doc)


def test_a_failure_while_the_agents_core_was_saturated_is_the_agents():
    busy = Level("shared", 500, 500, 250_000, 1.2, 41.0, 75.0, 0.15, False, agent_cpu_pct=97.5)
    quiet = Level("naive", 200, 200, 100_000, 1.0, 6.0, 70.0, 0.35, False, agent_cpu_pct=40.0)
    held = Level("shared", 400, 400, 200_000, 0.8, 2.3, 69.0, 0.17, True, agent_cpu_pct=99.0)
    bursts = Level("shared", 450, 450, 225_000, 1.0, 9.0, 70.0, 0.16, False, agent_cpu_pct=74.0, agent_cpu_pct_p90=96.0)
    assert busy.agent_bound and bursts.agent_bound and not quiet.agent_bound and not held.agent_bound
    doc = capacity_document("ws-pcm", [quiet, held, busy], {})
    assert doc["layouts"]["shared"]["first_failed_agent_bound"] is True
    assert doc["layouts"]["naive"]["first_failed_agent_bound"] is False
    assert [x["agent_bound"] for x in doc["levels"]] == [False, False, True]
    text = capacity_table(doc)
    assert "NO (agent-bound)" in text and "the agent, not the callers, set that limit" in text


def test_process_cpu_counts_this_process_busy_time():
    import os
    import time

    from harness.load.capacity import process_cpu_s
    before = process_cpu_s(os.getpid())
    t = time.process_time()
    while time.process_time() - t < 0.3:  # burn 0.3 s of CPU
        pass
    after = process_cpu_s(os.getpid())
    assert before is not None and 0.2 <= after - before <= 1.0
    assert process_cpu_s(2**22 + 12345) is None  # no such process


async def test_cpu_over_a_window_of_a_busy_process():
    import subprocess
    import sys

    from harness.load.capacity import _cpu_over
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 8: pass"])
    try:
        mean, p90 = await _cpu_over(spin.pid, 2.0)
    finally:
        spin.kill()
        spin.wait()
    assert mean is not None and 40 <= mean <= 105 and 40 <= p90 <= 105  # one busy thread, on a shared 2-core VM
    assert await _cpu_over(None, 0.01) == (None, None)
