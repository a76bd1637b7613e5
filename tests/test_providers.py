"""Agent providers: the registry, and the real offline models on real fixture audio."""

import numpy as np
import pytest

from harness.agent.providers import ProviderUnavailable, create, model_file
from harness.agent.providers.registry import registered
from harness.metrics.turns import word_error_rate


def test_unknown_provider_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown stt provider 'whisper-xl'.*pocketsphinx"):
        create("stt", "whisper-xl")


def test_missing_dependency_says_which_extra(monkeypatch):
    monkeypatch.setitem(registered()["stt"], "ghost", "harness.agent.providers.no_such_module:Ghost")
    with pytest.raises(ProviderUnavailable, match=r"\.\[agent\]"):
        create("stt", "ghost")
    with pytest.raises(ProviderUnavailable, match="not installed"):
        model_file("no_such_model_package_xyz", "model.bin")


@pytest.mark.parametrize("name", ["silero", "webrtc"])
def test_each_vad_finds_the_speech_and_the_pause(fixtures, name):
    vad = create("vad", name)
    fx = fixtures["paused_01_1200ms_rms"]
    x = fx.samples.astype(np.float32) / 32768
    w = vad.window_samples
    probs = np.array([vad.speech_prob(x[i : i + w]) for i in range(0, len(x) - w, w)])
    speech = probs > 0.5
    t = (np.arange(len(probs)) * w + w / 2) / 16000
    (a0, a1), (b0, b1) = fx.segments
    assert speech[(t > a0 + 0.1) & (t < a1 - 0.1)].mean() > 0.9
    assert not speech[(t > a1 + 0.3) & (t < b0 - 0.3)].any()  # the 1200 ms pause
    assert not speech[t < a0 - 0.1].any() and not speech[t > b1 + 0.2].any()
    vad.reset()
    with pytest.raises(ValueError, match=str(w)):
        vad.speech_prob(x[:100])


def test_pocketsphinx_streams_partials_and_a_final(fixtures):
    stt = create("stt", "pocketsphinx")
    wers = []
    for fid in ("utt_01_joe", "utt_02_slt", "utt_06_joe"):
        fx = fixtures[fid]
        stt.start()
        partials = [stt.feed(fx.samples[i : i + 320]) for i in range(0, len(fx.samples), 320)]
        final = stt.finish()
        assert any(p for p in partials), fid  # hypotheses arrive while the caller is still talking
        wers.append(word_error_rate(fx.text, final))
    assert np.mean(wers) < 0.3, wers


def test_piper_is_audible_and_reproducible():
    tts = create("tts", "piper")
    a = np.concatenate(list(tts.synthesize("Sure, the pharmacy closes at nine.")))
    b = np.concatenate(list(tts.synthesize("Sure, the pharmacy closes at nine.")))
    assert a.dtype == np.int16 and len(a) > 16000 * 0.8
    assert np.sqrt(np.mean((a / 32768.0) ** 2)) > 0.02
    assert np.array_equal(a, b)
    # clause after clause, as the agent speaks them: no gap a listener would take for a stop
    clauses = np.concatenate([c for t in ("How much does the premium", "plan cost per month?", "It is nine dollars.")
                              for c in tts.synthesize(t)]).astype(np.float64)
    frames = clauses[: len(clauses) // 320 * 320].reshape(-1, 320)
    quiet = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) / 32768 + 1e-9) < -45
    longest, run = 0, 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert longest * 20 < 250, f"{longest * 20} ms of silence between clauses"


async def test_simulated_providers_are_labelled_and_behave():
    stt, llm, tts = create("stt", "sim", transcript="book a table"), create("llm", "sim"), create("tts", "sim")
    assert all(p.simulated and p.name.startswith("sim-") for p in (stt, llm, tts))
    stt.start()
    assert stt.feed(np.zeros(320, np.int16)) is None  # no partial before 300 ms of audio
    for _ in range(30):
        partial = stt.feed(np.zeros(320, np.int16))
    assert partial and "book a table".startswith(partial)
    assert stt.finish() == "book a table"
    reply = "".join([t async for t in llm.stream([{"role": "user", "content": "hi"}])])
    assert reply.endswith(".") and len(reply.split()) >= 4
    audio = np.concatenate(list(tts.synthesize("Okay.")))
    assert audio.dtype == np.int16 and np.abs(audio).max() > 1000


async def test_llama_streams_a_short_spoken_answer_and_stops_when_cancelled():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by `bash scripts/setup.sh agent`")
    llm = create("llm", "llama")
    parts = [t async for t in llm.stream([{"role": "user", "content": "What time does the pharmacy close?"}])]
    text = "".join(parts)
    assert len(parts) > 3 and text.strip()[-1] in ".!?" and len(text.split()) <= 48
    agen = llm.stream([{"role": "user", "content": "Tell me a long story about a cat."}])
    got = [await agen.__anext__() for _ in range(3)]
    await agen.aclose()  # a barge-in cancels generation; the model is free again right after
    assert len(got) == 3
    again = "".join([t async for t in llm.stream([{"role": "user", "content": "Say hello."}])])
    assert again.strip()


def test_whisper_transcribes_the_whole_utterance_at_the_end(fixtures):
    pytest.importorskip("faster_whisper", reason="faster-whisper comes with pip install -e '.[agent]'")
    stt = create("stt", "whisper")
    fx = fixtures["utt_06_joe"]
    stt.start()
    partials = [stt.feed(fx.samples[i : i + 320]) for i in range(0, len(fx.samples), 320)]
    assert not any(partials)  # whisper is not a streaming recogniser
    assert word_error_rate(fx.text, stt.finish()) < 0.2
    assert stt.finish() == ""  # the buffer went with the final


def test_espeak_is_a_second_local_tts_fast_clause_by_clause_and_reproducible():
    import shutil
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (bash scripts/setup.sh run installs it)")
    tts = create("tts", "espeak")
    text = "Sure, the pharmacy closes at nine. Anything else?"
    chunks = list(tts.synthesize(text))
    assert len(chunks) == 3  # one per clause: the first plays while the rest is made
    a = np.concatenate(chunks)
    assert a.dtype == np.int16 and len(a) > 16000 * 1.0
    assert np.sqrt(np.mean((a / 32768.0) ** 2)) > 0.02
    assert np.array_equal(a, np.concatenate(list(create("tts", "espeak").synthesize(text))))
    assert not np.array_equal(chunks[0], chunks[1])
