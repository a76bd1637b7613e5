"""From a call's timeline to per-turn results, and from turn results to summary statistics."""
