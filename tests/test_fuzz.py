"""Property-based fuzzing (hypothesis) of everything that reads input from outside: the scenario
loader, the threshold grammar, the option number and duration parsers, the result-file readers,
both ends' Twilio and ws-pcm message parsers and the WebSocket framing. Each property: only the
documented error (an `InputError`, a `ProtocolViolation`, a WebSocket close code), never a
traceback, never anything written outside its folder. A fixed example budget, derandomised, so
CI runs the same examples every time."""

from __future__ import annotations

import asyncio
import json
import math
import struct

import click
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.agent.links.ws_pcm import _item
from harness.agent.oracle_config import OracleConfig, parse_overrides
from harness.cli import main
from harness.cli.common import Finite
from harness.cli.load import parse_duration
from harness.errors import InputError, ProtocolViolation
from harness.report.data import load_run
from harness.results.folder import read_rows, redact_argv
from harness.scenario import load_scenario
from harness.thresholds import parse_threshold, summary_fields
from harness.transports.twilio_protocol import check_media_format, media_payload, parse
from harness.transports.ws_frames import OP_BINARY, OP_TEXT, WsFrames, frame_header, mask

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
                    max_leaves=12)
STEP_KEYS = st.sampled_from(["say", "wait", "barge_in", "backchannel", "pick", "fixture", "after_ms", "ms",
                             "timeout_s", "reply", "silence_ms", "voice", "dance"])
SCENARIO_LIKE = st.fixed_dictionaries({
    "version": st.one_of(st.just(1), JSON), "name": st.one_of(st.text(max_size=8), JSON),
    "steps": st.lists(st.dictionaries(STEP_KEYS, JSON | st.text(max_size=12), max_size=2), max_size=4)},
    optional={"defaults": st.dictionaries(st.sampled_from(["calls", "concurrency", "seed", "response_timeout_s",
                                                           "transport", "thresholds", "target", "x"]), JSON,
                                          max_size=3)})


@FUZZ
@given(text=st.text(max_size=300))
def test_scenario_text_loads_or_names_its_problem(tmp_path_factory, text, fixtures):
    p = tmp_path_factory.mktemp("sc") / "s.yaml"
    p.write_text(text)
    try:
        load_scenario(p, fixtures)
    except InputError as e:
        assert str(e).startswith(str(p))


@FUZZ
@given(doc=SCENARIO_LIKE)
def test_scenario_structures_load_or_name_the_field(tmp_path_factory, doc, fixtures):
    p = tmp_path_factory.mktemp("sc") / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    try:
        load_scenario(p, fixtures)
    except InputError as e:
        assert str(e).startswith(str(p))


@FUZZ
@given(expr=st.text(max_size=40) | st.from_regex(r"[a-z_.]{1,20}\s*(<|<=|>|==)\s*-?[0-9.eE+]{1,12}", fullmatch=True))
def test_threshold_expressions_parse_or_point_at_a_column(expr):
    try:
        t = parse_threshold(expr)
    except InputError as e:
        assert "column" in str(e)
    else:
        assert math.isfinite(t.value) and t.path[0] in summary_fields()


@FUZZ
@given(text=st.text(max_size=20) | st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "0x10", "1_0"]))
def test_option_numbers_are_finite_or_refused(text):
    try:
        v = Finite(min=0, max=600).convert(text, None, None)
    except click.BadParameter:
        return
    assert math.isfinite(v) and 0 <= v <= 600


@FUZZ
@given(text=st.text(max_size=12) | st.from_regex(r"[0-9.]{1,6}[hms]?([0-9]{1,3}[hms])?", fullmatch=True))
def test_durations_are_positive_and_bounded_or_refused(text):
    try:
        s = parse_duration(text)
    except click.BadParameter:
        return
    assert 0 < s <= 7 * 24 * 3600


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(list(OracleConfig.model_fields) + ["nope"]),
                                st.text(max_size=12) | st.sampled_from(["nan", "inf", "1e300", "-5"])), max_size=3))
def test_oracle_settings_validate_or_raise_a_value_error(pairs):
    try:
        cfg = OracleConfig(**parse_overrides([f"{k}={v}" for k, v in pairs]))
    except ValueError:
        return
    for v in cfg.model_dump().values():
        assert not isinstance(v, float) or math.isfinite(v)


@FUZZ
@given(data=st.binary(max_size=400) | st.lists(JSON, max_size=4).map(
    lambda rows: "\n".join(json.dumps(r) for r in rows).encode()))
def test_result_rows_read_or_name_the_file_and_line(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("rows") / "turns.jsonl"
    p.write_bytes(data)
    try:
        rows = read_rows(p, "turnbench.turn/")
    except InputError as e:
        assert str(e).startswith(str(p))
    else:
        assert all(isinstance(r, dict) for r in rows)


@FUZZ
@given(summary=JSON | st.fixed_dictionaries({"schema": st.just("turnbench.summary/1"), "calls": JSON,
                                             "turns": JSON, "latency_ms": JSON, "harness": JSON}))
def test_a_run_folder_reads_or_is_an_input_error(tmp_path_factory, summary):
    folder = tmp_path_factory.mktemp("run")
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "turns.jsonl").write_text("")
    try:
        run = load_run(folder)
    except InputError as e:
        assert str(folder) in str(e)
    else:
        assert run.summary["schema"].startswith("turnbench.summary/")


@FUZZ
@given(text=st.text(max_size=200) | JSON.map(json.dumps))
def test_twilio_messages_parse_or_are_protocol_violations(text):
    try:
        msg = parse(text)
    except ProtocolViolation:
        return
    for check in (lambda: media_payload(msg), lambda: check_media_format(msg.get("start"))):
        try:
            check()
        except ProtocolViolation:
            pass


@FUZZ
@given(op=st.sampled_from([OP_BINARY, OP_TEXT]), payload=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_agent_side_ws_pcm_messages_never_raise(op, payload):
    _item(0, op, payload)  # audio, an event, or nothing: never an exception


class RecordingTransport(asyncio.Transport):
    """A test double transport: what the framing wrote, and whether it hung up."""

    def __init__(self):
        super().__init__()
        self.written, self.closed = bytearray(), False

    def write(self, data) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def frames_of(client: bool, data: bytes, cuts: list[int]) -> tuple[WsFrames, list, RecordingTransport]:
    async def go():
        frames = WsFrames(client=client, max_message=4096)
        transport = RecordingTransport()
        frames.connection_made(transport)
        got = []
        frames.on_message = lambda t, op, payload: got.append((op, payload))
        at = 0
        for cut in [*sorted(cuts), len(data)]:
            if frames.ended:
                break
            chunk = data[at:max(at, min(cut, len(data)))]
            if chunk:
                frames.data_received(chunk)
            at += len(chunk)
        return frames, got, transport
    return asyncio.run(go())


WS_BYTES = st.binary(max_size=300) | st.lists(
    st.tuples(st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xF]), st.binary(max_size=130), st.booleans(),
              st.booleans()), max_size=4).map(
    lambda fs: b"".join(bytes([(0x80 if fin else 0) | op]) + frame_header(op, len(p), b"abcd" if m else b"")[1:]
                        + (mask(p, b"abcd") if m else p) for op, p, fin, m in fs))


@FUZZ
@given(data=WS_BYTES, cuts=st.lists(st.integers(0, 300), max_size=5), client=st.booleans())
def test_websocket_framing_delivers_messages_or_closes_with_a_code(data, cuts, client):
    frames, got, transport = frames_of(client, data, cuts)
    assert all(op in (OP_BINARY, OP_TEXT) and len(p) <= 4096 for op, p in got)
    fatal = [e for e in frames.errors if e.startswith("websocket protocol error")]
    if fatal:  # a protocol error: a close frame with its code, then the connection is closed
        assert transport.closed and frames.ended
        assert close_code(bytes(transport.written)) in (1002, 1007, 1008, 1009, 1011), fatal
    elif frames.ended:  # the peer closed: answered with a normal close
        assert close_code(bytes(transport.written)) in (None, 1000)
    # (a masked frame from a server is noted in `errors` and unmasked: lenient, the call goes on)


def close_code(written: bytes) -> int | None:
    """The status code of the last close frame in what one end wrote, read frame by frame (a
    masking key may hold any byte, so searching for the opcode would be wrong)."""
    i, code = 0, None
    while i + 2 <= len(written):
        op, masked, n = written[i] & 0x0F, written[i + 1] & 0x80, written[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = struct.unpack(">H", written[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack(">Q", written[i:i + 8])[0], i + 8
        key = written[i:i + 4] if masked else b""
        i += len(key)
        body = written[i:i + n]
        i += n
        if key:
            body = bytes(b ^ key[j % 4] for j, b in enumerate(body))
        if op == 0x8:
            code = struct.unpack(">H", body[:2])[0] if len(body) >= 2 else None
    return code


@FUZZ
@given(argv=st.lists(st.text(max_size=8), max_size=6), secret=st.text(min_size=6, max_size=12).filter(str.isalnum))
def test_a_token_given_on_the_command_line_never_reaches_run_json(argv, secret):
    assume(not any(secret in a for a in argv))
    for flag in ("--agent-token", "--token"):
        for form in ([flag, secret], [f"{flag}={secret}"]):
            assert secret not in redact_argv([*argv, *form, *argv])


@pytest.mark.parametrize("cmd", [["validate"], ["scenarios", "show"]])
@FUZZ
@given(text=st.text(max_size=200))
def test_commands_reading_a_scenario_exit_0_or_2_never_with_a_traceback(tmp_path_factory, cmd, text):
    p = tmp_path_factory.mktemp("cli") / "s.yaml"
    p.write_text(text)
    result = CliRunner().invoke(main, [*cmd, str(p)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@FUZZ
@given(messages=st.lists(st.tuples(st.sampled_from([OP_BINARY, OP_TEXT]),
                                   st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode())), max_size=6))
def test_caller_side_ws_pcm_messages_are_audio_events_or_recorded_protocol_errors(messages):
    from harness.transports.ws_pcm import WsPcmTransport
    t = WsPcmTransport("ws://127.0.0.1:9/ws")
    audio_bytes = 0
    for op, data in messages:
        item = t._item(0, op, data)  # never raises
        if item is not None and hasattr(item, "samples"):
            audio_bytes += 2 * len(item.samples)
    sent = sum(len(d) for op, d in messages if op == OP_BINARY)
    assert audio_bytes in (sent, sent - 1)  # an odd byte waits for the next message, never lost or doubled


@FUZZ
@given(msg=st.fixed_dictionaries({"event": st.sampled_from(["media", "mark", "clear", "dance", None]),
                                  "streamSid": st.sampled_from(["MZsame", "MZother", None])},
                                 optional={"media": JSON | st.fixed_dictionaries({"payload": st.text(max_size=40)}),
                                           "mark": JSON}))
def test_caller_side_twilio_messages_are_handled_or_protocol_violations(msg):
    async def go():
        from harness.transports.twilio import TwilioTransport
        t = TwilioTransport("ws://127.0.0.1:9/media-stream")
        t.stream_sid = "MZsame"
        try:
            t._handle(msg, 0)
        except ProtocolViolation:
            pass
    asyncio.run(go())
