"""On the Locust master (or the only process): every engine's exact turn rows into one run folder.

turns.jsonl gets each row as it arrives (nothing is lost if the master dies); calls.jsonl one
line per finished call (its error, if any); engines.json each engine's final health.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.results.folder import RunFolder

CALLS_FILE, ENGINES_FILE = "calls.jsonl", "engines.json"


class Collector:
    def __init__(self, folder: str | Path):
        self.folder = RunFolder(Path(folder))
        self._calls = (self.folder.path / CALLS_FILE).open("a", buffering=1)
        self.engines: dict[str, dict | None] = {}
        self.calls = 0

    def add(self, payload: dict) -> None:
        """One finished call (or, with call_id None, the kept turns of calls abandoned at stop)."""
        rows = payload.get("rows") or []
        self.folder.append_turns(rows)
        if payload.get("call_id") is not None:
            self.calls += 1
            self._calls.write(json.dumps({"call_id": payload["call_id"], "turns": len(rows),
                                          "error": payload.get("error")}) + "\n")
        else:
            for cid in sorted({r["call_id"] for r in rows}):
                self._calls.write(json.dumps({"call_id": cid, "turns": sum(r["call_id"] == cid for r in rows),
                                              "error": payload.get("error"), "abandoned": True}) + "\n")

    def engine_drained(self, payload: dict) -> None:
        """An engine's last word: its drained message (health, calls abandoned at the deadline)."""
        msg = payload.get("health") or {}
        self.engines[payload.get("node", "?")] = {**(msg.get("health") or {}), "abandoned": msg.get("abandoned"),
                                                  "lost": bool(msg.get("lost"))}
        self.folder.write_json(ENGINES_FILE, {"schema": "turnbench.engines/1", "engines": self.engines})

    def close(self) -> None:
        self.folder.write_json(ENGINES_FILE, {"schema": "turnbench.engines/1", "engines": self.engines})
        self._calls.close()
        self.folder.close()
