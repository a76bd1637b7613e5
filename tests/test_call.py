"""A call's receive side: what a push transport hands it from the read callback is recorded at
once; the listener's level work runs just after, in arrival order (clears included)."""

import asyncio

import numpy as np

from harness.caller.call import Call, CallSettings
from harness.records.received import AudioReceived, EventReceived, PlayoutCleared
from tests.fakes.agents import push_transport


async def test_received_audio_is_recorded_in_the_callback_and_heard_just_after():
    transport = push_transport()
    call = Call(transport, None, [], "c", CallSettings())
    receiving = asyncio.create_task(call._receive_loop())
    await asyncio.sleep(0)
    loud = (np.ones(320) * 8000).astype(np.int16)
    transport.deliver(AudioReceived(1_000_000, loud))
    transport.deliver(EventReceived(1_500_000, {"type": "turn.end"}))
    assert list(call.timeline.audio_arrival_ns) == [1_000_000] and len(call.timeline.events) == 1
    assert call.listener.first_loud_after(0) is None  # the level work is not done inside the read
    await asyncio.sleep(0)
    assert call.listener.first_loud_after(0) == 1_000_000
    # a clear right behind more audio: applied after that audio, as it arrived
    transport.deliver(AudioReceived(30_000_000, loud))
    transport.deliver(PlayoutCleared(31_000_000))
    await asyncio.sleep(0)
    assert call.listener.first_loud_after(30_000_000) == 30_000_000
    assert call.listener.heard_end_ns == 31_000_000 and call.timeline.clears[0].arrival_ns == 31_000_000
    await transport.close()
    await receiving
