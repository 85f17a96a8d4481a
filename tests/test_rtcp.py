"""RTCP parse/serialise (native, through callpipe.rtp.rtcp): hand-built packets from the RFC bit
diagrams byte for byte, real-world-shaped compounds, every malformed case with its error code,
truncation at every byte, hypothesis fuzzing (never crash; round trip or TransportError) and a
differential test against the pure-Python model in tests/models/rtcp_model.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.errors import TransportError
from callpipe.rtp import _rtcp
from callpipe.rtp.rtcp import (
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

sys.path.insert(0, str(Path(__file__).parent))
from models import rtcp_model as model  # noqa: E402


def h(*words: str) -> bytes:
    """Bytes from hex words (spaces ignored), one diagram row per argument."""
    return bytes.fromhex("".join(w.replace(" ", "") for w in words))


# -- hand-built packets ----------------------------------------------------------------------
# SR (RFC 3550 6.4.1) + SDES (6.5), written from the bit diagrams:
SR_SDES = h(
    "81 c8 00 0c",  # V=2 P=0 RC=1 | PT=200 | length=12 (52 bytes)
    "11 22 33 44",  # SSRC of sender
    "e8 4e 3f 00",  # NTP timestamp, most significant word
    "80 00 00 00",  # NTP timestamp, least significant word (.5 s)
    "00 01 5f 90",  # RTP timestamp 90000
    "00 00 00 64",  # sender's packet count 100
    "00 01 86 a0",  # sender's octet count 100000
    "aa bb cc dd",  # SSRC_1
    "40 ff ff fe",  # fraction lost 64/256 | cumulative lost -2 (24-bit two's complement)
    "00 01 00 05",  # extended highest seq: 1 cycle, seq 5
    "00 00 01 2c",  # interarrival jitter 300
    "3f 00 80 00",  # LSR
    "00 01 80 00",  # DLSR 1.5 s (in 1/65536 s)
    "81 ca 00 03",  # V=2 P=0 SC=1 | PT=202 | length=3 (16 bytes)
    "11 22 33 44",  # SSRC
    "01 04 68 6f",  # CNAME, length 4, "ho"
    "73 74 00 00",  # "st", END, one null to the 32-bit boundary
)
SR_SDES_OBJ = RtcpCompound((
    SenderReport(0x11223344, 0xE84E3F00_80000000, 90000, 100, 100000,
                 (ReportBlock(0xAABBCCDD, 64, -2, 0x10005, 300, 0x3F008000, 0x18000),)),
    SourceDescription.cname(0x11223344, "host"),
))

# What a browser receiver sends: RR + SDES CNAME + REMB in one compound.
RR_SDES_REMB = h(
    "81 c9 00 07",  # RR, RC=1, length 7 (32 bytes)
    "00 00 00 01",  # SSRC of packet sender
    "12 34 56 78",  # SSRC_1
    "05 00 00 10",  # fraction 5/256, cumulative 16
    "00 01 a2 b3",  # extended highest seq
    "00 00 02 58",  # jitter 600
    "8c 3e 1d 20",  # LSR
    "00 00 a0 00",  # DLSR 0.625 s
    "81 ca 00 06",  # SDES, SC=1, length 6 (28 bytes)
    "00 00 00 01",  # SSRC
    "01 10 71 71",  # CNAME, length 16, "qq"
    "79 6f 4b 6c 59 71 44 50 73 79 41 5a 37 66",  # "yoKlYqDPsyAZ7f"
    "00 00",        # END + one null
    "8f ce 00 05",  # PSFB, FMT=15 (AFB), length 5 (24 bytes)
    "00 00 00 01",  # SSRC of packet sender
    "00 00 00 00",  # SSRC of media source (unused: 0)
    "52 45 4d 42",  # "REMB"
    "01 0b d0 90",  # num SSRC 1 | exp 2 | mantissa 0x3d090 = 250000 -> 1 Mbit/s
    "12 34 56 78",  # SSRC feedback
)
RR_SDES_REMB_OBJ = RtcpCompound((
    ReceiverReport(1, (ReportBlock(0x12345678, 5, 16, 0x1A2B3, 600, 0x8C3E1D20, 0xA000),)),
    SourceDescription.cname(1, "qqyoKlYqDPsyAZ7f"),
    Remb(1, 2, 250000, (0x12345678,)),
))

SINGLE = [
    # BYE (6.6) with reason "closed" padded to the boundary
    (h("81 cb 00 03", "11 22 33 44", "06 63 6c 6f", "73 65 64 00"),
     Bye((0x11223344,), b"closed")),
    # BYE with no reason and two SSRCs
    (h("82 cb 00 02", "00 00 00 01", "00 00 00 02"), Bye((1, 2))),
    # generic NACK (RFC 4585 6.2.1): PID 65534, BLP 0b101 -> 65534, 65535, 1
    (h("81 cd 00 03", "00 00 00 01", "12 34 56 78", "ff fe 00 05"),
     Nack(1, 0x12345678, ((65534, 5),))),
    # PLI (6.3.1): length 2, no FCI
    (h("81 ce 00 02", "00 00 00 01", "12 34 56 78"), Pli(1, 0x12345678)),
    # FIR (RFC 5104 4.3.1): media SSRC 0, entry SSRC + seq nr 7 + reserved 0
    (h("84 ce 00 04", "00 00 00 01", "00 00 00 00", "12 34 56 78", "07 00 00 00"),
     Fir(1, (FirEntry(0x12345678, 7),))),
    # APP (6.7) subtype 3, name "TEST", 4 bytes of data
    (h("83 cc 00 03", "00 00 00 05", "54 45 53 54", "de ad be ef"),
     App(3, 5, b"TEST", h("de ad be ef"))),
    # transport-wide CC feedback (RTPFB FMT 15): kept as raw FCI
    (h("8f cd 00 03", "00 00 00 01", "00 00 00 02", "00 01 00 00"),
     FeedbackPacket(205, 15, 1, 2, h("00 01 00 00"))),
    # XR (207): kept raw
    (h("80 cf 00 01", "00 00 00 09"), UnknownPacket(207, 0, h("00 00 00 09"))),
    # RR with padding: P=1, 4 padding octets, the last holding the count
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 04"), None),
]


def test_sr_sdes_byte_exact() -> None:
    parsed = parse_rtcp(SR_SDES)
    assert parsed == SR_SDES_OBJ
    assert bytes(SR_SDES_OBJ) == SR_SDES
    assert build_compound(*SR_SDES_OBJ.packets) == SR_SDES
    sr = parsed.packets[0]
    assert isinstance(sr, SenderReport)
    assert ntp_to_unix(sr.ntp_timestamp) == pytest.approx(0xE84E3F00 + 0.5 - 2_208_988_800)
    assert sr.reports[0].loss_fraction == 0.25
    sdes = parsed.packets[1]
    assert isinstance(sdes, SourceDescription)
    assert sdes.cnames() == {0x11223344: "host"}
    assert not parsed.reduced_size


def test_browser_compound_byte_exact() -> None:
    parsed = parse_rtcp(RR_SDES_REMB)
    assert parsed == RR_SDES_REMB_OBJ
    assert bytes(RR_SDES_REMB_OBJ) == RR_SDES_REMB
    remb = parsed.packets[2]
    assert isinstance(remb, Remb) and remb.bitrate == 1_000_000
    assert Remb.from_bitrate(1, 1_000_000, (0x12345678,)) == remb


@pytest.mark.parametrize("data,obj", SINGLE)
def test_single_packets_byte_exact(data: bytes, obj: object) -> None:
    parsed = parse_rtcp(data)
    assert bytes(parsed) == data
    if obj is not None:
        assert parsed.packets == (obj,)
        assert bytes(obj) == data  # type: ignore[call-overload]
    else:
        assert parsed.padding == b"\0\0\0\x04"
        assert parsed.packets == (ReceiverReport(1),)
        assert serialize_rtcp([ReceiverReport(1)], b"\0\0\0\x04") == data


def test_reduced_size() -> None:
    nack = Nack.from_lost(1, 0x12345678, [65534, 65535, 1])
    data = build_reduced_size(nack)
    assert data == SINGLE[2][0]
    parsed = parse_rtcp(data)
    assert parsed.reduced_size and parsed.packets == (nack,)
    with pytest.raises(RtcpParseError) as e:
        parse_rtcp(data, allow_reduced_size=False)
    assert e.value.code == _rtcp.ERR_FIRST and "does not start with SR or RR" in str(e.value)
    with pytest.raises(TypeError):
        build_reduced_size(ReceiverReport(1))


def test_compound_with_everything_and_empty_chunks() -> None:
    sdes = SourceDescription((
        SdesChunk(1, (SdesItem(SdesType.CNAME, b"a@b"), SdesItem(SdesType.TOOL, b"callpipe"),
                      SdesItem(200, b"\x00\xff"))),
        SdesChunk(2),
        SdesChunk(2, (SdesItem(SdesType.NOTE, b""),)),  # same SSRC again: still two chunks
    ))
    packets = [SenderReport(1, 5, 6, 7, 8, (), h("01 02 03 04")), sdes,
               Nack.from_lost(1, 2, range(100, 140)), Pli(1, 2), Fir(1, (FirEntry(2, 255),)),
               Bye((1,), b"")]
    data = build_compound(*packets)  # type: ignore[arg-type]
    parsed = parse_rtcp(data)
    assert list(parsed) == packets and len(parsed) == 6
    assert bytes(parsed) == data


def test_largest_packets() -> None:
    sdes = SourceDescription(tuple(SdesChunk(i, (SdesItem(1, b"x"),)) for i in range(31)))
    assert len(bytes(sdes)) == 4 + 31 * 8
    full = SourceDescription(tuple(
        SdesChunk(i, tuple(SdesItem(t, bytes([t]) * 255) for t in range(1, 9))) for i in range(31)
    ))
    wire = bytes(full)
    assert parse_rtcp(wire).packets == (full,)
    empty = SourceDescription(tuple(SdesChunk(i) for i in range(31)))
    assert parse_rtcp(bytes(empty)).packets == (empty,)
    rr = ReceiverReport(1, tuple(ReportBlock(i, jitter=i) for i in range(31)), b"\1" * 400)
    assert parse_rtcp(bytes(rr)).packets == (rr,)
    bye = Bye(tuple(range(31)), b"r" * 255)
    assert parse_rtcp(bytes(bye)).packets == (bye,)
    # 3856 numbers 17 apart; ordered around 0, 65535 and 0 are neighbours: one item less
    nack = Nack.from_lost(1, 2, range(0, 65536, 17))
    assert len(nack.items) == 3855 and (65535, 1) in nack.items
    assert parse_rtcp(bytes(nack)).packets == (nack,)


# -- malformed input -------------------------------------------------------------------------
MALFORMED = [
    (b"", "EMPTY"),
    (h("80 c9 00"), "TRUNCATED"),
    (h("40 c9 00 01", "00 00 00 01"), "VERSION"),
    (h("c0 c9 00 01", "00 00 00 01"), "VERSION"),
    (h("80 64 00 01", "00 00 00 01"), "TYPE"),
    (h("80 e0 00 01", "00 00 00 01"), "TYPE"),  # 224
    (h("80 c9 00 02", "00 00 00 01"), "TRUNCATED"),  # length says 12 bytes, 8 given
    (h("81 c9 00 01", "00 00 00 01"), "LENGTH"),  # RC=1 without its block
    (h("81 c8 00 06", "00" * 24), "LENGTH"),  # SR RC=1 without its block
    (h("80 c8 00 05", "00" * 20), "LENGTH"),  # SR shorter than sender info
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 04", "80 c9 00 01", "00 00 00 01"), "PADDING"),
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 00"), "PADDING"),  # count 0
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 03"), "PADDING"),  # not a multiple of 4
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 0c"), "PADDING"),  # longer than the packet
    (h("a0 c9 00 02", "00 00 00 01", "00 00 00 08"), "LENGTH"),  # padding eats the SSRC
    (h("81 ca 00 02", "00 00 00 01", "01 02 0a 0b"), "SDES"),  # no END
    (h("81 ca 00 02", "00 00 00 01", "01 00 00 ff"), "SDES"),  # non-zero null padding
    (h("81 ca 00 03", "00 00 00 01", "01 01 61 00", "00 00 00 00"), "SDES"),  # after last chunk
    (h("81 ca 00 02", "00 00 00 01", "01 09 61 00"), "SDES"),  # item overruns
    (h("82 ca 00 02", "00 00 00 01", "00 00 00 00"), "SDES"),  # SC=2, one chunk
    (h("81 cb 00 02", "00 00 00 01", "05 61 62 00"), "BYE"),  # reason overruns
    (h("81 cb 00 02", "00 00 00 01", "02 61 62 01"), "BYE"),  # non-zero padding
    (h("81 cb 00 03", "00 00 00 01", "01 61 00 00", "00 00 00 00"), "BYE"),  # extra word
    (h("82 cb 00 01", "00 00 00 01"), "LENGTH"),  # SC=2, one SSRC
    (h("81 cd 00 02", "00 00 00 01", "00 00 00 02"), "FEEDBACK"),  # NACK without items
    (h("81 cd 00 01", "00 00 00 01"), "LENGTH"),  # feedback without media SSRC
    (h("81 ce 00 03", "00 00 00 01", "00 00 00 02", "00 00 00 00"), "FEEDBACK"),  # PLI + FCI
    (h("84 ce 00 03", "00 00 00 01", "00 00 00 00", "00 00 00 02"), "FEEDBACK"),  # FIR 4 B
    (h("84 ce 00 02", "00 00 00 01", "00 00 00 00"), "FEEDBACK"),  # FIR, no entry
    (h("84 ce 00 04", "00 00 00 01", "00 00 00 00", "00 00 00 02", "01 00 00 01"), "RESERVED"),
    (h("8f ce 00 05", "00 00 00 01", "00 00 00 00", "52 45 4d 42", "02 0b d0 90",
       "12 34 56 78"), "FEEDBACK"),  # REMB says 2 SSRCs, has 1
    (h("8f ce 00 03", "00 00 00 01", "00 00 00 00", "52 45 4d 42"), "FEEDBACK"),  # REMB cut
    (h("80 cc 00 01", "00 00 00 01"), "LENGTH"),  # APP without name
]


@pytest.mark.parametrize("data,code", MALFORMED)
def test_malformed(data: bytes, code: str) -> None:
    with pytest.raises(TransportError) as e:
        parse_rtcp(data)
    assert isinstance(e.value, RtcpParseError)
    assert e.value.code == getattr(_rtcp, "ERR_" + code)
    assert "RTCP" in str(e.value) and "at byte" in str(e.value)
    with pytest.raises(model.ModelError) as m:
        model.parse(data)
    assert m.value.code == code


def test_error_names_offset_of_bad_packet() -> None:
    bad = SR_SDES[:-4] + b"\0\0\0\x01"  # SDES null padding made non-zero
    with pytest.raises(RtcpParseError) as e:
        parse_rtcp(bad)
    assert (e.value.code, e.value.offset, e.value.index) == (_rtcp.ERR_SDES, 52, 1)
    assert "packet 1 at byte 52" in str(e.value)


@pytest.mark.parametrize("data", [SR_SDES, RR_SDES_REMB, *(d for d, _ in SINGLE)])
def test_truncation_at_every_byte(data: bytes) -> None:
    boundaries = set()
    pos = 0
    while pos < len(data):
        pos += 4 * (int.from_bytes(data[pos + 2 : pos + 4], "big") + 1)
        boundaries.add(pos)
    for n in range(len(data)):
        if n in boundaries:
            assert bytes(parse_rtcp(data[:n])) == data[:n]
        else:
            with pytest.raises(TransportError):
                parse_rtcp(data[:n])


@pytest.mark.parametrize("data", [SR_SDES, RR_SDES_REMB])
def test_wrong_length_fields_and_versions(data: bytes) -> None:
    for delta in (-2, -1, 1, 2):
        bad = bytearray(data)
        bad[2:4] = (int.from_bytes(data[2:4], "big") + delta).to_bytes(2, "big")
        with pytest.raises(TransportError):
            parse_rtcp(bytes(bad))
    for version in (0, 1, 3):
        for at in (0, 4 * (int.from_bytes(data[2:4], "big") + 1)):
            bad = bytearray(data)
            bad[at] = (bad[at] & 0x3F) | (version << 6)
            with pytest.raises(RtcpParseError) as e:
                parse_rtcp(bytes(bad))
            assert e.value.code == _rtcp.ERR_VERSION


def test_input_types() -> None:
    assert parse_rtcp(bytearray(SR_SDES)) == SR_SDES_OBJ
    assert parse_rtcp(memoryview(SR_SDES)) == SR_SDES_OBJ
    with pytest.raises(TypeError, match="bytes-like"):
        parse_rtcp("not bytes")  # type: ignore[arg-type]


# -- objects and their validation ------------------------------------------------------------
def test_object_validation() -> None:
    with pytest.raises(ValueError, match="cumulative_lost"):
        ReportBlock(1, cumulative_lost=2**23)
    with pytest.raises(ValueError, match="fraction_lost"):
        ReportBlock(1, fraction_lost=256)
    with pytest.raises(ValueError, match="ssrc"):
        ReceiverReport(2**32)
    with pytest.raises(ValueError, match="32"):
        ReceiverReport(1, tuple(ReportBlock(i) for i in range(32)))
    with pytest.raises(ValueError, match="multiple of 4"):
        SenderReport(1, extension=b"abc")
    with pytest.raises(ValueError, match="255"):
        SdesItem(1, b"x" * 256)
    with pytest.raises(ValueError, match="at least one"):
        Nack(1, 2, ())
    with pytest.raises(ValueError, match="BLP"):
        Nack(1, 2, ((1, 65536),))
    with pytest.raises(ValueError, match="seq_nr"):
        FirEntry(1, 256)
    with pytest.raises(ValueError, match="mantissa"):
        Remb(1, 0, 2**18)
    with pytest.raises(ValueError, match="4 bytes"):
        App(0, 1, b"abc")
    with pytest.raises(ValueError, match="padding"):
        RtcpCompound((ReceiverReport(1),), b"\0\0\0\x05")
    with pytest.raises(TypeError):
        ReportBlock("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build_compound(Pli(1, 2), SourceDescription())  # type: ignore[arg-type]


def test_cumulative_lost_extremes_and_remb_extremes() -> None:
    for lost in (-(2**23), -1, 0, 1, 2**23 - 1):
        rr = ReceiverReport(1, (ReportBlock(2, cumulative_lost=lost),))
        assert parse_rtcp(bytes(rr)).packets == (rr,)
    big = Remb.from_bitrate(1, (2**18 - 1) << 63, ())
    assert (big.exponent, big.mantissa) == (63, 2**18 - 1)
    assert parse_rtcp(bytes(big)).packets == (big,)
    assert Remb.from_bitrate(1, 300_001, ()).bitrate == 300_000  # rounds down to 18 bits


def test_is_rtcp_and_ntp() -> None:
    assert is_rtcp(SR_SDES) and is_rtcp(RR_SDES_REMB)
    rtp = h("80 60 00 01", "00 00 00 00", "00 00 00 01")  # PT 96
    rtp_marker = h("80 e0 00 01", "00 00 00 00", "00 00 00 01")  # PT 96 + marker = 224
    assert not is_rtcp(rtp) and not is_rtcp(rtp_marker) and not is_rtcp(b"\x80")
    t = 1_700_000_000.25
    ntp = ntp_from_unix(t)
    assert ntp >> 32 == 1_700_000_000 + 2_208_988_800 and ntp & 0xFFFFFFFF == 1 << 30
    assert ntp_to_unix(ntp) == t
    assert ntp_compact(0xE84E3F00_80000000) == 0x3F008000


# -- NACK items ---------------------------------------------------------------------------------
def test_nack_build_expand_at_wrap() -> None:
    seqs = [65530, 65531, 65535, 0, 1, 9, 10]
    items = nack_items(seqs)
    # PID 65530; 65531 -> bit 0; 65535 -> bit 4; 0 -> bit 5; 1 -> bit 6; 9 -> bit 14; 10 -> bit 15
    assert items == [(65530, 0b1100_0000_0111_0001)]
    assert nack_seqs(items) == seqs
    # any order in, wrap-aware order out (relative to the first given): 65535, 0, 3
    assert Nack.from_lost(1, 2, [3, 65535, 0, 3]).items == ((65535, 0b1001),)
    assert Nack.from_lost(1, 2, [65535, 3, 0]).lost == [65535, 0, 3]
    # the C packer keeps the order it is given: 3 then 65535 are 65532 apart -> two items
    assert _rtcp.nack_pack([3, 65535, 0]) == [(3, 0), (65535, 1)]


@pytest.mark.parametrize("blp", [0, 1, 0x8000, 0xFFFF, 0x5555, 0xAAAA, 0x0F0F])
@pytest.mark.parametrize("pid", [0, 1, 65519, 65520, 65535])
def test_nack_blp_patterns(pid: int, blp: int) -> None:
    seqs = nack_seqs([(pid, blp)])
    assert len(seqs) == 1 + bin(blp).count("1")
    assert seqs == model.nack_unpack([(pid, blp)])
    assert nack_items(seqs) == [(pid, blp)]
    data = bytes(Nack(1, 2, ((pid, blp),)))
    assert data[12:] == pid.to_bytes(2, "big") + blp.to_bytes(2, "big")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), st.sets(st.integers(0, 2000), max_size=300))
def test_nack_roundtrip_property(base: int, offsets: set[int]) -> None:
    seqs = [(base + o) % 65536 for o in sorted(offsets)]
    items = nack_items(seqs)
    assert nack_seqs(items) == seqs  # sorted wrap-aware from the first: order preserved
    assert [tuple(i) for i in _rtcp.nack_pack(seqs)] == model.nack_pack(seqs)
    assert len(items) <= len(seqs)
    for pid, _ in items:  # every item starts a run no closer than 17 to the previous PID
        assert pid in seqs
    if seqs:
        nack = Nack(1, 2, tuple(items))
        assert parse_rtcp(bytes(nack)).packets[0] == nack


# -- fuzzing ----------------------------------------------------------------------------------
U32 = st.integers(0, 2**32 - 1)
WORDS = st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4])
BLOCKS = st.builds(ReportBlock, U32, st.integers(0, 255), st.integers(-(2**23), 2**23 - 1),
                   U32, U32, U32, U32)
ITEMS = st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=20))
PACKETS = st.one_of(
    st.builds(SenderReport, U32, st.integers(0, 2**64 - 1), U32, U32, U32,
              st.lists(BLOCKS, max_size=3).map(tuple), WORDS),
    st.builds(ReceiverReport, U32, st.lists(BLOCKS, max_size=3).map(tuple), WORDS),
    st.builds(SourceDescription, st.lists(
        st.builds(SdesChunk, U32, st.lists(ITEMS, max_size=3).map(tuple)), max_size=3
    ).map(tuple)),
    st.builds(Bye, st.lists(U32, max_size=3).map(tuple), st.none() | st.binary(max_size=20)),
    st.builds(App, st.integers(0, 31), U32, st.binary(min_size=4, max_size=4), WORDS),
    st.builds(Nack, U32, U32, st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
                                       min_size=1, max_size=4).map(tuple)),
    st.builds(Pli, U32, U32),
    st.builds(Fir, U32, st.lists(st.builds(FirEntry, U32, st.integers(0, 255)), min_size=1,
                                 max_size=3).map(tuple), U32),
    st.builds(Remb, U32, st.integers(0, 63), st.integers(0, 2**18 - 1),
              st.lists(U32, max_size=3).map(tuple), U32),
    st.builds(FeedbackPacket, st.sampled_from([205, 206]), st.sampled_from([2, 3, 11, 15]), U32,
              U32, WORDS),
    st.builds(UnknownPacket, st.sampled_from([192, 195, 199, 207, 210, 223]),
              st.integers(0, 31), WORDS),
)
PADDING = st.sampled_from([b"", b"\0\0\0\x04", b"\x01\x02\x03\x04\0\0\0\x08"])


def _check_any(data: bytes) -> None:
    """The fuzz property: never crash; either TransportError, or a parse that re-serialises to
    the same bytes; and the pure-Python model agrees on the result or the error code."""
    try:
        native = _rtcp.parse(data, True)
    except RtcpParseError as e:
        with pytest.raises(model.ModelError) as m:
            model.parse(data)
        assert e.code == getattr(_rtcp, "ERR_" + m.value.code)
        with pytest.raises(TransportError):
            parse_rtcp(data)
        return
    assert model.parse(data) == native
    assert bytes(parse_rtcp(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _check_any(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PACKETS, min_size=1, max_size=4), PADDING, st.data())
def test_fuzz_structured_and_mutated(packets: list, padding: bytes, data: st.DataObject) -> None:
    wire = serialize_rtcp(packets, padding)
    parsed = parse_rtcp(wire)
    assert list(parsed) == packets and parsed.padding == padding
    assert bytes(parsed) == wire
    _check_any(wire)
    # mutate: flip bits, cut, splice
    buf = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] ^= data.draw(st.integers(1, 255))
    _check_any(bytes(buf))
    cut = data.draw(st.integers(0, len(wire)))
    _check_any(wire[:cut])
    _check_any(wire[:cut] + wire)
