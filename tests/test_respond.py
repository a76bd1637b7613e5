"""Replies: clause splitting, the gate that holds speculative work, streaming vs batch."""

import asyncio
import concurrent.futures
import time

import numpy as np
import pytest

from harness.agent.providers.sim import SimLlm, SimTts
from harness.agent.respond import FIRST_CHUNK_WORDS, Gate, Responder, Speculation, split_clauses


def test_clauses_split_at_punctuation_and_the_first_one_early():
    done, rest = split_clauses("Sure, I can help. With what", first=False)
    assert done == ["Sure,", "I can help."] and rest == "With what"
    done, rest = split_clauses("one two three four five six", first=True, first_words=5)
    assert done == ["one two three four five"] and rest == "six"
    assert split_clauses("one two three four five six", first=False) == ([], "one two three four five six")
    assert split_clauses("one two three four five ", first=True, first_words=5) == ([], "one two three four five ")  # no 6th word yet
    words = "a b c d e f g h".split()
    assert split_clauses(" ".join(words), first=True)[0] == [" ".join(words[:FIRST_CHUNK_WORDS])]  # the default
    assert split_clauses("one two three four", first=True, first_words=3) == (["one two three"], "four")
    assert split_clauses("one two three", first=True, first_words=3) == ([], "one two three")


class Recorder:
    """Collects what a gate lets through, with the time it got it."""

    def __init__(self):
        self.audio: list[tuple[int, np.ndarray]] = []
        self.events: list[tuple[int, dict]] = []

    def play(self, chunk):
        self.audio.append((time.perf_counter_ns(), chunk))

    async def emit(self, ev):
        self.events.append((time.perf_counter_ns(), ev))

    def event(self, kind):
        return next(ev for _, ev in self.events if ev["type"] == kind)


async def test_a_closed_gate_holds_everything_and_counts_work_done_ahead_as_zero():
    rec = Recorder()
    gate = Gate(rec.play, rec.emit)
    t = time.perf_counter_ns()
    await gate.event({"type": "llm.first_token"}, t)
    gate.audio(np.ones(320, dtype=np.int16))
    assert rec.audio == [] and rec.events == []
    await gate.open(t + 50_000_000, speculative=True)
    assert len(rec.audio) == 1
    assert rec.event("llm.first_token") == {"type": "llm.first_token", "speculative": True, "duration_ms": 0.0}
    await gate.event({"type": "tts.first_audio"}, t + 80_000_000)  # after the gate opened: counted from it
    assert rec.event("tts.first_audio")["duration_ms"] == pytest.approx(30.0)


async def _respond(batch: bool):
    rec = Recorder()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    t0 = time.perf_counter_ns()
    responder = Responder(SimTts(ttfb_ms="10", ms_per_char=20.0), pool, Gate(rec.play, rec.emit, opened_ns=t0),
                          batch=batch)
    text = await responder.respond(SimLlm(ttft_ms="20", tokens_per_s=25.0).stream([]))
    pool.shutdown()
    return text, rec, t0


async def test_streaming_plays_the_first_clause_while_the_llm_still_writes():
    text, rec, t0 = await _respond(batch=False)
    words = len(text.split())
    first_audio_ms = (rec.audio[0][0] - t0) / 1e6
    assert first_audio_ms < 20 + (words - 1) * 40 - 20  # well before the last token (25 tokens/s)
    assert rec.event("llm.first_token")["duration_ms"] < 100
    assert "whole_answer" not in rec.event("llm.first_token")


async def test_batch_waits_for_the_whole_answer_and_all_of_its_audio():
    text, rec, t0 = await _respond(batch=True)
    words = len(text.split())
    llm = rec.event("llm.first_token")
    assert llm["whole_answer"] is True and llm["duration_ms"] >= 20 + (words - 1) * 40 * 0.9
    first_audio_at = rec.audio[0][0]
    assert all(at - first_audio_at < 5_000_000 for at, _ in rec.audio)  # all of it at once, at the end
    total_samples = sum(len(c) for _, c in rec.audio)
    assert total_samples >= len(text) * 20 * 16 * 0.9  # the whole answer was synthesised


async def test_speculation_is_held_until_confirmed_and_compares_words_only():
    rec = Recorder()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    spec = Speculation("I'd like a table", Responder(SimTts(ttfb_ms="5"), pool, Gate(rec.play, rec.emit)),
                       SimLlm(ttft_ms="5", tokens_per_s=500.0).stream([]))
    await asyncio.sleep(0.3)
    assert rec.audio == []  # generated, but nothing left the gate but what says so:
    assert [ev["type"] for _, ev in rec.events] == ["tts.speculation_started", "tts.speculation_ready"]
    assert rec.events[0][1]["text"].strip() and rec.events[1][1]["synth_ms"] >= 0
    assert spec.responder.gate.held_audio_ms > 0  # what a discard would throw away
    assert spec.matches("i'd like a table.") and not spec.matches("i'd like a table for two")
    await spec.confirm(time.perf_counter_ns())
    assert rec.audio and rec.event("llm.first_token")["speculative"] is True
    assert rec.event("llm.first_token")["head_start_ms"] >= 290
    await spec.task
    pool.shutdown()


async def test_what_a_reply_consumed_is_reported_however_it_ends():
    """Usage (priced per character or token by a metered provider) counts a reply that is spoken,
    and one cancelled mid-way (a barge-in, a discarded speculation) up to where it stopped."""
    rec, used = Recorder(), []
    pool = concurrent.futures.ThreadPoolExecutor(1)
    spoken = Responder(SimTts(ttfb_ms="5", ms_per_char=1.0), pool, Gate(rec.play, rec.emit, time.perf_counter_ns()),
                       on_usage=used.append, prompt_chars=123)
    text = await spoken.respond(SimLlm(ttft_ms="5", tokens_per_s=400.0).stream([]))
    (whole,) = used
    assert whole["llm_prompt_chars"] == 123 and whole["llm_reply_chars"] == len(text) and not whole["speculative"]
    assert len(text) - 4 <= whole["tts_chars"] <= len(text)  # every clause, less the spaces between them
    held = Responder(SimTts(ttfb_ms="5"), pool, Gate(rec.play, rec.emit), on_usage=used.append, prompt_chars=50)
    task = asyncio.create_task(held.respond(SimLlm(ttft_ms="5", tokens_per_s=20.0).stream([])))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = used[1]
    assert partial["speculative"] and partial["llm_prompt_chars"] == 50
    assert 0 < partial["llm_reply_chars"] < len(text)
    pool.shutdown()


def test_flush_words_sends_complete_words_and_keeps_the_one_arriving():
    from harness.agent.respond import flush_words
    assert flush_words("we have three slots") == (["we have three"], "slots")
    assert flush_words("tomorrow at ") == (["tomorrow at"], "")
    assert flush_words("tomorrow") == ([], "tomorrow")  # one word: wait for more


async def test_a_slow_llm_does_not_leave_the_caller_in_silence_between_clauses():
    """Words go to TTS without their punctuation when what is playing is about to run out."""
    rec = Recorder()
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def slow():  # the first clause, then words 150 ms apart and no punctuation for 2 s
        yield "Sure, "
        for w in "we have three open slots on Tuesday morning at ten and eleven thirty".split():
            await asyncio.sleep(0.15)
            yield w + " "

    gate = Gate(rec.play, rec.emit, time.perf_counter_ns())
    await Responder(SimTts(ttfb_ms="5", ms_per_char=40.0), pool, gate).respond(slow())
    starts = [t for t, _ in rec.audio]
    durations = [len(c) / 16 * 1e6 for _, c in rec.audio]  # ns
    queued_until = starts[0] + durations[0]
    gaps = []
    for t, d in zip(starts[1:], durations[1:]):
        gaps.append(max(0.0, t - queued_until) / 1e6)
        queued_until = max(queued_until, t) + d
    assert len(rec.audio) >= 3 and max(gaps) < 250, gaps  # waiting for the full stop: ~1.7 s of silence
    pool.shutdown()


def test_a_reply_starts_10_ms_before_its_first_word_not_after_the_voices_padding():
    from harness.agent.respond import trim_lead
    pcm = np.concatenate([np.zeros(1600, np.int16), np.full(800, 5000, np.int16), np.zeros(800, np.int16)])
    out = trim_lead(pcm)
    assert len(out) == len(pcm) - 1600 + 160 and out[160] == 5000  # 100 ms of padding → 10 ms
    assert trim_lead(np.zeros(320, np.int16)).size == 0
    assert trim_lead(pcm[1600:]).size == len(pcm) - 1600  # already at the word: unchanged
