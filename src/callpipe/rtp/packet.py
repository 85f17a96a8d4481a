"""RTP packets (RFC 3550) and their header extensions (RFC 8285), parsed and built in C.

* :class:`RtpPacket` -- one immutable packet: ``RtpPacket.parse(data)`` /
  ``packet.serialize()`` (also ``bytes(packet)``).  Parsing is strict (each defect raises
  :class:`~callpipe.errors.TransportError` with its own message: truncated, bad version, CSRC
  list, extension header/length/element/id, zero or oversized padding) and lossless:
  ``RtpPacket.parse(b).serialize() == b`` for every ``b`` that parses.
* :func:`parse_many` -- many packets in one call, the GIL released while parsing.
* Header extensions in both RFC 8285 forms (one-byte ``0xBEDE``, two-byte ``0x100X``):
  :class:`HeaderExtension` elements, :func:`encode_extensions` / :func:`decode_extensions`.
* Typed values: abs-send-time (24-bit 6.18 fixed-point seconds), the transport-wide sequence
  number (16 bits), RFC 6464 audio level (:class:`AudioLevel`), RFC 9626 video frame marking
  (:class:`FrameMarking`, which carries the keyframe flag and temporal id readably even when
  the payload is SFrame-encrypted); and :class:`ExtensionIds` to read/write them by their
  negotiated ids (``a=extmap`` in SDP; the URIs are the ``*_URI`` constants).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NativeModuleError

try:
    from . import _rtp
except ImportError as e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.rtp._rtp is not built (run `make` or `pip install -e .`)", str(e)
    ) from e

__all__ = [
    "RtpPacket",
    "HeaderExtension",
    "AudioLevel",
    "FrameMarking",
    "ExtensionIds",
    "ExtensionValues",
    "parse_many",
    "encode_extensions",
    "decode_extensions",
    "abs_send_time_from_us",
    "abs_send_time_to_us",
    "encode_abs_send_time",
    "decode_abs_send_time",
    "encode_transport_cc",
    "decode_transport_cc",
    "encode_audio_level",
    "decode_audio_level",
    "encode_frame_marking",
    "decode_frame_marking",
    "ONE_BYTE_PROFILE",
    "TWO_BYTE_PROFILE",
    "ABS_SEND_TIME_URI",
    "TRANSPORT_CC_URI",
    "AUDIO_LEVEL_URI",
    "FRAME_MARKING_URI",
]

RtpPacket = _rtp.RtpPacket
HeaderExtension = _rtp.HeaderExtension
AudioLevel = _rtp.AudioLevel
FrameMarking = _rtp.FrameMarking
parse_many = _rtp.parse_many
encode_extensions = _rtp.encode_extensions
decode_extensions = _rtp.decode_extensions
abs_send_time_from_us = _rtp.abs_send_time_from_us
abs_send_time_to_us = _rtp.abs_send_time_to_us
encode_abs_send_time = _rtp.encode_abs_send_time
decode_abs_send_time = _rtp.decode_abs_send_time
encode_transport_cc = _rtp.encode_transport_cc
decode_transport_cc = _rtp.decode_transport_cc
encode_audio_level = _rtp.encode_audio_level
decode_audio_level = _rtp.decode_audio_level
encode_frame_marking = _rtp.encode_frame_marking
decode_frame_marking = _rtp.decode_frame_marking

#: extension profile of the RFC 8285 one-byte form
ONE_BYTE_PROFILE: int = _rtp.ONE_BYTE_PROFILE
#: extension profile of the RFC 8285 two-byte form (the low 4 bits are "appbits")
TWO_BYTE_PROFILE: int = _rtp.TWO_BYTE_PROFILE

#: ``a=extmap`` URIs of the typed extensions
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
FRAME_MARKING_URI = "urn:ietf:params:rtp-hdrext:framemarking"


@dataclass(frozen=True, slots=True)
class ExtensionValues:
    """Typed header extension values of one packet (None: absent).

    :param abs_send_time: abs-send-time, the 24-bit 6.18 fixed-point value (units of 2**-18 s,
        modulo 64 s); :func:`abs_send_time_to_us` converts it to µs.
    :param transport_cc: transport-wide sequence number, 0..65535.
    :param audio_level: :class:`AudioLevel` (V bit, level in -dBov).
    :param frame_marking: :class:`FrameMarking`.
    """

    abs_send_time: int | None = None
    transport_cc: int | None = None
    audio_level: AudioLevel | None = None
    frame_marking: FrameMarking | None = None


@dataclass(frozen=True, slots=True)
class ExtensionIds:
    """The local ids negotiated for the typed extensions (``a=extmap:<id> <uri>``).

    :param abs_send_time: id of :data:`ABS_SEND_TIME_URI`, or None.
    :param transport_cc: id of :data:`TRANSPORT_CC_URI`, or None.
    :param audio_level: id of :data:`AUDIO_LEVEL_URI`, or None.
    :param frame_marking: id of :data:`FRAME_MARKING_URI`, or None.
    """

    abs_send_time: int | None = None
    transport_cc: int | None = None
    audio_level: int | None = None
    frame_marking: int | None = None

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name in ("abs_send_time", "transport_cc", "audio_level", "frame_marking"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 255:
                raise ValueError(f"{name} extension id must be in 1..255, got {value!r}")
            if value in seen:
                raise ValueError(f"{name} and {seen[value]} share the extension id {value}")
            seen[value] = name

    def read(self, packet: RtpPacket) -> ExtensionValues:
        """The typed values carried by ``packet``; TransportError if one has the wrong size."""
        ast = tcc = level = fm = None
        if packet.extension_profile is not None:
            if self.abs_send_time is not None:
                raw = packet.extension(self.abs_send_time)
                ast = None if raw is None else decode_abs_send_time(raw)
            if self.transport_cc is not None:
                raw = packet.extension(self.transport_cc)
                tcc = None if raw is None else decode_transport_cc(raw)
            if self.audio_level is not None:
                raw = packet.extension(self.audio_level)
                level = None if raw is None else decode_audio_level(raw)
            if self.frame_marking is not None:
                raw = packet.extension(self.frame_marking)
                fm = None if raw is None else decode_frame_marking(raw)
        return ExtensionValues(ast, tcc, level, fm)

    def elements(
        self,
        *,
        send_time_us: int | None = None,
        transport_cc: int | None = None,
        audio_level: AudioLevel | None = None,
        frame_marking: FrameMarking | None = None,
    ) -> list[HeaderExtension]:
        """Header extension elements for the given values (those whose id is set).

        :param send_time_us: send time in µs (any epoch) for abs-send-time.
        :param transport_cc: transport-wide sequence number, 0..65535.
        :param audio_level: :class:`AudioLevel`.
        :param frame_marking: :class:`FrameMarking`.
        """
        out = []
        if send_time_us is not None and self.abs_send_time is not None:
            out.append(HeaderExtension(self.abs_send_time, encode_abs_send_time(send_time_us)))
        if transport_cc is not None and self.transport_cc is not None:
            out.append(HeaderExtension(self.transport_cc, encode_transport_cc(transport_cc)))
        if audio_level is not None and self.audio_level is not None:
            out.append(
                HeaderExtension(
                    self.audio_level, encode_audio_level(audio_level.voice, audio_level.level)
                )
            )
        if frame_marking is not None and self.frame_marking is not None:
            out.append(HeaderExtension(self.frame_marking, encode_frame_marking(frame_marking)))
        return out
