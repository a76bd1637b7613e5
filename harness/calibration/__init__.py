"""Proving the measurement: the harness against the oracle's ground truth."""
