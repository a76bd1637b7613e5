"""The per-packet log of a network impairment, kept on the call's timeline for calibration."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImpairmentLog:
    """What the impairment did to each packet, in the caller's send / receive order."""

    up_added_ns: list[int] = field(default_factory=list)
    up_lost: list[bool] = field(default_factory=list)
    down_added_ns: list[int] = field(default_factory=list)
    """Per audio chunk handed to the caller (same index as the call timeline's audio)."""
    down_lost: list[bool] = field(default_factory=list)
    inner_arrival_ns: list[int] = field(default_factory=list)
    """Every audio chunk as the inner transport delivered it (before delay, loss and catch-up) …"""
    inner_len: list[int] = field(default_factory=list)
    inner_kept: list[int] = field(default_factory=list)
    """… the index it was handed to the caller at (-1: dropped whole by catch-up) …"""
    inner_trimmed: list[int] = field(default_factory=list)
    """… and how many of its leading samples catch-up dropped: the caller's heard stream without
    the path is rebuilt from these, so calibration compares against the true counterfactual."""
    inner_pcm: bytearray = field(default_factory=bytearray)
    """A continuous stream's chunks as delivered, before delay, loss and catch-up (PCM16), so the
    stream the caller would have heard without the path can be replayed exactly."""
    clear_added_ns: list[int] = field(default_factory=list)
    """Per `clear` handed to the caller (same index as the call timeline's clears): a stop made by
    a `clear` is heard later by that message's own delay, not by any audio chunk's."""
