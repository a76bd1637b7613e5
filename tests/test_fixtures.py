"""The committed fixtures and their ground truth; importing a user's recording."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from harness.audio.fixture_build import add_recording
from harness.audio.fixtures import FIXTURE_KINDS, FixtureError, FixtureLibrary, file_sha256
from harness.audio.onset import speech_segments, threshold_dbfs


def test_library_covers_kinds_and_voices(fixtures):
    assert len(fixtures) >= 40
    assert len({f.voice for f in fixtures.fixtures.values()}) >= 4
    for kind in FIXTURE_KINDS:
        assert fixtures.select(kind), kind


def test_every_file_is_16k_mono_pcm16_and_matches_its_hash(fixtures):
    for f in fixtures.fixtures.values():
        info = sf.info(f.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), f.id
        assert file_sha256(f.path) == f.sha256, f.id


def test_segments_are_measured_from_the_audio(fixtures):
    for f in fixtures.fixtures.values():
        segs = speech_segments(f.samples.astype(np.float32) / 32768, min_gap_ms=300)
        got = [[s.start / 16000, (s.end + 1) / 16000] for s in segs]
        assert np.allclose(got, f.segments, atol=1e-5), f.id
        assert f.end_of_turn_s == pytest.approx(f.segments[-1][1], abs=1e-6)
        last = int(round(f.end_of_turn_s * 16000)) - 1
        thr = 10 ** (threshold_dbfs(-120.0) / 20) * 32768  # files are padded with digital silence
        assert abs(int(f.samples[last])) >= thr  # the end of turn is an audible sample


def test_paused_fixtures_hold_exact_pauses(fixtures):
    paused = fixtures.select("paused")
    assert {round(p) for f in paused for p in f.pauses_ms} == {400, 800, 1200}
    for f in paused:
        assert len(f.segments) == 2 and str(round(f.pauses_ms[0])) in f.id


def test_add_recording_resamples_and_finds_speech(tmp_path, fixtures):
    lib_dir = tmp_path / "fx"
    lib_dir.mkdir()
    shutil.copy(fixtures.directory / "manifest.json", lib_dir / "manifest.json")
    sr = 44100
    t = np.arange(int(sr * 0.8)) / sr
    speech = 0.3 * np.sin(2 * np.pi * 180 * t)
    stereo = np.zeros((int(sr * 2.0), 2))
    stereo[int(sr * 0.5) : int(sr * 0.5) + speech.size] = speech[:, None]
    rng = np.random.default_rng(0)
    stereo += rng.normal(0, 0.002, stereo.shape)  # a real room is not digitally silent
    src = tmp_path / "my take.flac"
    sf.write(src, stereo, sr)
    fx = add_recording(src, "hello there", "utterance", lib_dir, fixture_id="mine")
    assert fx.segments[0][0] == pytest.approx(0.5, abs=0.01)
    assert fx.end_of_turn_s == pytest.approx(1.3, abs=0.01)
    assert sf.info(lib_dir / "mine.wav").samplerate == 16000
    assert "mine" in FixtureLibrary.load(lib_dir)
    with pytest.raises(FixtureError, match="already exists"):
        add_recording(src, "again", "utterance", lib_dir, fixture_id="mine")


def test_add_rejects_unreadable_audio(tmp_path, fixtures):
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    with pytest.raises(FixtureError, match="cannot read audio"):
        add_recording(bad, "x", "utterance", fixtures.directory)


def test_manifest_errors_name_the_file(tmp_path):
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(FixtureError, match="manifest.json:1: invalid JSON"):
        FixtureLibrary.load(tmp_path)


@pytest.mark.parametrize("bad", ["../../x", "a/b", "x" * 300, ".hidden"], ids=["dotdot", "slash", "long", "hidden"])
def test_a_fixture_id_is_a_name_never_a_path(tmp_path, fixtures, bad):
    lib_dir = tmp_path / "fx"
    lib_dir.mkdir()
    shutil.copy(fixtures.directory / "manifest.json", lib_dir / "manifest.json")
    src = tmp_path / "take.wav"
    sf.write(src, np.zeros(16000, np.int16), 16000)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(FixtureError, match="a name of 1–64 letters"):
        add_recording(src, "hello", "utterance", lib_dir, fixture_id=bad)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert bad not in (lib_dir / "manifest.json").read_text()
