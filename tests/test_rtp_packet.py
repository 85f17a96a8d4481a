"""RTP packets (RFC 3550) and header extensions (RFC 8285): byte-exact round trips of hand-built
packets, the RFC 8285 figures, every malformed case with its own message, typed extension
values, batch parsing, and hypothesis fuzz/differential tests against tests/models/rtp_model.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.errors import TransportError
from callpipe.rtp import _rtp
from callpipe.rtp.packet import (
    ABS_SEND_TIME_URI,
    AudioLevel,
    ExtensionIds,
    ExtensionValues,
    FrameMarking,
    HeaderExtension,
    RtpPacket,
    abs_send_time_from_us,
    abs_send_time_to_us,
    decode_abs_send_time,
    decode_audio_level,
    decode_extensions,
    decode_frame_marking,
    decode_transport_cc,
    encode_abs_send_time,
    encode_audio_level,
    encode_extensions,
    encode_frame_marking,
    encode_transport_cc,
    parse_many,
)

sys.path.insert(0, str(Path(__file__).parent))
from models import rtp_model as model  # noqa: E402

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A hand-built packet (RFC 3550 5.1 + RFC 8285 4.2 one-byte extension + padding):
#    0                   1                   2                   3
#    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#   |1 0|1|1|0 0 1 0|1| PT = 111    |      seq = 0xfffe             |  b2 ef ff fe
#   |                     timestamp = 0x00bc614e                    |  00 bc 61 4e
#   |                     SSRC = 0x12345678                         |  12 34 56 78
#   |                     CSRC 1 = 0x00000001                       |  00 00 00 01
#   |                     CSRC 2 = 0xffffffff                       |  ff ff ff ff
#   |        0xBEDE                 |        length = 2             |  be de 00 02
#   | ID=3  | L=2   | abs-send-time = 0x040000 (1.0 s)              |  32 04 00 00
#   | ID=5  | L=1   | transport-wide seq = 0x0102   |  0 (pad)      |  51 01 02 00
#   |  0xca         |  0xfe         |  0 (padding)  |  count = 2    |  ca fe 00 02
HAND = bytes.fromhex(
    "b2effffe" "00bc614e" "12345678" "00000001" "ffffffff" "bede0002" "32040000" "51010200"
    "cafe0002"
)


def test_hand_built_packet_parses_field_by_field() -> None:
    p = RtpPacket.parse(HAND)
    assert p.marker is True
    assert p.payload_type == 111
    assert p.sequence_number == 0xFFFE
    assert p.timestamp == 12345678
    assert p.ssrc == 0x12345678
    assert p.csrcs == (1, 0xFFFFFFFF)
    assert p.extension_profile == 0xBEDE and p.extension_form == "one-byte"
    assert p.extensions == (
        HeaderExtension(3, b"\x04\x00\x00"),
        HeaderExtension(5, b"\x01\x02"),
    )
    assert p.payload == b"\xca\xfe"
    assert p.padding == b"\x00\x02" and p.padding_size == 2
    assert p.header_size == 32 and len(p) == len(HAND)
    assert decode_abs_send_time(p.extension(3)) == 1 << 18
    assert abs_send_time_to_us(decode_abs_send_time(p.extension(3))) == 1_000_000
    assert decode_transport_cc(p.extension(5)) == 0x0102
    assert p.extension(4) is None
    assert p.serialize() == HAND and bytes(p) == HAND


def test_hand_built_packet_constructed_byte_for_byte() -> None:
    p = RtpPacket(
        111,
        0xFFFE,
        12345678,
        0x12345678,
        b"\xca\xfe",
        marker=True,
        csrcs=(1, 0xFFFFFFFF),
        extensions=[(3, encode_abs_send_time(1_000_000)), (5, encode_transport_cc(0x0102))],
        padding=2,
    )
    assert p.serialize() == HAND
    assert RtpPacket.parse(HAND) == p
    assert hash(RtpPacket.parse(HAND)) == hash(p)


def test_minimal_packet_and_buffer_types() -> None:
    raw = bytes.fromhex("80000001" "00000002" "00000003")
    for data in (raw, bytearray(raw), memoryview(raw)):
        p = RtpPacket.parse(data)
        assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (0, 1, 2, 3)
        assert p.payload == b"" and p.extension_profile is None and p.extensions == ()
        assert p.extension_form is None and p.extension(1) is None
    assert RtpPacket(0, 1, 2, 3).serialize() == raw


# RFC 8285 section 4.2 figure (one-byte form) and 4.3 figure (two-byte form) as packets:
#   |       0xBE    |    0xDE       |           length=3            |
#   |  ID   | L=0   |     data      |  ID   |  L=1  |   data...
#         ...data   |    0 (pad)    |    0 (pad)    |  ID   | L=3   |
#   |                          data                                 |
RFC8285_ONE = bytes.fromhex("90000001" "00000002" "00000003" "bede0003" "10aa21bb" "cc000033")
RFC8285_ONE += bytes.fromhex("01020304") + b"payload"
#   |       0x10    |    0x00       |           length=3            |
#   |      ID       |     L=0       |     ID        |     L=1       |
#   |       data    |    0 (pad)    |       ID      |      L=4      |
#   |                          data                                 |
RFC8285_TWO = bytes.fromhex("90000001" "00000002" "00000003" "10000003" "01000201" "dd000304")
RFC8285_TWO += bytes.fromhex("05060708") + b"payload"


def test_rfc8285_one_byte_figure() -> None:
    p = RtpPacket.parse(RFC8285_ONE)
    assert p.extensions == (
        HeaderExtension(1, b"\xaa"),
        HeaderExtension(2, b"\xbb\xcc"),
        HeaderExtension(3, b"\x01\x02\x03\x04"),
    )
    assert p.payload == b"payload"
    assert p.serialize() == RFC8285_ONE  # the inner padding is kept
    # rebuilt from its elements: packed, padding at the end instead
    rebuilt = RtpPacket(0, 1, 2, 3, b"payload", extensions=p.extensions)
    assert rebuilt.extension_data == bytes.fromhex("10aa21bbcc3301020304") + b"\x00\x00"
    assert RtpPacket.parse(rebuilt.serialize()).extensions == p.extensions


def test_rfc8285_two_byte_figure() -> None:
    p = RtpPacket.parse(RFC8285_TWO)
    assert p.extension_form == "two-byte"
    assert p.extensions == (
        HeaderExtension(1, b""),
        HeaderExtension(2, b"\xdd"),
        HeaderExtension(3, b"\x05\x06\x07\x08"),
    )
    assert p.serialize() == RFC8285_TWO
    rebuilt = RtpPacket(0, 1, 2, 3, b"payload", extensions=p.extensions)
    assert rebuilt.extension_form == "two-byte"  # an empty element needs the two-byte form
    assert rebuilt.extension_data == bytes.fromhex("0100" "0201dd" "030405060708" "00")


def test_extension_forms() -> None:
    small = {1: b"a", 14: b"x" * 16}
    assert RtpPacket(0, 0, 0, 0, extensions=small).extension_profile == 0xBEDE
    assert RtpPacket(0, 0, 0, 0, extensions={15: b"a"}).extension_profile == 0x1000
    assert RtpPacket(0, 0, 0, 0, extensions={1: b"x" * 17}).extension_profile == 0x1000
    forced = RtpPacket(0, 0, 0, 0, extensions=small, extension_form="two-byte")
    assert forced.extension_form == "two-byte" and forced.extensions == tuple(
        HeaderExtension(k, v) for k, v in small.items()
    )
    with pytest.raises(ValueError, match="one-byte"):
        RtpPacket(0, 0, 0, 0, extensions={15: b"a"}, extension_form="one-byte")
    with pytest.raises(ValueError, match="extension_form"):
        RtpPacket(0, 0, 0, 0, extensions=small, extension_form="three-byte")
    profile, block = encode_extensions([HeaderExtension(2, b"hi")])
    assert (profile, block) == (0xBEDE, b"\x21hi\x00")
    assert decode_extensions(profile, block) == (HeaderExtension(2, b"hi"),)
    assert decode_extensions(0x1234, b"\x01\x02\x03\x04") == ()  # another profile: opaque
    # two-byte "appbits" are kept
    p = RtpPacket(0, 0, 0, 0, extension_profile=0x100A, extension_data=b"\x07\x01\x42\x00")
    assert p.extensions == (HeaderExtension(7, b"\x42"),)
    assert RtpPacket.parse(p.serialize()).extension_profile == 0x100A


def test_one_byte_id_15_stops_processing() -> None:
    block = bytes([0x10, 0xAA, 0xF3, 0x20, 0xBB, 0x00, 0x00, 0x00])
    p = RtpPacket(0, 0, 0, 0, extension_profile=0xBEDE, extension_data=block)
    assert p.extensions == (HeaderExtension(1, b"\xaa"),)
    assert p.extension(2) is None


def _pkt(first: int, rest: str) -> bytes:
    return bytes([first]) + bytes.fromhex(rest)


# every malformed case: (bytes, status name, words the message must contain)
MALFORMED = [
    (b"", "TRUNCATED", "shorter than the 12-byte"),
    (bytes.fromhex("80000001000000020000"), "TRUNCATED", "shorter than the 12-byte"),
    (_pkt(0x40, "00000100000002 00000003".replace(" ", "")), "VERSION", "version"),
    (_pkt(0x00, "00000100000002 00000003".replace(" ", "")), "VERSION", "version"),
    (_pkt(0xC0, "00000100000002 00000003".replace(" ", "")), "VERSION", "version"),
    (_pkt(0x82, "0000010000000200000003" "00000004"), "CSRC", "CSRC"),
    (_pkt(0x90, "0000010000000200000003" "bede"), "EXT_HEADER", "X bit"),
    (_pkt(0x90, "0000010000000200000003" "bede0002" "00000000"), "EXT_LENGTH", "length"),
    (_pkt(0x90, "0000010000000200000003" "bede0001" "13aabb00"), "EXT_ELEMENT", "element"),
    (_pkt(0x90, "0000010000000200000003" "bede0001" "05000000"), "EXT_ID", "id 0"),
    (_pkt(0x90, "0000010000000200000003" "10000001" "0103aabb"), "EXT_ELEMENT", "element"),
    (_pkt(0x90, "0000010000000200000003" "10000001" "00000001"), "EXT_ELEMENT", "element"),
    (_pkt(0xA0, "0000010000000200000003" "aabbcc00"), "PADDING_ZERO", "count octet is 0"),
    (_pkt(0xA0, "0000010000000200000003" "aabbcc05"), "PADDING_LENGTH", "padding count"),
    (_pkt(0xA0, "0000010000000200000003"), "PADDING_LENGTH", "padding count"),
    (_pkt(0xB0, "0000010000000200000003" "bede0000" "03"), "PADDING_LENGTH", "padding count"),
]


@pytest.mark.parametrize(("data", "code", "words"), MALFORMED)
def test_malformed_packets_raise_their_own_error(data: bytes, code: str, words: str) -> None:
    with pytest.raises(TransportError, match=words):
        RtpPacket.parse(data)
    assert _rtp.ERROR_NAMES[_rtp.check(data)] == code
    assert model.parse(data) == code


def test_malformed_messages_are_distinct() -> None:
    messages = {}
    for data, code, _ in MALFORMED:
        with pytest.raises(TransportError) as e:
            RtpPacket.parse(data)
        messages.setdefault(code, set()).add(str(e.value))
    assert all(len(m) == 1 for m in messages.values())
    assert len({next(iter(m)) for m in messages.values()}) == len(messages)


def test_edge_cases_that_parse() -> None:
    # padding covering the whole payload; id 15 with garbage after; empty X block
    for data in (
        _pkt(0xA0, "0000010000000200000003" "00000004"),
        _pkt(0x90, "0000010000000200000003" "bede0001" "f5ffffff"),
        _pkt(0x90, "0000010000000200000003" "bede0000"),
        _pkt(0x9F, "00000100000002" "00000003" + "00000000" * 15 + "abcd0000"),
    ):
        assert RtpPacket.parse(data).serialize() == data


def test_constructor_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="payload_type"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError, match="sequence_number"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(ValueError, match="timestamp"):
        RtpPacket(0, 0, 1 << 32, 0)
    with pytest.raises(ValueError, match="ssrc"):
        RtpPacket(0, 0, 0, -1)
    with pytest.raises(TypeError, match="payload_type"):
        RtpPacket("96", 0, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="15 CSRCs"):
        RtpPacket(0, 0, 0, 0, csrcs=range(16))
    with pytest.raises(ValueError, match="padding"):
        RtpPacket(0, 0, 0, 0, padding=256)
    with pytest.raises(ValueError, match="padding"):
        RtpPacket(0, 0, 0, 0, padding=b"\x00\x03")
    with pytest.raises(ValueError, match="multiple of 4"):
        RtpPacket(0, 0, 0, 0, extension_profile=0xBEDE, extension_data=b"\x00")
    with pytest.raises(ValueError, match="element"):
        RtpPacket(0, 0, 0, 0, extension_profile=0xBEDE, extension_data=b"\x1f\x00\x00\x00")
    with pytest.raises(ValueError, match="either"):
        RtpPacket(0, 0, 0, 0, extensions={1: b"a"}, extension_profile=0xBEDE, extension_data=b"")
    with pytest.raises(ValueError, match="1..255"):
        RtpPacket(0, 0, 0, 0, extensions={0: b"a"})
    with pytest.raises(ValueError, match="at most 255"):
        RtpPacket(0, 0, 0, 0, extensions={1: bytes(256)})
    with pytest.raises(TypeError, match="pairs"):
        RtpPacket(0, 0, 0, 0, extensions=[1, 2])
    with pytest.raises(TypeError, match="bytes-like"):
        RtpPacket.parse("not bytes")  # type: ignore[arg-type]


def test_padding_octets_are_kept() -> None:
    data = _pkt(0xA0, "0000010000000200000003" "aa" "0102" "03")
    p = RtpPacket.parse(data)
    assert p.payload == b"\xaa" and p.padding == b"\x01\x02\x03"
    assert p.serialize() == data
    assert p.replace(padding=3).serialize() == data[:-3] + b"\x00\x00\x03"


def test_replace() -> None:
    p = RtpPacket.parse(HAND)
    q = p.replace(sequence_number=7, marker=False)
    assert (q.sequence_number, q.marker, q.extensions) == (7, False, p.extensions)
    r = p.replace(extensions={9: b"z"})
    assert r.extensions == (HeaderExtension(9, b"z"),)
    assert r.replace(extensions=None).extension_profile is None
    assert "seq=65534" in repr(p)


def test_typed_values() -> None:
    assert abs_send_time_from_us(0) == 0
    assert abs_send_time_from_us(1_500_000) == 0x060000
    assert abs_send_time_from_us(64_000_000 + 250_000) == abs_send_time_from_us(250_000)
    assert encode_abs_send_time(1_000_000) == b"\x04\x00\x00"
    for v in (0, 1, 0x3FFFF, 0x40000, 0xABCDEF, 0xFFFFFF):
        assert abs_send_time_from_us(abs_send_time_to_us(v)) == v
    with pytest.raises(TransportError, match="3 bytes"):
        decode_abs_send_time(b"\x01\x02")
    assert decode_transport_cc(encode_transport_cc(65535)) == 65535
    with pytest.raises(TransportError, match="2 bytes"):
        decode_transport_cc(b"\x01")
    with pytest.raises(ValueError):
        encode_transport_cc(65536)
    assert encode_audio_level(True, 42) == b"\xaa"
    assert decode_audio_level(b"\xaa") == AudioLevel(True, 42)
    assert decode_audio_level(b"\x7f") == AudioLevel(False, 127)
    with pytest.raises(TransportError, match="1 byte"):
        decode_audio_level(b"\x00\x00")
    with pytest.raises(ValueError):
        encode_audio_level(False, 128)
    fm = FrameMarking(True, False, True, False, False, 0)
    assert encode_frame_marking(fm) == b"\xa0"
    assert decode_frame_marking(b"\xa0") == fm
    scalable = FrameMarking(False, True, False, True, True, 5, 3, 200)
    assert encode_frame_marking(scalable) == bytes([0x5D, 3, 200])
    assert decode_frame_marking(bytes([0x5D, 3, 200])) == scalable
    assert decode_frame_marking(bytes([0x5D, 3])) == scalable._replace(tl0_pic_idx=None)
    with pytest.raises(TransportError, match="1 to 3 bytes"):
        decode_frame_marking(b"")


def test_extension_ids_read_and_write() -> None:
    ids = ExtensionIds(abs_send_time=3, transport_cc=5, audio_level=1, frame_marking=7)
    elems = ids.elements(
        send_time_us=2_000_000,
        transport_cc=9,
        audio_level=AudioLevel(True, 30),
        frame_marking=FrameMarking(True, True, True, False, False, 0),
    )
    p = RtpPacket.parse(RtpPacket(96, 1, 2, 3, b"x", extensions=elems).serialize())
    assert ids.read(p) == ExtensionValues(
        0x080000, 9, AudioLevel(True, 30), FrameMarking(True, True, True, False, False, 0)
    )
    assert ExtensionIds().read(p) == ExtensionValues()
    assert ids.read(RtpPacket(0, 0, 0, 0)) == ExtensionValues()
    bad = RtpPacket(0, 0, 0, 0, extensions={3: b"\x01"})
    with pytest.raises(TransportError, match="abs-send-time"):
        ids.read(bad)
    with pytest.raises(ValueError, match="share"):
        ExtensionIds(abs_send_time=3, transport_cc=3)
    with pytest.raises(ValueError, match="1..255"):
        ExtensionIds(audio_level=0)
    assert ABS_SEND_TIME_URI.endswith("abs-send-time")


def test_parse_many() -> None:
    packets = [RtpPacket(96, i, i * 10, 42, bytes([i]) * i).serialize() for i in range(20)]
    parsed = parse_many(packets)
    assert [p.sequence_number for p in parsed] == list(range(20))
    assert parsed == [RtpPacket.parse(b) for b in packets]
    mixed = [packets[0], b"junk", bytearray(packets[1]), memoryview(packets[2])]
    with pytest.raises(TransportError, match="packet 1: RTP packet shorter"):
        parse_many(mixed)
    assert [p.sequence_number for p in parse_many(mixed, skip_invalid=True)] == [0, 1, 2]
    assert parse_many([]) == []
    with pytest.raises(TypeError, match="packet 0"):
        parse_many([3])


# -- hypothesis: fuzz and differential ------------------------------------------------------
@FUZZ
@given(st.binary(max_size=120))
def test_fuzz_arbitrary_bytes_parse_identically_or_raise(data: bytes) -> None:
    want = model.parse(data)
    try:
        p = RtpPacket.parse(data)
    except TransportError:
        assert isinstance(want, str)
        assert _rtp.ERROR_NAMES[_rtp.check(data)] == want
        return
    assert p.serialize() == data
    assert not isinstance(want, str)
    assert (p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        want.marker,
        want.payload_type,
        want.sequence_number,
        want.timestamp,
        want.ssrc,
    )
    assert (p.csrcs, p.extension_profile, p.extension_data, p.payload, p.padding) == (
        want.csrcs,
        want.extension_profile,
        want.extension_data,
        want.payload,
        want.padding,
    )
    if p.extension_profile is not None:
        assert [tuple(e) for e in p.extensions] == model.ext_elements(
            p.extension_profile, p.extension_data
        )


# version-2 headers with bits that exercise the X / P / CC paths much more often
@st.composite
def v2_packets(draw: st.DrawFn) -> bytes:
    first = 0x80 | draw(st.integers(0, 0x3F))
    body = draw(st.binary(min_size=11, max_size=100))
    if first & 0x10 and draw(st.booleans()):
        cc = first & 0x0F
        at = 11 + 4 * cc
        if len(body) >= at + 2:
            prof = draw(st.sampled_from([b"\xbe\xde", b"\x10\x00", b"\x10\x0f", b"\x12\x34"]))
            body = body[:at] + prof + body[at + 2 :]
    return bytes([first]) + body


@FUZZ
@given(v2_packets())
def test_fuzz_version2_packets_against_the_model(data: bytes) -> None:
    want = model.parse(data)
    code = _rtp.ERROR_NAMES[_rtp.check(data)]
    if isinstance(want, str):
        assert code == want
        with pytest.raises(TransportError):
            RtpPacket.parse(data)
    else:
        assert code == "OK"
        assert RtpPacket.parse(data).serialize() == model.serialize(want) == data


elements_one = st.lists(
    st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=6
)
elements_two = st.lists(
    st.tuples(st.integers(1, 255), st.binary(min_size=0, max_size=40)), max_size=6
)


@FUZZ
@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.one_of(
        st.none(),
        elements_one.map(lambda e: ("one-byte", e)),
        elements_two.map(lambda e: ("two-byte", e)),
    ),
    st.binary(max_size=60),
    st.integers(0, 255),
    st.booleans(),
)
def test_fuzz_constructed_packets_match_the_model(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    csrcs: list[int],
    ext: tuple[str, list[tuple[int, bytes]]] | None,
    payload: bytes,
    padding: int,
    marker: bool,
) -> None:
    profile, block = None, b""
    kwargs: dict[str, object] = {}
    if ext is not None and ext[1]:
        profile, block = model.build_block(ext[1], ext[0])
        kwargs = {"extensions": ext[1], "extension_form": ext[0]}
    want = model.ModelPacket(
        marker,
        pt,
        seq,
        ts,
        ssrc,
        tuple(csrcs),
        profile,
        block,
        payload,
        (bytes(padding - 1) + bytes([padding])) if padding else b"",
    )
    p = RtpPacket(
        pt, seq, ts, ssrc, payload, marker=marker, csrcs=csrcs, padding=padding, **kwargs
    )
    wire = p.serialize()
    assert wire == model.serialize(want)
    back = RtpPacket.parse(wire)
    assert back == p
    assert [tuple(e) for e in back.extensions] == (ext[1] if ext else [])


@FUZZ
@given(st.sampled_from([0xBEDE, 0x1000, 0x1005, 0x0001]), st.binary(max_size=64))
def test_fuzz_extension_blocks(profile: int, block: bytes) -> None:
    want = model.ext_elements(profile, block)
    try:
        got = decode_extensions(profile, block)
    except TransportError:
        assert isinstance(want, str)
        return
    assert [tuple(e) for e in got] == want


@FUZZ
@given(st.binary(max_size=5))
def test_fuzz_typed_value_decoders(data: bytes) -> None:
    for decode, sizes in (
        (decode_abs_send_time, {3}),
        (decode_transport_cc, {2}),
        (decode_audio_level, {1}),
        (decode_frame_marking, {1, 2, 3}),
    ):
        if len(data) in sizes:
            decode(data)
        else:
            with pytest.raises(TransportError):
                decode(data)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_fuzz_parse_many_skips_exactly_the_invalid(packets: list[bytes]) -> None:
    good = [b for b in packets if not isinstance(model.parse(b), str)]
    assert [p.serialize() for p in parse_many(packets, skip_invalid=True)] == good
