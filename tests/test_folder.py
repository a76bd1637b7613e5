"""The run folder: JSON that is JSON (no NaN), and result rows read strictly but forgivingly."""

from __future__ import annotations

import math

import pytest

from harness.errors import InputError
from harness.results.folder import RunFolder, read_rows


def test_nan_is_never_written_into_a_result_file(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(ValueError, match="not JSON compliant"):
        folder.write_json("summary.json", {"latency_ms": math.nan})
    with pytest.raises(ValueError):
        folder.append_turns([{"schema": "turnbench.turn/1", "latency_ms": math.inf}])
    folder.close()
    assert not (tmp_path / "run" / "summary.json").exists()


def test_rows_keep_all_but_a_torn_last_line_and_name_any_other_bad_line(tmp_path):
    p = tmp_path / "turns.jsonl"
    p.write_text('{"schema": "turnbench.turn/1", "turn": 0}\n{"schema": "turnbench.turn/1", "turn": 1}\n{"sche')
    assert [r["turn"] for r in read_rows(p, "turnbench.turn/")] == [0, 1]
    p.write_text('{"schema": "turnbench.turn/1"}\nnot json\n{"schema": "turnbench.turn/1"}\n')
    with pytest.raises(InputError, match=r"turns.jsonl:2: not valid JSON"):
        read_rows(p, "turnbench.turn/")
    p.write_text('{"schema": "something/1"}\n')
    with pytest.raises(InputError, match=r"turns.jsonl:1: not a turnbench row"):
        read_rows(p, "turnbench.turn/")
    p.write_bytes(b'{"schema": "turnbench.turn/1"}\n\xff\xfe\n')
    with pytest.raises(InputError, match="not UTF-8"):
        read_rows(p)
    with pytest.raises(InputError, match="missing"):
        read_rows(tmp_path / "nope.jsonl")
    assert read_rows(tmp_path / "nope.jsonl", missing_ok=True) == []


def test_secrets_on_the_command_line_never_reach_run_json():
    from harness.results.folder import redact_argv
    assert redact_argv(["turnbench", "run", "x", "--agent-token", "abc", "--agent-token=def", "--calls", "2"]) == \
        ["turnbench", "run", "x", "--agent-token", "***", "--agent-token=***", "--calls", "2"]
