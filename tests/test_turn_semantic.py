"""Semantic turn detection: word rules, the language model's end-of-sentence score, prosody."""

import time

import numpy as np
import pytest

from harness.agent.providers import create
from harness.agent.providers.prosody import phrase_end
from harness.agent.providers.turn_semantic import SemanticTurn, lexical_completeness, lm_completeness
from harness.audio.frames import SAMPLE_RATE


def glide(f_from: float, f_to: float, seconds: float = 0.5) -> np.ndarray:
    """A voiced-like harmonic tone whose pitch glides from `f_from` to `f_to` Hz."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = np.geomspace(f_from, f_to, len(t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    return 0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))


def test_words_alone_tell_unfinished_from_finished():
    assert lexical_completeness("") is None
    assert lexical_completeness("my order number is") < 0.2
    assert lexical_completeness("i'd like to book a table and") < 0.2
    assert lexical_completeness("i'd like to book a table um") < 0.2
    assert lexical_completeness("i'd like to book a table for two") > 0.7


def test_the_language_model_scale_is_logarithmic_and_bounded():
    assert lm_completeness(0.0) == 0.0 and lm_completeness(1.0) == 1.0
    assert lm_completeness(0.0001) < 0.2 < lm_completeness(0.02) < lm_completeness(0.5)


def test_falling_pitch_is_told_from_rising_pitch():
    falling, rising = phrase_end(glide(220, 140)), phrase_end(glide(140, 220))
    assert falling.pitch_slope_st_per_s < -8 < 3 < rising.pitch_slope_st_per_s
    assert phrase_end(np.zeros(8000)).voiced_windows == 0


def _decided(turn: SemanticTurn, text: str) -> float:
    """Silence the detector asks for after `text` once its score is in."""
    turn.reset()
    turn.observe(np.zeros(320, dtype=np.int16), voiced=False, transcript=text)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(f.done() for f in turn._scores.values()):
        time.sleep(0.01)
    return turn.silence_needed_ms(text)


def test_rules_only_detector_holds_the_floor_on_an_unfinished_phrase():
    turn = SemanticTurn(lm=False)
    assert turn.name == "semantic-rules"
    assert _decided(turn, "my order number is") == pytest.approx(1500.0)
    assert _decided(turn, "i'd like to book a table for two") < 600
    assert _decided(turn, "") == 600.0


def test_the_language_model_tells_a_fragment_from_a_sentence():
    pytest.importorskip("llama_cpp")
    turn = create("turn", "semantic")
    assert turn.name == "semantic"
    turn.warm()
    assert _decided(turn, "could you tell me your opening hours on sunday") < 700
    # the word rules call this finished (it ends on a noun); the model hears the booking is not done yet
    assert lexical_completeness("i'd like to book a table") > 0.7
    assert _decided(turn, "i'd like to book a table") > 1000
    assert _decided(turn, "i'd like to book a table for two people tomorrow evening") < 700
