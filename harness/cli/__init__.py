"""The `turnbench` command line."""

from __future__ import annotations

import click

import harness
from harness.cli.agent import agent
from harness.cli.bench import bench
from harness.cli.calibrate import calibrate
from harness.cli.fixtures import fixtures
from harness.cli.gate import gate
from harness.cli.load import load
from harness.cli.matrix import matrix
from harness.cli.report import report
from harness.cli.run import run, validate
from harness.cli.scenarios import scenarios
from harness.cli.sweep import sweep
from harness.errors import TurnbenchError

EPILOG = """\b
Exit codes (every command):
  0  success
  1  a threshold or calibration bound failed
  2  usage or input error (bad option, scenario, fixture, URL)
  3  the target could not be reached or is not a voice agent
"""


class TurnbenchGroup(click.Group):
    """Maps every `TurnbenchError` a command lets through to its message and exit code, once."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TurnbenchError as e:
            from harness.cli.common import fail
            fail(str(e), e.exit_code)
        except OSError as e:
            if e.filename is None:  # not about a file the user named: a real failure, with its traceback
                raise
            from harness.cli.common import EXIT_USAGE, fail
            fail(f"{e.filename}: {e.strerror or e}", EXIT_USAGE)


@click.group(cls=TurnbenchGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(harness.__version__, prog_name="turnbench")
def main() -> None:
    """Measure how fast and how politely a voice AI agent takes turns.

    Scripted callers stream recorded speech (with pauses, barge-ins and backchannels) into an
    agent in real time and time everything from the caller's side of the wire.
    """


main.add_command(run)
main.add_command(validate)
main.add_command(calibrate)
main.add_command(fixtures)
main.add_command(agent)
main.add_command(report)
main.add_command(gate)
main.add_command(sweep)
main.add_command(load)
main.add_command(bench)
main.add_command(matrix)
main.add_command(scenarios)
