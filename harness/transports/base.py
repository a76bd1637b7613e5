"""The one interface every transport implements, and what it hands back to the caller."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable

from harness.errors import ProtocolViolation, TargetError
from harness.records.received import Received


def auth_headers(token: str | None) -> dict[str, str]:
    """The header every transport's caller sends to an agent that wants a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class TargetUnreachable(TargetError):
    """The target could not be reached or does not speak the protocol (exit code 3)."""


class TargetRefused(TargetUnreachable):
    """The target answered the call's setup and turned it down: an HTTP error status to the offer,
    or a refusal in a 200 body (`{"status": "failed", "meta": {"error": "concurrency_limit_reached"}}`).
    One call fails; the run goes on; the message leads with what the target said."""


REFUSAL_STATUSES = ("failed", "failure", "error", "rejected", "refused", "busy")


def refusal_in(answer) -> str | None:
    """Why an offer's JSON answer turns the call down, or None when it does not: an answer with no
    SDP and a failure status or an error (`{"status": "failed", "meta": {"error":
    "concurrency_limit_reached"}}`, `{"error": {"message": …}}`), as servers that answer 200 say it."""
    if not isinstance(answer, dict) or isinstance(answer.get("sdp"), str):
        return None
    status = answer.get("status")
    error = answer.get("error")
    meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
    if not (isinstance(status, str) and status.lower() in REFUSAL_STATUSES) and error is None:
        return None
    for why in (meta.get("error"), error, meta.get("message"), answer.get("message"), answer.get("detail"), status):
        if isinstance(why, dict):
            why = why.get("message") or why.get("code") or why.get("type")
        if isinstance(why, str) and why:
            return why[:200]
    return "the answer says the call failed"


class TargetProtocolError(ProtocolViolation):
    """The target sent something the protocol does not allow (recorded on the call, run goes on)."""


class Transport(abc.ABC):
    """A connection to one agent for one call: 20 ms PCM16 frames out, audio and events in."""

    name: str = "?"
    continuous: bool = False
    """Media flows all call long, silence included (the receiver catches up after a stall)."""
    setup_ms: float | None = None
    """Connection set-up before media flowed (offer → connected), for transports that have one."""
    log = None
    """An impairment's per-packet log (`ImpairedTransport`), for calibration."""
    catch_up = None
    """A continuous stream's receiver catch-up, when this transport applies it itself."""
    refusal: str | None = None
    """Why the target turned the call down after accepting the connection (a refusal message on
    the stream, e.g. a concurrency limit), when it did: the call's error says so."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the call; raise `TargetUnreachable` with the URL and what went wrong."""

    @abc.abstractmethod
    async def send_audio(self, pcm16: bytes) -> int | None:
        """Send one frame of caller audio (16 kHz mono PCM16LE). Transports that encode return
        the moment the encoded frame went to the socket (the caller's send time for it)."""

    @abc.abstractmethod
    async def send_event(self, event: dict) -> None:
        """Send a JSON side-channel message (used for oracle hints only)."""

    async def caller_turn_ended(self, kind: str) -> None:
        """The caller has finished a turn of this kind (its clip is sent). Protocols where the
        client says when a turn is over (OpenAI Realtime without server turn detection) act on it."""

    @abc.abstractmethod
    def received(self) -> AsyncIterator[Received]:
        """Everything the agent sends, in arrival order, until the call ends."""

    async def pump(self, on_item: Callable[[Received], None]) -> None:
        """Hand everything the agent sends to `on_item`, in arrival order, until the call ends.
        Transports that parse in the socket's callback override this to call `on_item` there."""
        async for item in self.received():
            on_item(item)

    @abc.abstractmethod
    async def close(self) -> None:
        """Hang up; safe to call twice."""

    @property
    def protocol_errors(self) -> list[str]:
        """Malformed things the target sent during the call (the call goes on)."""
        return getattr(self, "_protocol_errors", [])
