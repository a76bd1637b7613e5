"""Plain records shared by every layer (no behaviour, no imports above `harness.audio`)."""
