"""The caller's recorded audio and its ground truth (`audio_fixtures/manifest.json`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import soundfile as sf

from harness.audio.frames import SAMPLE_RATE
from harness.errors import InputError
from harness.resources import default_fixtures_dir

FIXTURE_KINDS: tuple[str, ...] = ("utterance", "paused", "interruption", "backchannel", "filler")
MANIFEST_SCHEMA = "turnbench.fixtures/1"


class FixtureError(InputError):
    """A fixture or its manifest entry is missing or inconsistent."""


@dataclass
class Fixture:
    """One recorded caller utterance and where its speech is, in seconds from the file start."""

    id: str
    text: str
    voice: str
    kind: str
    file: str
    segments: list[list[float]]
    end_of_turn_s: float
    duration_s: float
    sha256: str = ""
    directory: Path = field(default_factory=default_fixtures_dir, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.directory / self.file

    @property
    def speech_start_s(self) -> float:
        return self.segments[0][0]

    @property
    def pauses_ms(self) -> list[float]:
        """Silent gaps between speech segments (the mid-sentence pauses)."""
        return [round((b[0] - a[1]) * 1000, 3) for a, b in zip(self.segments, self.segments[1:])]

    @cached_property
    def samples(self) -> np.ndarray:
        """The audio as int16 at 16 kHz (loaded once)."""
        data, rate = sf.read(self.path, dtype="int16", always_2d=False)
        if rate != SAMPLE_RATE or data.ndim != 1:
            raise FixtureError(f"{self.path}: expected 16 kHz mono, got {rate} Hz with shape {data.shape}")
        return data

    def to_manifest(self) -> dict:
        d = asdict(self)
        d.pop("directory")
        return d


class FixtureLibrary:
    """All fixtures of one directory, by id."""

    def __init__(self, directory: Path, fixtures: list[Fixture], schema: str = MANIFEST_SCHEMA):
        self.directory = directory
        self.schema = schema
        self.fixtures = {f.id: f for f in fixtures}

    @classmethod
    def load(cls, directory: Path | str | None = None) -> FixtureLibrary:
        """The fixtures of `directory` (default: the ones that ship with turnbench)."""
        directory = Path(directory) if directory is not None else default_fixtures_dir()
        manifest = directory / "manifest.json"
        if not manifest.exists():
            raise FixtureError(f"{manifest}: no fixture manifest (run `turnbench fixtures build`)")
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError as e:
            raise FixtureError(f"{manifest}:{e.lineno}: invalid JSON: {e.msg}") from e
        fixtures = []
        for i, entry in enumerate(data.get("fixtures", [])):
            try:
                fixtures.append(Fixture(**entry, directory=directory))
            except TypeError as e:
                raise FixtureError(f"{manifest}: fixtures[{i}]: {e}") from e
        return cls(directory, fixtures, data.get("schema", MANIFEST_SCHEMA))

    def __getitem__(self, fixture_id: str) -> Fixture:
        try:
            return self.fixtures[fixture_id]
        except KeyError:
            raise FixtureError(f"unknown fixture {fixture_id!r}") from None

    def __contains__(self, fixture_id: str) -> bool:
        return fixture_id in self.fixtures

    def __len__(self) -> int:
        return len(self.fixtures)

    def select(self, kind: str | None = None, voice: str | None = None) -> list[Fixture]:
        """Fixtures of one kind and/or voice, in id order."""
        return [f for _, f in sorted(self.fixtures.items())
                if (kind is None or f.kind == kind) and (voice is None or f.voice == voice)]

    def digest(self) -> str:
        """One hash over the manifest's ground truth and every file's content hash."""
        h = hashlib.sha256()
        for fid in sorted(self.fixtures):
            h.update(json.dumps(self.fixtures[fid].to_manifest(), sort_keys=True).encode())
        return h.hexdigest()

    def save(self) -> Path:
        manifest = self.directory / "manifest.json"
        payload = {"schema": self.schema,
                   "sample_rate": SAMPLE_RATE,
                   "fixtures": [self.fixtures[k].to_manifest() for k in sorted(self.fixtures)]}
        manifest.write_text(json.dumps(payload, indent=1) + "\n")
        return manifest


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
