"""Networking on the client side: SFU signaling (and, later, the UDP media transport)."""

from __future__ import annotations

from .signaling import (
    Disconnected,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    RelayReceived,
    ServerError,
    SignalingClient,
)

__all__ = [
    "SignalingClient",
    "Event",
    "ParticipantJoined",
    "ParticipantLeft",
    "RelayReceived",
    "ServerError",
    "Disconnected",
]
