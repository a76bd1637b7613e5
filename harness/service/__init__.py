"""The run service: what every command that calls a target shares.

`RunInputs` resolves a command's options and a scenario into one validated set of run inputs;
`session.benchmark` runs the calls and writes the run folder as it goes; `finish` checks the
thresholds, writes the report and decides the exit code. `run`, `sweep`, `load`, `calibrate` and
`bench` all start and stop targets through here.
"""
