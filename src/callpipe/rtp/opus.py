"""The Opus RTP payload format (RFC 7587).

The payload is exactly one Opus packet (RFC 6716), no header of its own.  What the RFC adds:

* The RTP clock is always **48 000 Hz**, whatever the encoder's sampling rate, and the
  timestamp advances by the packet's duration in 48 kHz samples (960 for 20 ms); SDP says
  ``a=rtpmap:<pt> opus/48000/2`` even for mono.
* DTX: during silence an encoder with DTX produces packets of at most 2 bytes, which need not
  be sent (RFC 7587 section 3.1.3).  The timestamp keeps advancing, so the receiver sees a
  timestamp jump **without** a sequence gap -- silence, not loss.  The first packet after such
  a pause starts a talkspurt and carries the RTP marker bit (RFC 3551 section 4.1), as does
  the very first packet.

:class:`OpusPacketizer` applies these rules on the send side; :class:`OpusDepacketizer`
unwraps sequence numbers and timestamps on the receive side and tells lost packets from DTX
silence (:class:`OpusRtpFrame`).  :func:`opus_packet_samples` reads a packet's duration from
its TOC byte (RFC 6716 section 3.1).
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass

from ..errors import TransportError
from .packet import AudioLevel, ExtensionIds, RtpPacket
from .seqnum import SequenceUnwrapper, TimestampUnwrapper

__all__ = [
    "OPUS_CLOCK_RATE",
    "OPUS_RTPMAP",
    "DTX_MAX_BYTES",
    "opus_packet_samples",
    "OpusPacketizer",
    "OpusDepacketizer",
    "OpusRtpFrame",
]

#: RTP clock of Opus, Hz (RFC 7587 section 4.1)
OPUS_CLOCK_RATE = 48000
#: the SDP encoding name/clock/channels (RFC 7587 section 7: always "/2")
OPUS_RTPMAP = "opus/48000/2"
#: packets this short are DTX (no audio to send)
DTX_MAX_BYTES = 2
#: largest Opus packet duration, 48 kHz samples (120 ms, RFC 6716 section 3.2.5)
MAX_PACKET_SAMPLES = 5760

# frame duration per TOC configuration (RFC 6716 section 3.1, Table 2), 48 kHz samples
_SILK = (480, 960, 1920, 2880)  # 10, 20, 40, 60 ms
_HYBRID = (480, 960)  # 10, 20 ms
_CELT = (120, 240, 480, 960)  # 2.5, 5, 10, 20 ms
_FRAME_SAMPLES = (
    _SILK * 3 + _HYBRID * 2 + _CELT * 4  # configs 0..11 SILK, 12..15 hybrid, 16..31 CELT
)


def opus_packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 3.1).

    :param packet: one Opus packet (an RTP payload).
    :raises TransportError: empty, or a code-3 packet without a valid frame count.
    """
    if not packet:
        raise TransportError("empty Opus packet (RFC 6716 requires at least the TOC byte)")
    toc = packet[0]
    frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 3
    if code == 0:
        return frame
    if code in (1, 2):
        return 2 * frame
    if len(packet) < 2:
        raise TransportError("Opus code-3 packet without its frame count byte")
    count = packet[1] & 0x3F
    if count == 0 or count * frame > MAX_PACKET_SAMPLES:
        raise TransportError(
            f"Opus code-3 packet with {count} frames of {frame} samples (1..120 ms allowed)"
        )
    return count * frame


class OpusPacketizer:
    """An Opus RTP sender for one SSRC: Opus packets in, RTP packets out.

    :param ssrc: synchronisation source, 0..2**32-1; default: random.
    :param payload_type: RTP payload type, 0..127 (commonly 111).
    :param sequence_number: first sequence number; default: random.
    :param timestamp: first RTP timestamp (48 kHz); default: random.
    :param extension_ids: ids of the typed header extensions to send (audio level,
        abs-send-time, transport-wide sequence number).
    :param send_dtx: also send DTX packets (<= 2 bytes); by default they are dropped and the
        next sent packet gets the marker bit.
    """

    def __init__(
        self,
        ssrc: int | None = None,
        payload_type: int = 111,
        *,
        sequence_number: int | None = None,
        timestamp: int | None = None,
        extension_ids: ExtensionIds | None = None,
        send_dtx: bool = False,
    ) -> None:
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.payload_type = payload_type
        self.sequence_number = secrets.randbits(16) if sequence_number is None else sequence_number
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp
        self.extension_ids = extension_ids or ExtensionIds()
        self.send_dtx = send_dtx
        self.transport_cc_seq = 0
        self._talkspurt = True
        # validate once, through the packet constructor's checks
        RtpPacket(self.payload_type, self.sequence_number, self.timestamp, self.ssrc)

    def packetize(
        self,
        opus_packet: bytes,
        *,
        samples: int | None = None,
        audio_level: AudioLevel | None = None,
        send_time_us: int | None = None,
    ) -> bytes | None:
        """The RTP packet carrying ``opus_packet``, or None for a DTX packet not sent.

        :param opus_packet: one Opus packet from the encoder.
        :param samples: its duration in 48 kHz samples; default: read from its TOC byte.
        :param audio_level: RFC 6464 level to send (when its extension id is set).
        :param send_time_us: send time in µs for abs-send-time (when its id is set).
        """
        duration = opus_packet_samples(opus_packet) if samples is None else samples
        if duration <= 0:
            raise ValueError(f"samples must be positive, got {duration}")
        ts = self.timestamp
        self.timestamp = (ts + duration) % (1 << 32)
        if len(opus_packet) <= DTX_MAX_BYTES and not self.send_dtx:
            self._talkspurt = True
            return None
        ids = self.extension_ids
        elements = ids.elements(
            send_time_us=send_time_us,
            transport_cc=self.transport_cc_seq if ids.transport_cc is not None else None,
            audio_level=audio_level,
        )
        packet = RtpPacket(
            self.payload_type,
            self.sequence_number,
            ts,
            self.ssrc,
            opus_packet,
            marker=self._talkspurt,
            extensions=elements,
        )
        self._talkspurt = False
        self.sequence_number = (self.sequence_number + 1) % (1 << 16)
        if ids.transport_cc is not None:
            self.transport_cc_seq = (self.transport_cc_seq + 1) % (1 << 16)
        return packet.serialize()


@dataclass(frozen=True, slots=True)
class OpusRtpFrame:
    """One received Opus packet, placed in its stream.

    :param data: the Opus packet (give it to the decoder).
    :param sequence: extended (64-bit) sequence number.
    :param timestamp: extended RTP timestamp, 48 kHz samples.
    :param samples: its duration, 48 kHz samples.
    :param talkspurt_start: the RTP marker (first packet after DTX silence).
    :param lost: packets missing right before this one (sequence gap), 0 normally.
    :param gap_samples: 48 kHz samples between the end of the previous packet and this one
        (DTX silence when ``lost`` is 0; silence and lost audio together otherwise).
    :param late: it arrived after a newer packet (reordered); ``lost`` and ``gap_samples`` are
        0 then.
    :param ssrc: the stream's SSRC.
    :param payload_type: RTP payload type.
    :param audio_level: the RFC 6464 level, when the extension was present and its id known.
    """

    data: bytes
    sequence: int
    timestamp: int
    samples: int
    talkspurt_start: bool
    lost: int
    gap_samples: int
    late: bool
    ssrc: int
    payload_type: int
    audio_level: AudioLevel | None = None


class OpusDepacketizer:
    """An Opus RTP receiver for one SSRC (no jitter buffer: packets come out as they arrive).

    :param ssrc: the SSRC to accept; default: the first packet's.
    :param extension_ids: ids of the typed header extensions (audio level).
    :param history: recent sequence numbers remembered to drop duplicates.
    """

    def __init__(
        self,
        ssrc: int | None = None,
        *,
        extension_ids: ExtensionIds | None = None,
        history: int = 128,
    ) -> None:
        self.ssrc = ssrc
        self.extension_ids = extension_ids or ExtensionIds()
        self._seq = SequenceUnwrapper()
        self._ts = TimestampUnwrapper()
        self._last_seq: int | None = None
        self._end_ts = 0
        self._recent: deque[int] = deque(maxlen=history)
        self._recent_set: set[int] = set()
        self.duplicates = 0

    def push(self, packet: bytes | RtpPacket) -> OpusRtpFrame | None:
        """Place one RTP packet; returns None for a duplicate.

        :raises TransportError: not RTP, another SSRC, or not an Opus payload.
        """
        p = packet if isinstance(packet, RtpPacket) else RtpPacket.parse(packet)
        if self.ssrc is None:
            self.ssrc = p.ssrc
        elif p.ssrc != self.ssrc:
            raise TransportError(f"RTP packet of SSRC {p.ssrc:#010x}, expected {self.ssrc:#010x}")
        samples = opus_packet_samples(p.payload)
        seq = self._seq.unwrap(p.sequence_number)
        ts = self._ts.unwrap(p.timestamp)
        if seq in self._recent_set:
            self.duplicates += 1
            return None
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(seq)
        self._recent_set.add(seq)
        lost = gap = 0
        late = self._last_seq is not None and seq < self._last_seq
        if not late:
            if self._last_seq is not None:
                lost = seq - self._last_seq - 1
                gap = max(0, ts - self._end_ts)
            self._last_seq = seq
            self._end_ts = ts + samples
        level = None
        if self.extension_ids.audio_level is not None:
            level = self.extension_ids.read(p).audio_level
        return OpusRtpFrame(
            p.payload, seq, ts, samples, p.marker, lost, gap, late, p.ssrc, p.payload_type, level
        )
