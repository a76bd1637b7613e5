"""The audio end-of-turn detector: Whisper features, the Smart Turn model on real fixtures, and the
`smart` policy inside the reference pipeline."""

import numpy as np
import pytest

from harness.agent.providers.whisper_mel import N_MELS, SAMPLE_RATE, log_mel, mel_filters

pytest.importorskip("onnxruntime")


def test_log_mel_puts_a_tone_in_its_band_and_pads_to_the_window():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    feats = log_mel(tone, 8)
    assert feats.shape == (N_MELS, 800) and feats.dtype == np.float32
    centre = int(np.argmax(mel_filters()[int(1000 / (SAMPLE_RATE / 2) * 200)]))  # the filter peaking at 1 kHz
    assert int(np.argmax(feats[:, 10:90].mean(axis=1))) in (centre - 1, centre, centre + 1)
    assert feats[:, 150:].std() < 1e-3  # after the tone: the padding, one flat floor
    assert feats.min() >= feats.max() - 2.0 - 1e-5  # clamped to 8 decades below the peak, scaled by 1/4


def test_mel_filters_cover_the_band_with_unit_area():
    f = mel_filters()
    assert f.shape == (201, N_MELS) and (f >= 0).all()
    hz_per_bin = SAMPLE_RATE / 2 / 200
    areas = f.sum(axis=0) * hz_per_bin
    assert np.allclose(areas[5:], areas[5:].mean(), rtol=0.15)  # Slaney normalisation: equal area


@pytest.fixture(scope="module")
def model():
    from harness.agent.providers.base import ProviderUnavailable
    from harness.agent.providers.turn_smart import SmartTurnModel
    try:
        return SmartTurnModel()
    except ProviderUnavailable as e:
        pytest.skip(str(e))


def _until(fx, seconds: float) -> np.ndarray:
    return fx.samples[: int(seconds * SAMPLE_RATE)]


def test_the_model_hears_a_finished_question_and_a_held_phrase(fixtures, model):
    done = fixtures["utt_01_joe"]  # "What time does the pharmacy close today?" (Piper: natural prosody)
    held = fixtures["paused_03_800ms_rms"]  # "I was wondering if you could … help me reset my password."
    p_done = model.p_complete(_until(done, done.end_of_turn_s + 0.1))
    p_held = model.p_complete(_until(held, held.segments[0][1] + 0.1))
    assert p_done > 0.8 and p_held < 0.2  # measured 0.98 and 0.01


@pytest.mark.slow
async def test_smart_ends_a_finished_turn_fast_and_holds_the_floor_through_a_pause(fixtures):
    from tests.test_pipeline import kinds, talk
    fx = fixtures["utt_01_joe"]
    log = await talk(fx.samples, {"llm": "sim", "tts": "sim", "turn": "smart"})
    (end_at, ev), = kinds(log, "turn.end")
    assert ev["policy"] in ("smart", "smart-rules") and "audio_completeness" in ev
    t0 = log[0][0] - 20_000_000  # the first frame went in ~20 ms before anything came out
    silence_ms = (end_at - t0) / 1e6 - fx.end_of_turn_s * 1000
    held = fixtures["paused_03_1200ms_awb"]
    log2 = await talk(held.samples, {"llm": "sim", "tts": "sim", "turn": "smart"})
    assert len(kinds(log2, "turn.end")) == 1  # the 1.2 s pause after "…if you could" did not end it
    assert silence_ms < 500  # vad needs 600 ms of silence and the VAD's own hangover
