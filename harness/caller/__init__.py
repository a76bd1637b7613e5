"""Runs scenarios over a transport in real time and records what happened, sample by sample."""
