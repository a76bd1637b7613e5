"""Calibration over every transport, and through an impaired network path: the measurement is
proven against the oracle's own account on each wire protocol, not only on ws-pcm."""

import asyncio

import pytest

from harness.calibration.cases import CASES
from harness.calibration.run import calibrate
from harness.transports.impair import PROFILES

pytestmark = pytest.mark.slow


def run(fixtures, names, **kw):
    chosen = tuple(c for c in CASES if c.name in names)
    return asyncio.run(calibrate(fixtures, chosen, calls_per_case=1, **kw))


def machine_independent_failures(report):
    # raw medians measure the loopback and the hypervisor (see test_oracle); the rest is the harness's own error
    return [b for b in report["bounds"] if not b["pass"] and not b["check"].startswith("raw.")]


def assert_classification_exact(report):
    for name, c in report["classification"].items():
        assert c["correct"] == c["total"], (name, report["mismatches"])
    assert report["classification"]["barge_in"]["total"] >= 2


def test_twilio_playout_model_is_exact(fixtures):
    report = run(fixtures, ("burst_all", "slow_barge_in", "leading_silence", "hiss", "stall"), transport="twilio")
    assert report["transport"] == "twilio"
    assert not machine_independent_failures(report), report["bounds"]
    assert_classification_exact(report)
    assert report["metrics_net_of_transport"]["barge_in_stop_ms"]["n"] >= 2


def test_webrtc_added_latency_is_measured_and_steady(fixtures):
    report = run(fixtures, ("slow_barge_in", "quiet_nothing_between"), transport="webrtc")  # 2 WebRTC cases run at once
    added = report["transport_added_ms"]["latency_ms"]
    assert 20 <= added["median"] <= 45  # one 20 ms packet + Opus's 6.5 ms + loopback
    assert report["metrics_net_of_added_latency"]["latency_ms"]["p99_abs_error_ms"] <= 10
    assert_classification_exact(report)


def test_wifi_profile_is_accounted_for_exactly(fixtures):
    report = run(fixtures, ("dead_air", "slow_barge_in", "jittered", "stall"), impairment=PROFILES["wifi"])
    assert report["impairment"]["name"] == "wifi"
    added = report["impairment_added_ms"]["latency_ms"]
    assert 25 <= added <= 45  # 15 ms each way plus jitter that keeps order
    assert not machine_independent_failures(report), report["bounds"]
    assert report["metrics_net_of_impairment"]["latency_ms"]["p99_abs_error_ms"] <= 3.0
    # a gap inside a reply, widened or narrowed by the path's jitter: exact once that is taken out
    dead = report["metrics_net_of_impairment"]["dead_air_ms"]
    assert dead["n"] >= 6 and dead["p99_abs_error_ms"] <= 1.0
    # the content after the filler, found from the oracle's mark through the path: latency's bound
    content = report["metrics_net_of_impairment"]["first_content_ms"]
    assert content["n"] >= 4 and content["p99_abs_error_ms"] <= 3.0
    assert_classification_exact(report)


def test_openai_realtime_is_calibrated_like_the_other_websockets(fixtures):
    report = run(fixtures, ("slow_barge_in", "stall"), transport="openai-realtime")
    assert report["transport"] == "openai-realtime"
    assert not machine_independent_failures(report), report["bounds"]
    assert_classification_exact(report)
    net = report["metrics_net_of_transport"]
    assert net["latency_ms"]["p99_abs_error_ms"] <= 3.0 and net["barge_in_stop_ms"]["p99_abs_error_ms"] <= 5.0
