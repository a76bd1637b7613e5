"""One exception hierarchy: every error turnbench raises on purpose carries its exit code.

The CLI maps them once (`harness.cli.main`): `InputError` → 2, `TargetError` → 3, a failed
threshold or bound → 1. Modules raise the specific subclass that names what was wrong; nothing
below the CLI calls `sys.exit`.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TARGET = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


class TurnbenchError(Exception):
    """Base of every deliberate turnbench error; `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_FAILED


class InputError(TurnbenchError, ValueError):
    """Bad input: an option, a scenario, a fixture, a URL, a result file (exit 2).
    The message names the file and line, or the option, and what was wrong."""

    exit_code = EXIT_USAGE


class TargetError(TurnbenchError, ConnectionError):
    """The target could not be reached or is not a voice agent (exit 3)."""

    exit_code = EXIT_TARGET


class ProtocolViolation(TurnbenchError, ValueError):
    """A peer sent something its protocol does not allow. On the caller's side the call records
    it and the run goes on; where it ends a command, it is the target's fault (exit 3)."""

    exit_code = EXIT_TARGET


class MissingDependency(InputError):
    """An optional dependency or model file is missing; the message says which extra installs it."""


class MeasurementFailed(TurnbenchError):
    """A threshold, gate or calibration bound was not met (exit 1)."""

    exit_code = EXIT_FAILED
