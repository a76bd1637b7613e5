"""Audio primitives: frames, resampling, mu-law, onset detection, fixtures."""
