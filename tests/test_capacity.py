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
