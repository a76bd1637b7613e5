"""The oracle's triggers run after the read callback that found them, not inside it: reply
synthesis inside it would delay the arrival stamps of every other call read in the same pass."""

import asyncio

from harness.agent.oracle import OracleSession
from harness.agent.oracle_config import OracleConfig
from harness.audio.frames import FRAME_SAMPLES


async def _nothing(*_):
    return None


async def test_a_due_end_of_speech_schedules_the_reply_just_after_the_read():
    session = OracleSession(OracleConfig(delay_ms="300", events=False), _nothing, _nothing, "t")
    session.on_hint({"turn": 0, "kind": "utterance", "segments": [[0, 2 * FRAME_SAMPLES - 1]]})
    session.on_audio(FRAME_SAMPLES, 1_000)
    session.on_audio(FRAME_SAMPLES, 2_000)  # holds the last speech sample: end of speech is due
    assert session._pending is None and session.truth[0].eos_arrival_ns is None  # not inside the read
    await asyncio.sleep(0)
    truth = session.truth[0]
    assert truth.start_arrival_ns == 1_000 and truth.eos_arrival_ns == 2_000  # stamped with the arrival
    assert session._pending is not None and session._pending.first_send_ns == 2_000 + 300_000_000
    session.on_audio(FRAME_SAMPLES, 3_000)  # nothing left to fire: no second reply
    await asyncio.sleep(0)
    assert len(session._replies) == 1
    await session.close()
