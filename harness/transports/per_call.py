"""Per-call values in transport options: `{call_id}`, `{uuid}` and `{run_id}`.

Servers that want a client-chosen id per connection (a WebRTC offer's `webrtc_id`, a Twilio
custom parameter) get a fresh one per call, so concurrent calls never collide:
`--webrtc-field webrtc_id={uuid}`. Only these three names are replaced, only where written as
`{name}`; any other `{word}` is refused up front (a misspelt placeholder would otherwise be sent
as is, the same on every call). Braces that are not a bare word (`{"a": 1}`) are left alone.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from harness.errors import InputError

PLACEHOLDERS = ("call_id", "uuid", "run_id")
_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_placeholders(value: Any, where: str) -> None:
    """InputError naming `where` when a string in `value` holds an unknown `{word}`."""
    for s in _strings(value):
        for m in _WORD.finditer(s):
            if m.group(1) not in PLACEHOLDERS:
                raise InputError(f"{where}: unknown placeholder {m.group(0)} in {s!r} (per-call values: "
                                 f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})")


def has_placeholders(value: Any) -> bool:
    return any(m.group(1) in PLACEHOLDERS for s in _strings(value) for m in _WORD.finditer(s))


def expand(value: Any, call_id: str, run_id: str) -> Any:
    """`value` with every placeholder replaced; `{uuid}` is one new UUID per call (the same
    wherever it appears in that call's options)."""
    if not has_placeholders(value):
        return value
    values = {"call_id": call_id, "run_id": run_id, "uuid": str(uuid.uuid4())}

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return _WORD.sub(lambda m: values.get(m.group(1), m.group(0)), v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(walk(x) for x in v)
        return v

    return walk(value)


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
