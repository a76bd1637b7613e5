"""The agent's end of each wire protocol: one `CallLink` per call, whatever the transport."""

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, LinkRefused

__all__ = ["CallLink", "CallerAudio", "CallerEvent", "LinkRefused"]
