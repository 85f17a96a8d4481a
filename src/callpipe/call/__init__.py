"""Calls: the media pipelines and the 1:1 :class:`Call`.

* :mod:`callpipe.call.pipeline` -- send and receive pipelines for video (VP8) and audio
  (Opus): encode on a worker thread, SFrame-encrypt, packetize to RTP, and back; NACK, PLI,
  the audio jitter buffer, statistics.
* :mod:`callpipe.call.group` -- :class:`GroupCall`: a group call through the SFU (roster
  chain, per-sender keys, verification emoji, reconnect).
* :mod:`callpipe.call.call` -- :class:`Call`: a 1:1 call with the committed key exchange
  (4 emoji) over a pluggable message channel and media over direct UDP.
* :mod:`callpipe.call.stats` -- the statistics snapshots (webrtc-stats names).
"""

from __future__ import annotations

from .call import Call, CallConfig, LocalChannel, MessageChannel, SignalingChannel, UdpChannel
from .group import GroupCall, GroupCallConfig, RemoteParticipant, RemoteTrack
from .pipeline import (
    ABS_SEND_TIME_ID,
    AUDIO_LEVEL_ID,
    FRAME_MARKING_ID,
    OPUS_PAYLOAD_TYPE,
    VP8_PAYLOAD_TYPE,
    AudioReceivePipeline,
    AudioSendPipeline,
    VideoReceivePipeline,
    VideoSendPipeline,
    audio_level_dbov,
    frame_metadata,
)
from .stats import AudioReceiveStats, AudioSendStats, VideoReceiveStats, VideoSendStats

__all__ = [
    "GroupCall",
    "GroupCallConfig",
    "RemoteParticipant",
    "RemoteTrack",
    "Call",
    "CallConfig",
    "MessageChannel",
    "LocalChannel",
    "SignalingChannel",
    "UdpChannel",
    "VideoSendPipeline",
    "AudioSendPipeline",
    "VideoReceivePipeline",
    "AudioReceivePipeline",
    "frame_metadata",
    "audio_level_dbov",
    "AUDIO_LEVEL_ID",
    "ABS_SEND_TIME_ID",
    "FRAME_MARKING_ID",
    "VP8_PAYLOAD_TYPE",
    "OPUS_PAYLOAD_TYPE",
    "VideoReceiveStats",
    "AudioReceiveStats",
    "VideoSendStats",
    "AudioSendStats",
]
