"""Load: concurrency sweeps and the latency-vs-concurrency knee (Locust-driven load builds on it)."""
