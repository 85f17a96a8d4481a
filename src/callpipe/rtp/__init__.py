"""RTP for callpipe: packets, header extensions, sequence arithmetic, VP8 and Opus payloads.

Sans-I/O: nothing here opens a socket or reads a clock (times are passed in).  The parsing,
packetizing and frame assembly run in C (``native/src/cp_rtp.c`` through
:mod:`callpipe.rtp._rtp`).

* :mod:`callpipe.rtp.packet` -- :class:`RtpPacket` (RFC 3550), RFC 8285 header extensions and
  their typed values.
* :mod:`callpipe.rtp.seqnum` -- wrap-safe sequence number / timestamp arithmetic.
* :mod:`callpipe.rtp.vp8` -- RFC 7741: descriptor, packetizer, frame assembler.
* :mod:`callpipe.rtp.opus` -- RFC 7587.
* :mod:`callpipe.rtp.rtcp` -- RTCP packets (RFC 3550/4585/5104/5506), compound and reduced-size.
* :mod:`callpipe.rtp.nack` -- NACK requester, retransmission history, PLI/FIR rate limiting.
* :mod:`callpipe.rtp.stats` -- RFC 3550 receiver/sender statistics, jitter, RTT.

The names below are the package's public API; each group comes from the module named.
"""

from __future__ import annotations

from .nack import (
    KeyframeRequest,
    KeyframeRequester,
    NackRequest,
    NackRequester,
    RetransmissionHistory,
    RetransmitAnswer,
)
from .opus import (
    OPUS_CLOCK_RATE,
    OpusDepacketizer,
    OpusPacketizer,
    OpusRtpFrame,
    opus_packet_samples,
)
from .packet import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    FRAME_MARKING_URI,
    TRANSPORT_CC_URI,
    AudioLevel,
    ExtensionIds,
    ExtensionValues,
    FrameMarking,
    HeaderExtension,
    RtpPacket,
    parse_many,
)
from .rtcp import (
    App,
    Bye,
    FeedbackPacket,
    Fir,
    FirEntry,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpCompound,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
    SourceDescription,
    UnknownPacket,
    build_compound,
    build_reduced_size,
    is_rtcp,
    nack_items,
    nack_seqs,
    ntp_compact,
    ntp_from_unix,
    ntp_to_unix,
    parse_rtcp,
    serialize_rtcp,
)
from .seqnum import (
    SequenceUnwrapper,
    TimestampUnwrapper,
    seq_diff,
    seq_newer,
    ts_diff,
    ts_newer,
)
from .stats import ReceiverStatistics, SenderStatistics, rtt_from_report
from .vp8 import (
    VP8_CLOCK_RATE,
    AssembledFrame,
    AssemblerStats,
    FrameLoss,
    Vp8Descriptor,
    Vp8FrameAssembler,
    Vp8Packetizer,
    Vp8Payload,
)

__all__ = [
    # packet.py
    "RtpPacket",
    "HeaderExtension",
    "AudioLevel",
    "FrameMarking",
    "ExtensionIds",
    "ExtensionValues",
    "parse_many",
    "ABS_SEND_TIME_URI",
    "TRANSPORT_CC_URI",
    "AUDIO_LEVEL_URI",
    "FRAME_MARKING_URI",
    # seqnum.py
    "seq_diff",
    "seq_newer",
    "ts_diff",
    "ts_newer",
    "SequenceUnwrapper",
    "TimestampUnwrapper",
    # vp8.py
    "VP8_CLOCK_RATE",
    "Vp8Descriptor",
    "Vp8Payload",
    "Vp8Packetizer",
    "Vp8FrameAssembler",
    "AssembledFrame",
    "FrameLoss",
    "AssemblerStats",
    # opus.py
    "OPUS_CLOCK_RATE",
    "opus_packet_samples",
    "OpusPacketizer",
    "OpusDepacketizer",
    "OpusRtpFrame",
    # rtcp.py
    "SenderReport",
    "ReceiverReport",
    "ReportBlock",
    "SourceDescription",
    "SdesChunk",
    "SdesItem",
    "SdesType",
    "Bye",
    "App",
    "Nack",
    "Pli",
    "Fir",
    "FirEntry",
    "Remb",
    "FeedbackPacket",
    "UnknownPacket",
    "RtcpPacket",
    "RtcpCompound",
    "RtcpParseError",
    "parse_rtcp",
    "serialize_rtcp",
    "build_compound",
    "build_reduced_size",
    "is_rtcp",
    "nack_items",
    "nack_seqs",
    "ntp_from_unix",
    "ntp_to_unix",
    "ntp_compact",
    # nack.py
    "NackRequester",
    "NackRequest",
    "RetransmissionHistory",
    "RetransmitAnswer",
    "KeyframeRequester",
    "KeyframeRequest",
    # stats.py
    "ReceiverStatistics",
    "SenderStatistics",
    "rtt_from_report",
]
