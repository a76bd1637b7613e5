"""PocketSphinx streaming recognition with its bundled en-us model (partials every frame)."""

from __future__ import annotations

import numpy as np
from pocketsphinx import Config, Decoder

from harness.agent.providers.base import STT


class PocketsphinxStt(STT):
    """Partial hypotheses while audio arrives; the final one at `finish()`.

    By default the second-pass searches are off: finals then take 23–55 ms here instead of
    260–840 ms, at some cost in accuracy (`accurate=True` turns them back on).
    """

    name = "pocketsphinx"

    def __init__(self, accurate: bool = False):
        # the bundled en-us acoustic model, dictionary and language model
        config = Config(loglevel="FATAL", fwdflat=accurate, bestpath=accurate)
        self._decoder = Decoder(config)
        self._active = False

    def warm(self) -> None:
        self.start()
        self.feed(np.zeros(16000, dtype=np.int16))
        self.finish()

    def start(self) -> None:
        if self._active:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._active = True

    def feed(self, pcm16: np.ndarray) -> str | None:
        if not self._active:
            self.start()
        self._decoder.process_raw(np.asarray(pcm16, dtype="<i2").tobytes(), False, False)
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None and hyp.hypstr else None

    def finish(self) -> str:
        if not self._active:
            return ""
        self._decoder.end_utt()
        self._active = False
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
