"""turnbench: measure how fast and how politely a voice agent takes turns."""

__version__ = "0.1.0"
