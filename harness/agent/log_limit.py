"""The agent server's log stays readable under attack: a message repeated faster than a person
could read it is kept a few times per minute, then counted, never written a million times."""

from __future__ import annotations

import logging
import time

BURST = 5
"""Records of one message (logger + format string) kept per window, tracebacks included."""
WINDOW_S = 60.0


class RepeatLimiter(logging.Filter):
    """Keeps at most `burst` records of each message per `window_s`; the first one after a
    suppressed stretch says how many were dropped."""

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S, clock=time.monotonic):
        super().__init__()
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self._seen: dict[tuple[str, str], list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.window_s:
            dropped = state[2] if state is not None else 0
            state = self._seen[key] = [now, 0, 0]
            if dropped:
                record.msg = f"{record.msg} ({dropped} more like this were suppressed in the last " \
                             f"{self.window_s:g} s)"
        state[1] += 1
        if state[1] > self.burst:
            state[2] += 1
            return False
        return True


def install(level: int = logging.WARNING) -> RepeatLimiter:
    """Log warnings and errors to stderr (the agent log), each message rate-limited."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limiter = RepeatLimiter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(limiter)
    return limiter
