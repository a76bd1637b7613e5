"""The run service: what every command that calls a target shares.

`RunInputs` resolves a command's options and a scenario into one validated set of run inputs;
`session.benchmark` runs the calls and writes the run folder as it goes; `finish` checks the
thresholds, writes the report and decides the exit code; `signals` stops the calls on SIGINT or
SIGTERM. `run`, `sweep` and `load` start and stop their targets through here.
"""
