"""The agent's log under a flood of the same error: a few lines and a count, not a million lines."""

from __future__ import annotations

import io
import logging

from harness.agent.log_limit import RepeatLimiter


def test_a_repeated_message_is_kept_a_few_times_per_window_then_counted():
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatLimiter(burst=3, window_s=60, clock=lambda: now[0]))
    log = logging.getLogger("test.flood")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(100_000):
            log.error("accept failed: %s", "Too many open files")
            log.error("a different message %d", i % 2)
        now[0] = 61.0
        log.error("accept failed: %s", "Too many open files")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert sum("accept failed" in line for line in lines) == 4
    assert sum("a different message" in line for line in lines) == 3
    assert "99997 more like this were suppressed in the last 60 s" in lines[-1]
