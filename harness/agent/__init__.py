"""Agents turnbench serves itself: the oracle (programmed behaviour) and the reference agent."""
