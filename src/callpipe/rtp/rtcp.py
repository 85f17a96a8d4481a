"""RTCP packets (RFC 3550, RFC 4585, RFC 5104, RFC 5506) as named, immutable objects.

Parsing and serialising happen in C (``native/src/cp_rtcp.c``, through
:mod:`callpipe.rtp._rtcp`); this module gives every packet a frozen dataclass whose
``bytes(packet)`` is its wire form.  The bit diagrams of every packet are in the C file above
each parse/serialise pair.

* :func:`parse_rtcp` validates a whole compound packet (or an RFC 5506 reduced-size one) and
  returns an :class:`RtcpCompound`; any malformed input raises
  :class:`~callpipe.errors.TransportError` naming the problem and the byte offset of the bad
  packet (the subclass ``RtcpParseError`` also carries ``code``, ``offset`` and ``index``).
  ``bytes(parse_rtcp(data)) == data`` for every input that parses.
* :func:`build_compound` makes a compound packet the RFC 3550 way (SR or RR first, then SDES
  with a CNAME, then anything else); :func:`build_reduced_size` a single feedback packet.
* Packets: :class:`SenderReport`, :class:`ReceiverReport` (with :class:`ReportBlock`),
  :class:`SourceDescription` (:class:`SdesChunk`, :class:`SdesItem`), :class:`Bye`,
  :class:`App`, :class:`Nack` (generic NACK, RFC 4585 section 6.2.1), :class:`Pli`
  (section 6.3.1), :class:`Fir` (RFC 5104 section 4.3.1), :class:`Remb`
  (draft-alvestrand-rmcat-remb), and :class:`FeedbackPacket` / :class:`UnknownPacket`, which
  keep any other feedback message or packet type byte for byte.
* NTP time helpers for SR/RR round-trip time: :func:`ntp_from_unix`, :func:`ntp_to_unix`,
  :func:`ntp_compact`.

Strictness: version 2 only; packet types 192..223 only; padding only on the last packet, a
non-zero multiple of 4 that fits; SR/RR/BYE lengths must hold their counted blocks/SSRCs;
SDES chunks must end with END plus null octets to the 32-bit boundary and nothing may follow
the last counted chunk; BYE reasons must fit and be null-padded; a NACK needs at least one
item, a PLI has no FCI, FIR entries are 8 bytes with zero reserved bits, a REMB's SSRC count
must match its length.  Unknown SDES item types, unknown packet types and feedback formats are
kept, not rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, TypeVar, Union

from ..errors import NativeModuleError
from .seqnum import seq_diff  # wrap-safe arithmetic lives in one place

try:
    from . import _rtcp
except ImportError as e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.rtp._rtcp is not built (run `make` or `pip install -e .`)", str(e)
    ) from e

__all__ = [
    "RTCP_SR",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_BYE",
    "RTCP_APP",
    "RTCP_RTPFB",
    "RTCP_PSFB",
    "SdesType",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SdesItem",
    "SdesChunk",
    "SourceDescription",
    "Bye",
    "App",
    "Nack",
    "Pli",
    "FirEntry",
    "Fir",
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
    "NTP_UNIX_OFFSET",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
RTCP_RTPFB = 205
RTCP_PSFB = 206

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2_208_988_800

RtcpParseError = _rtcp.RtcpParseError

_U32 = 0xFFFF_FFFF
_T = TypeVar("_T")


def _check_int(name: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")


def _check_bytes(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")


def _check_u32s(name: str, values: Sequence[int]) -> None:
    for v in values:
        _check_int(name, v, 0, _U32)


class SdesType(IntEnum):
    """SDES item types (RFC 3550 section 6.5); other values are kept as plain ints."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


# -- NTP time (RFC 3550 section 4) ------------------------------------------------------------
def ntp_from_unix(seconds: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point, seconds since 1900) of Unix time
    ``seconds`` (s), wrapped to 64 bits."""
    return int(round((seconds + NTP_UNIX_OFFSET) * 2**32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_to_unix(ntp: int) -> float:
    """Unix time (s) of a 64-bit NTP timestamp (era 0)."""
    return ntp / 2**32 - NTP_UNIX_OFFSET


def ntp_compact(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (16.16 fixed point seconds): the format of
    LSR, DLSR and round-trip arithmetic (RFC 3550 section 6.4.1)."""
    return (ntp >> 16) & _U32


# -- report blocks, SR, RR --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportBlock:
    """A reception report about one source (RFC 3550 section 6.4.1).

    :param ssrc: the source reported on.
    :param fraction_lost: packets lost since the previous report / expected, in 1/256 (0..255).
    :param cumulative_lost: packets lost since the start (signed 24-bit: duplicates can make it
        negative), in packets.
    :param highest_seq: extended highest sequence number received (cycles << 16 | seq).
    :param jitter: interarrival jitter in RTP timestamp units.
    :param lsr: middle 32 bits of the NTP timestamp of the last SR received from the source
        (0 if none).
    :param dlsr: delay since that SR was received, in 1/65536 s.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def __post_init__(self) -> None:
        _check_int("ssrc", self.ssrc, 0, _U32)
        _check_int("fraction_lost", self.fraction_lost, 0, 255)
        _check_int("cumulative_lost", self.cumulative_lost, -(2**23), 2**23 - 1)
        for name in ("highest_seq", "jitter", "lsr", "dlsr"):
            _check_int(name, getattr(self, name), 0, _U32)

    @property
    def loss_fraction(self) -> float:
        """``fraction_lost`` as a ratio 0..1 (webrtc-stats ``fractionLost``)."""
        return self.fraction_lost / 256

    def _tuple(self) -> tuple[int, int, int, int, int, int, int]:
        return (self.ssrc, self.fraction_lost, self.cumulative_lost, self.highest_seq,
                self.jitter, self.lsr, self.dlsr)


def _check_blocks(reports: tuple[ReportBlock, ...], extension: bytes) -> None:
    if len(reports) > _rtcp.MAX_COUNT:
        raise ValueError(f"at most {_rtcp.MAX_COUNT} report blocks per packet, got {len(reports)}")
    for r in reports:
        if not isinstance(r, ReportBlock):
            raise TypeError(f"reports must be ReportBlock, got {type(r).__name__}")
    _check_bytes("extension", extension)
    if len(extension) % 4:
        raise ValueError(f"extension must be a multiple of 4 bytes, got {len(extension)}")


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 section 6.4.1).

    :param ssrc: the sender.
    :param ntp_timestamp: wallclock at sending, 64-bit NTP (32.32 s since 1900).
    :param rtp_timestamp: the same instant in the stream's RTP clock.
    :param packet_count: RTP packets sent so far.
    :param octet_count: RTP payload bytes sent so far.
    :param reports: up to 31 report blocks.
    :param extension: profile-specific extension bytes (a multiple of 4).
    """

    packet_type: ClassVar[int] = RTCP_SR
    ssrc: int
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reports", tuple(self.reports))
        _check_int("ssrc", self.ssrc, 0, _U32)
        _check_int("ntp_timestamp", self.ntp_timestamp, 0, 2**64 - 1)
        for name in ("rtp_timestamp", "packet_count", "octet_count"):
            _check_int(name, getattr(self, name), 0, _U32)
        _check_blocks(self.reports, self.extension)

    def __bytes__(self) -> bytes:
        return _rtcp.write_sr(self.ssrc, self.ntp_timestamp, self.rtp_timestamp,
                              self.packet_count, self.octet_count,
                              [r._tuple() for r in self.reports], self.extension)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 section 6.4.2).

    :param ssrc: the packet sender.
    :param reports: up to 31 report blocks.
    :param extension: profile-specific extension bytes (a multiple of 4).
    """

    packet_type: ClassVar[int] = RTCP_RR
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reports", tuple(self.reports))
        _check_int("ssrc", self.ssrc, 0, _U32)
        _check_blocks(self.reports, self.extension)

    def __bytes__(self) -> bytes:
        return _rtcp.write_rr(self.ssrc, [r._tuple() for r in self.reports], self.extension)


# -- SDES -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item: ``type`` (an :class:`SdesType` or any 1..255) and up to 255 bytes of
    ``value`` (UTF-8 text for the standard types; kept as bytes)."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        _check_int("type", self.type, 1, 255)
        _check_bytes("value", self.value)
        if len(self.value) > 255:
            raise ValueError(f"SDES item value is at most 255 bytes, got {len(self.value)}")


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items of one source (``items`` may be empty)."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        _check_int("ssrc", self.ssrc, 0, _U32)
        for it in self.items:
            if not isinstance(it, SdesItem):
                raise TypeError(f"items must be SdesItem, got {type(it).__name__}")

    @property
    def cname(self) -> str | None:
        """The first CNAME item decoded as UTF-8 (invalid bytes replaced), or None."""
        for it in self.items:
            if it.type == SdesType.CNAME:
                return it.value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 section 6.5): up to 31 chunks."""

    packet_type: ClassVar[int] = RTCP_SDES
    chunks: tuple[SdesChunk, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", tuple(self.chunks))
        if len(self.chunks) > _rtcp.MAX_COUNT:
            raise ValueError(f"at most {_rtcp.MAX_COUNT} SDES chunks, got {len(self.chunks)}")
        for c in self.chunks:
            if not isinstance(c, SdesChunk):
                raise TypeError(f"chunks must be SdesChunk, got {type(c).__name__}")

    @classmethod
    def cname(cls, ssrc: int, cname: str) -> SourceDescription:
        """One chunk with one CNAME item (UTF-8, at most 255 bytes)."""
        return cls((SdesChunk(ssrc, (SdesItem(SdesType.CNAME, cname.encode("utf-8")),)),))

    def cnames(self) -> dict[int, str]:
        """SSRC -> CNAME for every chunk that has one."""
        return {c.ssrc: n for c in self.chunks if (n := c.cname) is not None}

    def __bytes__(self) -> bytes:
        items: list[tuple[int, int, int, bytes]] = []
        for i, c in enumerate(self.chunks):
            if c.items:
                items.extend((i, c.ssrc, int(it.type), it.value) for it in c.items)
            else:
                items.append((i, c.ssrc, 0, b""))
        return _rtcp.write_sdes(items)


# -- BYE, APP ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (RFC 3550 section 6.6): up to 31 SSRCs leaving, with an optional ``reason``
    (up to 255 bytes of UTF-8; ``None`` = no reason field, ``b""`` = an empty one)."""

    packet_type: ClassVar[int] = RTCP_BYE
    ssrcs: tuple[int, ...] = ()
    reason: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ssrcs", tuple(self.ssrcs))
        if len(self.ssrcs) > _rtcp.MAX_COUNT:
            raise ValueError(f"at most {_rtcp.MAX_COUNT} SSRCs per BYE, got {len(self.ssrcs)}")
        _check_u32s("ssrcs", self.ssrcs)
        if self.reason is not None:
            _check_bytes("reason", self.reason)
            if len(self.reason) > 255:
                raise ValueError(f"BYE reason is at most 255 bytes, got {len(self.reason)}")

    def __bytes__(self) -> bytes:
        return _rtcp.write_bye(list(self.ssrcs), self.reason)


@dataclass(frozen=True, slots=True)
class App:
    """APP (RFC 3550 section 6.7): ``subtype`` 0..31, a 4-byte ``name``, ``data`` (a multiple
    of 4 bytes)."""

    packet_type: ClassVar[int] = RTCP_APP
    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_int("subtype", self.subtype, 0, 31)
        _check_int("ssrc", self.ssrc, 0, _U32)
        _check_bytes("name", self.name)
        _check_bytes("data", self.data)
        if len(self.name) != 4:
            raise ValueError(f"APP name must be 4 bytes, got {len(self.name)}")
        if len(self.data) % 4:
            raise ValueError(f"APP data must be a multiple of 4 bytes, got {len(self.data)}")

    def __bytes__(self) -> bytes:
        return _rtcp.write_app(self.subtype, self.ssrc, self.name, self.data)


# -- feedback (RFC 4585, RFC 5104) ------------------------------------------------------------
def nack_items(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Generic NACK ``(PID, BLP)`` items for lost sequence numbers (0..65535).  Duplicates are
    dropped and the numbers ordered wrap-aware (relative to the first one given) so that
    neighbours share an item: ``[65534, 65535, 0, 1]`` gives one item."""
    lst = list(seqs)
    for s in lst:
        _check_int("sequence number", s, 0, 0xFFFF)
    if not lst:
        return []
    ref = lst[0]
    ordered = sorted(set(lst), key=lambda s: seq_diff(s, ref))
    return [(int(p), int(b)) for p, b in _rtcp.nack_pack(ordered)]


def nack_seqs(items: Iterable[tuple[int, int]]) -> list[int]:
    """The sequence numbers that generic NACK ``(PID, BLP)`` items report lost (PID, then
    PID+1+i for every set BLP bit i, mod 2**16)."""
    lst = list(items)
    for pid, blp in lst:
        _check_int("PID", pid, 0, 0xFFFF)
        _check_int("BLP", blp, 0, 0xFFFF)
    return [int(s) for s in _rtcp.nack_unpack(lst)]


@dataclass(frozen=True, slots=True)
class Nack:
    """Generic NACK (RFC 4585 section 6.2.1, RTPFB FMT 1).

    :param sender_ssrc: who sends the NACK.
    :param media_ssrc: the stream whose packets are missing.
    :param items: ``(PID, BLP)`` pairs; build them from sequence numbers with
        :meth:`from_lost`, read them back with :attr:`lost`.
    """

    packet_type: ClassVar[int] = RTCP_RTPFB
    fmt: ClassVar[int] = 1
    sender_ssrc: int
    media_ssrc: int
    items: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple((int(p), int(b)) for p, b in self.items))
        _check_int("sender_ssrc", self.sender_ssrc, 0, _U32)
        _check_int("media_ssrc", self.media_ssrc, 0, _U32)
        if not self.items:
            raise ValueError("a NACK needs at least one (PID, BLP) item")
        if len(self.items) > (_rtcp.MAX_PACKET - 12) // 4:
            raise ValueError(f"too many NACK items for one packet: {len(self.items)}")
        for pid, blp in self.items:
            _check_int("PID", pid, 0, 0xFFFF)
            _check_int("BLP", blp, 0, 0xFFFF)

    @classmethod
    def from_lost(cls, sender_ssrc: int, media_ssrc: int, seqs: Iterable[int]) -> Nack:
        """A NACK for the lost sequence numbers ``seqs`` (see :func:`nack_items`)."""
        return cls(sender_ssrc, media_ssrc, tuple(nack_items(seqs)))

    @property
    def lost(self) -> list[int]:
        """Every sequence number this NACK reports lost, in item order."""
        return [int(s) for s in _rtcp.nack_unpack(list(self.items))]

    def __bytes__(self) -> bytes:
        return _rtcp.write_nack(self.sender_ssrc, self.media_ssrc, list(self.items))


@dataclass(frozen=True, slots=True)
class Pli:
    """Picture loss indication (RFC 4585 section 6.3.1, PSFB FMT 1): asks ``media_ssrc`` for a
    keyframe."""

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 1
    sender_ssrc: int
    media_ssrc: int

    def __post_init__(self) -> None:
        _check_int("sender_ssrc", self.sender_ssrc, 0, _U32)
        _check_int("media_ssrc", self.media_ssrc, 0, _U32)

    def __bytes__(self) -> bytes:
        return _rtcp.write_pli(self.sender_ssrc, self.media_ssrc)


@dataclass(frozen=True, slots=True)
class FirEntry:
    """One FIR request: the media sender ``ssrc`` and the command sequence number ``seq_nr``
    (0..255, incremented for each new request, RFC 5104 section 4.3.1.1)."""

    ssrc: int
    seq_nr: int

    def __post_init__(self) -> None:
        _check_int("ssrc", self.ssrc, 0, _U32)
        _check_int("seq_nr", self.seq_nr, 0, 255)


@dataclass(frozen=True, slots=True)
class Fir:
    """Full intra request (RFC 5104 section 4.3.1, PSFB FMT 4).  ``media_ssrc`` of the header is
    unused and 0 by the RFC; the targets are in ``entries``."""

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 4
    sender_ssrc: int
    entries: tuple[FirEntry, ...]
    media_ssrc: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        _check_int("sender_ssrc", self.sender_ssrc, 0, _U32)
        _check_int("media_ssrc", self.media_ssrc, 0, _U32)
        if not self.entries:
            raise ValueError("a FIR needs at least one entry")
        for e in self.entries:
            if not isinstance(e, FirEntry):
                raise TypeError(f"entries must be FirEntry, got {type(e).__name__}")

    def __bytes__(self) -> bytes:
        return _rtcp.write_fir(self.sender_ssrc, self.media_ssrc,
                               [(e.ssrc, e.seq_nr) for e in self.entries])


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03, PSFB FMT 15):
    ``mantissa * 2**exponent`` bits per second for the streams ``ssrcs``.  The wire fields are
    kept as they are so that a parsed REMB serialises to the same bytes."""

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 15
    sender_ssrc: int
    exponent: int
    mantissa: int
    ssrcs: tuple[int, ...] = ()
    media_ssrc: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ssrcs", tuple(self.ssrcs))
        _check_int("sender_ssrc", self.sender_ssrc, 0, _U32)
        _check_int("media_ssrc", self.media_ssrc, 0, _U32)
        _check_int("exponent", self.exponent, 0, 63)
        _check_int("mantissa", self.mantissa, 0, 2**18 - 1)
        if len(self.ssrcs) > _rtcp.MAX_REMB_SSRCS:
            raise ValueError(f"at most {_rtcp.MAX_REMB_SSRCS} SSRCs per REMB")
        _check_u32s("ssrcs", self.ssrcs)

    @classmethod
    def from_bitrate(cls, sender_ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> Remb:
        """A REMB for ``bitrate`` (bits per second, >= 0) with the smallest exponent whose
        mantissa fits 18 bits (rounded down, as libwebrtc does)."""
        _check_int("bitrate", bitrate, 0, (2**18 - 1) << 63)
        exponent = max(0, bitrate.bit_length() - 18)
        return cls(sender_ssrc, exponent, bitrate >> exponent, tuple(ssrcs))

    @property
    def bitrate(self) -> int:
        """The estimate in bits per second."""
        return self.mantissa << self.exponent

    def __bytes__(self) -> bytes:
        return _rtcp.write_remb(self.sender_ssrc, self.media_ssrc, self.exponent,
                                self.mantissa, list(self.ssrcs))


@dataclass(frozen=True, slots=True)
class FeedbackPacket:
    """A transport (205) or payload-specific (206) feedback message of a format not decoded
    here (TWCC, TMMBR, SLI, RPSI, other AFB, ...): header fields and the raw FCI."""

    packet_type: int
    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    def __post_init__(self) -> None:
        if self.packet_type not in (RTCP_RTPFB, RTCP_PSFB):
            raise ValueError(f"feedback packet type must be 205 or 206, got {self.packet_type}")
        _check_int("fmt", self.fmt, 0, 31)
        _check_int("sender_ssrc", self.sender_ssrc, 0, _U32)
        _check_int("media_ssrc", self.media_ssrc, 0, _U32)
        _check_bytes("fci", self.fci)
        if len(self.fci) % 4:
            raise ValueError(f"FCI must be a multiple of 4 bytes, got {len(self.fci)}")

    def __bytes__(self) -> bytes:
        body = self.sender_ssrc.to_bytes(4, "big") + self.media_ssrc.to_bytes(4, "big") + self.fci
        return _rtcp.write_raw(self.packet_type, self.fmt, body)


@dataclass(frozen=True, slots=True)
class UnknownPacket:
    """Any other RTCP packet type (192..223, e.g. XR = 207), kept as its 5-bit ``count`` field
    and raw ``body`` (everything after the 4-byte header, a multiple of 4 bytes)."""

    packet_type: int
    count: int
    body: bytes = b""

    def __post_init__(self) -> None:
        _check_int("packet_type", self.packet_type, 192, 223)
        _check_int("count", self.count, 0, 31)
        _check_bytes("body", self.body)
        if len(self.body) % 4:
            raise ValueError(f"body must be a multiple of 4 bytes, got {len(self.body)}")

    def __bytes__(self) -> bytes:
        return _rtcp.write_raw(self.packet_type, self.count, self.body)


RtcpPacket = Union[  # noqa: UP007  (a runtime alias, usable with isinstance)
    SenderReport,
    ReceiverReport,
    SourceDescription,
    Bye,
    App,
    Nack,
    Pli,
    Fir,
    Remb,
    FeedbackPacket,
    UnknownPacket,
]
_PACKET_TYPES = (SenderReport, ReceiverReport, SourceDescription, Bye, App, Nack, Pli, Fir, Remb,
                 FeedbackPacket, UnknownPacket)
_FEEDBACK_TYPES = (Nack, Pli, Fir, Remb, FeedbackPacket)


# -- compound packets -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RtcpCompound:
    """The packets of one compound (or reduced-size) RTCP packet, in wire order.

    :param packets: the packets.
    :param padding: padding octets of the last packet (``b""``: none; otherwise a multiple of 4
        whose last octet is its own length, RFC 3550 section 6.4.1).
    """

    packets: tuple[RtcpPacket, ...]
    padding: bytes = field(default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "packets", tuple(self.packets))
        for p in self.packets:
            if not isinstance(p, _PACKET_TYPES):
                raise TypeError(f"not an RTCP packet: {type(p).__name__}")
        _check_bytes("padding", self.padding)
        if self.padding:
            n = len(self.padding)
            if not self.packets or n % 4 or self.padding[-1] != n:
                raise ValueError("padding must be a multiple of 4 bytes ending in its own length "
                                 f"and follow a packet (got {n} bytes)")

    @property
    def reduced_size(self) -> bool:
        """True when the first packet is not SR or RR (an RFC 5506 reduced-size packet)."""
        return not self.packets or not isinstance(self.packets[0],
                                                  (SenderReport, ReceiverReport))

    def __iter__(self) -> Iterator[RtcpPacket]:
        return iter(self.packets)

    def __len__(self) -> int:
        return len(self.packets)

    def __bytes__(self) -> bytes:
        return serialize_rtcp(self.packets, self.padding)


def _new(cls: type[_T], *values: object) -> _T:
    """An instance of a slots dataclass from values the C parser already validated (skips
    ``__post_init__``: parsing stays a few microseconds per compound)."""
    return _rtcp.build(cls, cls.__slots__, values)  # type: ignore[attr-defined]


def _report(t: tuple[int, int, int, int, int, int, int]) -> ReportBlock:
    return _new(ReportBlock, *t)


def _from_tuple(t: tuple[Any, ...]) -> RtcpPacket:
    k = t[0]
    if k == _rtcp.KIND_SR:
        _, ssrc, ntp, rtp, pc, oc, blocks, ext = t
        return _new(SenderReport, ssrc, ntp, rtp, pc, oc, tuple(map(_report, blocks)), ext)
    if k == _rtcp.KIND_RR:
        return _new(ReceiverReport, t[1], tuple(map(_report, t[2])), t[3])
    if k == _rtcp.KIND_SDES:
        grouped: dict[int, tuple[int, list[SdesItem]]] = {}
        for chunk, ssrc, typ, text in t[1]:
            items = grouped.setdefault(chunk, (ssrc, []))[1]
            if typ:
                items.append(_new(SdesItem, typ, text))
        return _new(SourceDescription,
                    tuple(_new(SdesChunk, s, tuple(i)) for s, i in grouped.values()))
    if k == _rtcp.KIND_BYE:
        return _new(Bye, tuple(t[1]), t[2])
    if k == _rtcp.KIND_APP:
        return _new(App, t[1], t[2], t[3], t[4])
    if k == _rtcp.KIND_NACK:
        return _new(Nack, t[1], t[2], tuple(t[3]))
    if k == _rtcp.KIND_PLI:
        return _new(Pli, t[1], t[2])
    if k == _rtcp.KIND_FIR:
        return _new(Fir, t[1], tuple(_new(FirEntry, s, q) for s, q in t[3]), t[2])
    if k == _rtcp.KIND_REMB:
        return _new(Remb, t[1], t[3], t[4], tuple(t[5]), t[2])
    if k == _rtcp.KIND_FEEDBACK:
        return _new(FeedbackPacket, t[1], t[2], t[3], t[4], t[5])
    return _new(UnknownPacket, t[1], t[2], t[3])


def parse_rtcp(data: bytes | bytearray | memoryview, *,
               allow_reduced_size: bool = True) -> RtcpCompound:
    """Validate and decode one compound RTCP packet (and, when ``allow_reduced_size``, an
    RFC 5506 reduced-size packet that does not start with SR/RR).

    Raises :class:`~callpipe.errors.TransportError` (``RtcpParseError``) for malformed input,
    naming the problem and the byte offset of the packet at fault.
    """
    packets, padding = _rtcp.parse(data, allow_reduced_size)
    return _new(RtcpCompound, tuple(map(_from_tuple, packets)), padding)


def serialize_rtcp(packets: Iterable[RtcpPacket], padding: bytes = b"") -> bytes:
    """The wire form of ``packets`` in the given order, with ``padding`` (see
    :class:`RtcpCompound`) added to the last one."""
    parts = [bytes(p) for p in packets]
    if padding:
        if not parts:
            raise ValueError("padding needs a packet to pad")
        last = bytearray(parts[-1])
        words = int.from_bytes(last[2:4], "big") + len(padding) // 4
        if words > 0xFFFF:
            raise ValueError("padding makes the last packet longer than RTCP allows")
        last[0] |= 0x20
        last[2:4] = words.to_bytes(2, "big")
        parts[-1] = bytes(last) + padding
    return b"".join(parts)


def build_compound(report: SenderReport | ReceiverReport, sdes: SourceDescription,
                   *others: RtcpPacket) -> bytes:
    """A compound packet in RFC 3550 section 6.1 order: the SR or RR, then SDES (which should
    carry the sender's CNAME), then ``others`` (feedback, BYE last by convention)."""
    if not isinstance(report, (SenderReport, ReceiverReport)):
        raise TypeError("a compound RTCP packet starts with a SenderReport or ReceiverReport")
    if not isinstance(sdes, SourceDescription):
        raise TypeError("the second packet of a compound is a SourceDescription")
    return serialize_rtcp((report, sdes, *others))


def build_reduced_size(packet: RtcpPacket) -> bytes:
    """A reduced-size RTCP packet (RFC 5506): one feedback message alone."""
    if not isinstance(packet, _FEEDBACK_TYPES):
        raise TypeError(f"a reduced-size RTCP packet carries feedback, not {type(packet).__name__}")
    return bytes(packet)


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """RTP/RTCP demultiplexing on one port (RFC 5761 section 4): True when the second byte is
    an RTCP packet type (192..223) and the version is 2."""
    return len(data) >= 2 and (data[0] >> 6) == 2 and 192 <= data[1] <= 223
