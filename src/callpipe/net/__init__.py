"""Networking on the client side: SFU signaling and the UDP media transport (:mod:`.udp`)."""

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
from .udp import Datagram, MediaTransport, UdpSession

__all__ = [
    "SignalingClient",
    "Event",
    "ParticipantJoined",
    "ParticipantLeft",
    "RelayReceived",
    "ServerError",
    "Disconnected",
    "MediaTransport",
    "UdpSession",
    "Datagram",
]
