"""The SFU: a forwarding server that cannot read media.

The signaling plane: join tokens (:mod:`.token`), the signaling message schema
(:mod:`.protocol`), rooms, participants, SSRCs and limits (:mod:`.rooms`, sans-I/O) and the
WebSocket server (:mod:`.signaling`).  The media plane (:mod:`.media`: UDP RTP/RTCP forwarding
over the native batched path in ``_forward``, with routing decisions in :mod:`.router`) plugs
into the server through :class:`MediaPlane`; :class:`NullMediaPlane` is the signaling-only
stand-in used with ``callpipe sfu --no-media``.
"""

from __future__ import annotations

from .protocol import PROTOCOL_VERSION, ErrorCode, MemberInfo, ProtocolError, SignalingError, Ssrcs
from .rooms import Limits, RoomError
from .signaling import MediaPlane, NullMediaPlane, SignalingServer
from .token import JoinToken, TokenError, issue_token, peek_token, verify_token

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorCode",
    "MemberInfo",
    "ProtocolError",
    "SignalingError",
    "Ssrcs",
    "Limits",
    "RoomError",
    "MediaPlane",
    "NullMediaPlane",
    "SignalingServer",
    "JoinToken",
    "TokenError",
    "issue_token",
    "peek_token",
    "verify_token",
]
