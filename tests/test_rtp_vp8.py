"""VP8 over RTP (RFC 7741): descriptor bytes, packetizer, frame assembler (loss, reordering,
duplicates, garbage, wraps), real libvpx frames through the whole chain, SFrame-encrypted
frames, and fuzz/differential tests against tests/models/rtp_model.py.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.errors import ClosedError, TransportError
from callpipe.rtp import _rtp
from callpipe.rtp.packet import FrameMarking, RtpPacket, decode_transport_cc
from callpipe.rtp.vp8 import (
    AssembledFrame,
    Vp8Descriptor,
    Vp8FrameAssembler,
    Vp8Packetizer,
    depacketize,
    packetize,
)

sys.path.insert(0, str(Path(__file__).parent))
from models import rtp_model as model  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# RFC 7741 section 4.2 descriptor, every optional field present:
#          0 1 2 3 4 5 6 7
#         +-+-+-+-+-+-+-+-+
#         |1|0|1|1|0|0 0 0|  X=1 N=1 S=1 PID=0                 0xb0
#    X:   |1|1|1|1|0 0 0 0|  I L T K                           0xf0
#    I:   |1|0 1 0 1 0 1 1|  M=1, PictureID high 7 bits        0xab
#         |1 1 0 0 1 1 0 1|  PictureID low 8 bits (0x2bcd)     0xcd
#    L:   |0 0 0 0 0 1 0 1|  TL0PICIDX = 5                     0x05
#    T/K: |1 0|1|0 0 1 1 1|  TID=2 Y=1 KEYIDX=7                0xa7
FULL = bytes([0xB0, 0xF0, 0xAB, 0xCD, 0x05, 0xA7])


def test_hand_built_descriptor() -> None:
    d = Vp8Descriptor.parse(FULL + b"\x9d")
    assert (d.start, d.non_reference, d.partition_id) == (True, True, 0)
    assert (d.picture_id, d.long_picture_id) == (0x2BCD, True)
    assert (d.tl0_pic_idx, d.temporal_id, d.layer_sync, d.key_idx) == (5, 2, True, 7)
    assert d.size == 6 and d.serialize() == FULL
    built = Vp8Descriptor(
        start=True,
        non_reference=True,
        picture_id=0x2BCD,
        tl0_pic_idx=5,
        temporal_id=2,
        layer_sync=True,
        key_idx=7,
    )
    assert built == d and bytes(built) == FULL and hash(built) == hash(d)
    # minimal |0|0|0|1|0|000| = 0x10;  7-bit PictureID 127, PID 3:
    # |1|0|0|0|0|011| = 0x83, |1|0|0|0|0000| = 0x80 (I), |0|1111111| = 0x7f (M = 0)
    assert Vp8Descriptor(start=True).serialize() == b"\x10"
    short = Vp8Descriptor(picture_id=127, long_picture_id=False, partition_id=3)
    assert short.serialize() == b"\x83\x80\x7f"
    assert Vp8Descriptor.parse(b"\x83\x80\x7f\x00") == short
    # T without K and K without T
    assert Vp8Descriptor(temporal_id=1).serialize() == b"\x80\x20\x40"
    assert Vp8Descriptor(key_idx=31).serialize() == b"\x80\x10\x1f"
    # reserved bits are ignored and written as 0; an X byte with no field is kept
    assert Vp8Descriptor.parse(b"\xd8\x0f\x00").serialize() == b"\x90\x00"
    assert Vp8Descriptor.parse(b"\x80\x00\x00").extended is True


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (b"", "VP8_EMPTY", "empty"),
        (b"\x80", "VP8_TRUNCATED", "runs past"),
        (b"\x80\x80", "VP8_TRUNCATED", "runs past"),
        (b"\x80\x80\x80", "VP8_TRUNCATED", "runs past"),
        (b"\x80\x40", "VP8_TRUNCATED", "runs past"),
        (b"\x80\x20", "VP8_TRUNCATED", "runs past"),
        (b"\x80\x10", "VP8_TRUNCATED", "runs past"),
        (FULL[:5], "VP8_TRUNCATED", "runs past"),
        (FULL, "VP8_NO_DATA", "not followed"),
        (b"\x10", "VP8_NO_DATA", "not followed"),
    ],
)
def test_malformed_descriptors(payload: bytes, code: str, words: str) -> None:
    with pytest.raises(TransportError, match=words):
        Vp8Descriptor.parse(payload)
    with pytest.raises(TransportError, match=words):
        depacketize(payload)
    assert _rtp.ERROR_NAMES[_rtp.check_vp8(payload)] == code == model.parse_vp8(payload)


def test_descriptor_argument_errors() -> None:
    with pytest.raises(ValueError, match="picture_id"):
        Vp8Descriptor(picture_id=128, long_picture_id=False)
    with pytest.raises(ValueError, match="picture_id"):
        Vp8Descriptor(picture_id=32768)
    with pytest.raises(ValueError, match="temporal_id"):
        Vp8Descriptor(temporal_id=4)
    with pytest.raises(ValueError, match="layer_sync"):
        Vp8Descriptor(layer_sync=True)
    with pytest.raises(ValueError, match="partition_id"):
        Vp8Descriptor(partition_id=8)
    with pytest.raises(ValueError, match="key_idx"):
        Vp8Descriptor(key_idx=32)


descriptors = st.builds(
    model.ModelDescriptor,
    extended=st.booleans(),
    non_reference=st.booleans(),
    start=st.booleans(),
    partition_id=st.integers(0, 7),
    picture_id=st.none() | st.integers(0, 127),
    long_picture_id=st.booleans(),
    tl0_pic_idx=st.none() | st.integers(0, 255),
    temporal_id=st.none() | st.integers(0, 3),
    key_idx=st.none() | st.integers(0, 31),
)


def _native(d: model.ModelDescriptor) -> Vp8Descriptor:
    return Vp8Descriptor(
        start=d.start,
        partition_id=d.partition_id,
        non_reference=d.non_reference,
        picture_id=d.picture_id,
        long_picture_id=d.long_picture_id,
        tl0_pic_idx=d.tl0_pic_idx,
        temporal_id=d.temporal_id,
        layer_sync=d.layer_sync,
        key_idx=d.key_idx,
        extended=d.extended,
    )


@FUZZ
@given(descriptors, st.binary(min_size=1, max_size=8))
def test_descriptor_round_trips_against_the_model(d: model.ModelDescriptor, data: bytes) -> None:
    native = _native(d)
    wire = native.serialize()
    assert wire == model.write_vp8(d)
    assert Vp8Descriptor.parse(wire + data) == native
    p = depacketize(wire + data)
    assert p.descriptor == native and p.data == data


@FUZZ
@given(st.binary(max_size=10))
def test_fuzz_descriptor_parser(payload: bytes) -> None:
    want = model.parse_vp8(payload)
    try:
        d = Vp8Descriptor.parse(payload)
    except TransportError:
        assert isinstance(want, str) and _rtp.ERROR_NAMES[_rtp.check_vp8(payload)] == want
        return
    assert not isinstance(want, str)
    assert d.size == want.size
    # re-serialises identically once the ignored (reserved) bits are cleared
    canonical = model.write_vp8(want)
    assert d.serialize() == canonical
    assert Vp8Descriptor.parse(canonical + payload[d.size :]) == d


# -- packetizer -----------------------------------------------------------------------------
def _frame(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def test_payload_packetizer_matches_the_model() -> None:
    frame = _frame(30_000)
    for mtu in (1200, 500, 64, 8, 6):
        for md in (model.ModelDescriptor(), model.ModelDescriptor(picture_id=300, tl0_pic_idx=4)):
            got = packetize(frame, mtu, _native(md))
            assert got == model.packetize(frame, mtu, md)
            assert max(map(len, got)) <= mtu
            assert b"".join(depacketize(p).data for p in got) == frame
    tiny = packetize(frame[:100], 2)  # 1 byte of descriptor + 1 byte of data each
    assert len(tiny) == 100 and tiny[0] == b"\x10" + frame[:1] and tiny[1] == b"\x00" + frame[1:2]
    with pytest.raises(ValueError, match="too small"):
        packetize(frame, 1)
    with pytest.raises(ValueError, match="empty"):
        packetize(b"", 1200)
    with pytest.raises(TypeError, match="frame must be bytes-like"):
        packetize(123, 1200)  # type: ignore[arg-type]


def test_packetizer_30kB_frame_at_mtu_1200() -> None:
    frame = _frame(30_000)
    pk = Vp8Packetizer(
        0xABCDEF01,
        96,
        mtu=1200,
        sequence_number=65530,
        picture_id=32767,
        abs_send_time_id=2,
        transport_cc_id=3,
        transport_cc_seq=65534,
        frame_marking_id=4,
    )
    packets = pk.packetize(frame, 90_000, keyframe=True, send_time_us=5_000_000)
    parsed = [RtpPacket.parse(p) for p in packets]
    assert len(packets) == 26 and max(map(len, packets)) <= 1200
    assert max(map(len, packets)) - min(map(len, packets)) <= 1  # balanced
    assert [p.sequence_number for p in parsed] == [(65530 + i) % 65536 for i in range(26)]
    assert [p.marker for p in parsed] == [False] * 25 + [True]
    assert {p.timestamp for p in parsed} == {90_000} and {p.ssrc for p in parsed} == {0xABCDEF01}
    assert [decode_transport_cc(p.extension(3)) for p in parsed] == [
        (65534 + i) % 65536 for i in range(26)
    ]
    assert {p.extension(2) for p in parsed} == {bytes([0x14, 0, 0])}  # 5 s in 6.18
    marks = [_rtp.decode_frame_marking(p.extension(4)) for p in parsed]
    assert [m.start for m in marks] == [True] + [False] * 25
    assert [m.end for m in marks] == [False] * 25 + [True]
    assert all(m.independent for m in marks)
    descs = [depacketize(p.payload).descriptor for p in parsed]
    assert [d.start for d in descs] == [True] + [False] * 25
    assert {d.picture_id for d in descs} == {32767}
    assert b"".join(depacketize(p.payload).data for p in parsed) == frame
    # next frame: PictureID wrapped, sequence and transport-wide numbers continue
    more = [RtpPacket.parse(p) for p in pk.packetize(b"x" * 10, 93_000)]
    assert more[0].sequence_number == (65530 + 26) % 65536
    assert depacketize(more[0].payload).descriptor.picture_id == 0
    assert decode_transport_cc(more[0].extension(3)) == (65534 + 26) % 65536
    assert pk.sequence_number == (65530 + 27) % 65536 and pk.picture_id == 1


def test_packetizer_picture_id_wraps_7_and_15_bits() -> None:
    for bits, start, mod in ((15, 32766, 32768), (7, 126, 128)):
        pk = Vp8Packetizer(1, picture_id=start, picture_id_bits=bits)
        ids = []
        for i in range(4):
            (p,) = pk.packetize(b"abc", i * 3000)
            d = depacketize(RtpPacket.parse(p).payload).descriptor
            ids.append(d.picture_id)
            assert d.long_picture_id == (bits == 15)
        assert ids == [(start + i) % mod for i in range(4)]
    pk = Vp8Packetizer(1, picture_id_bits=0)
    (p,) = pk.packetize(b"abc", 0)
    assert depacketize(RtpPacket.parse(p).payload).descriptor == Vp8Descriptor(start=True)


def test_packetizer_temporal_layers() -> None:
    pk = Vp8Packetizer(1, temporal_layers=True, tl0_pic_idx=254, frame_marking_id=5)
    pattern = [0, 2, 1, 2, 0, 2, 1, 2, 0]
    seen = []
    for i, tid in enumerate(pattern):
        (p,) = pk.packetize(b"vp8", i * 3000, keyframe=i == 0, temporal_id=tid,
                            non_reference=tid == 2)
        rp = RtpPacket.parse(p)
        d = depacketize(rp.payload).descriptor
        fm = _rtp.decode_frame_marking(rp.extension(5))
        seen.append((d.temporal_id, d.tl0_pic_idx, d.non_reference, fm.temporal_id,
                     fm.discardable))
    assert [s[1] for s in seen] == [254, 254, 254, 254, 255, 255, 255, 255, 0]
    assert [s[0] for s in seen] == pattern == [s[3] for s in seen]
    assert [s[2] for s in seen] == [t == 2 for t in pattern] == [s[4] for s in seen]
    with pytest.raises(ValueError, match="base layer"):
        pk.packetize(b"x", 0, keyframe=True, temporal_id=1)


def test_packetizer_arguments() -> None:
    with pytest.raises(ValueError, match="too small"):
        Vp8Packetizer(1, mtu=16).packetize(b"abc", 0)
    with pytest.raises(ValueError, match="share"):
        Vp8Packetizer(1, abs_send_time_id=3, transport_cc_id=3)
    with pytest.raises(ValueError, match="1..14"):
        Vp8Packetizer(1, abs_send_time_id=20, extension_form="one-byte")
    with pytest.raises(ValueError, match="already used"):
        Vp8Packetizer(1, transport_cc_id=3).packetize(b"x", 0, extensions={3: b"a"})
    with pytest.raises(ValueError, match="picture_id_bits"):
        Vp8Packetizer(1, picture_id_bits=8)
    with pytest.raises(ValueError, match="timestamp"):
        Vp8Packetizer(1).packetize(b"x", -1)
    pk = Vp8Packetizer(1, sequence_number=5)
    with pytest.raises(ValueError, match="empty"):
        pk.packetize(b"", 0)
    assert pk.sequence_number == 5  # nothing sent, nothing counted
    (p,) = pk.packetize(b"x", 0, extensions={9: b"meta"})
    assert RtpPacket.parse(p).extension(9) == b"meta"
    (p,) = Vp8Packetizer(1, transport_cc_id=20).packetize(b"x", 0)
    assert RtpPacket.parse(p).extension_form == "two-byte"


# -- assembler ------------------------------------------------------------------------------
def _stream(
    n_frames: int, mtu: int, seed: int = 7, seq: int = 65500, max_size: int = 5000
) -> tuple[list[bytes], list[list[bytes]]]:
    """Random frames of 1..max_size bytes (1..200 at tiny MTUs: a frame must fit the window)
    and their packets, starting near the sequence number and timestamp wraps."""
    rng = random.Random(seed)
    pk = Vp8Packetizer(0x1234, 96, mtu=mtu, sequence_number=seq, picture_id=32760)
    frames, packets = [], []
    if mtu < 64:
        max_size = min(max_size, 200)
    for i in range(n_frames):
        f = rng.randbytes(rng.randint(1, max_size))
        frames.append(f)
        packets.append(pk.packetize(f, (4294967295 - 6000 + 3000 * i) % 2**32))
    return frames, packets


def _collect(asm: Vp8FrameAssembler, packets: list[bytes]) -> list[AssembledFrame]:
    out: list[AssembledFrame] = []
    for p in packets:
        out += asm.push(p)
    return out


@pytest.mark.parametrize("mtu", [1200, 100, 17])
def test_assembler_in_order_across_wraps(mtu: int) -> None:
    frames, packets = _stream(30, mtu)
    with Vp8FrameAssembler() as asm:
        got = _collect(asm, [p for f in packets for p in f])
        assert [g.data for g in got] == frames
        assert all(g.continuous and g.marker for g in got)
        assert [g.picture_id for g in got] == [(32760 + i) % 32768 for i in range(30)]
        assert [g.packets for g in got] == [len(p) for p in packets]
        # extended values keep counting over the 16-bit and 32-bit wraps
        assert [g.extended_timestamp for g in got] == [2**32 - 1 - 6000 + 3000 * i
                                                       for i in range(30)]
        seqs = [g.first_seq for g in got]
        assert seqs == sorted(seqs) and got[-1].last_seq == 65500 + sum(map(len, packets)) - 1
        assert asm.stats.frames == 30 and asm.stats.losses == 0 and asm.held == 0
        assert asm.take_losses() == []


@pytest.mark.parametrize("mtu", [1200, 40, 17])
def test_assembler_loss_reorder_duplicates(mtu: int) -> None:
    frames, packets = _stream(40, mtu, seed=mtu)
    rng = random.Random(mtu)
    lost_frames = {7, 21}
    flat = []
    for i, f in enumerate(packets):
        for j, p in enumerate(f):
            if i in lost_frames and j == len(f) // 2:
                continue  # one packet of these frames never arrives
            flat.append(p)
            if rng.random() < 0.2:
                flat.append(p)  # duplicate
    # reorder: shuffle within windows of 6 packets
    for k in range(0, len(flat) - 6, 6):
        window = flat[k : k + 6]
        rng.shuffle(window)
        flat[k : k + 6] = window
    with Vp8FrameAssembler(max_wait_frames=3) as asm:
        got = _collect(asm, flat) + asm.flush()
        by_pid = {g.picture_id: g for g in got}
        expected = [i for i in range(40) if i not in lost_frames]
        assert sorted(by_pid) == sorted((32760 + i) % 32768 for i in expected)
        for i in expected:
            assert by_pid[(32760 + i) % 32768].data == frames[i]
        order = [g.first_seq for g in got]
        assert order == sorted(order)  # emitted in sequence order
        gaps = [g for g in got if not g.continuous]
        assert len(gaps) == len(lost_frames)
        losses = asm.take_losses()
        assert [loss.reason for loss in losses] == ["gap"] * len(lost_frames)
        assert all(loss.timestamps == 1 for loss in losses)
        stats = asm.stats
        assert stats.duplicates > 0 and stats.frames == 38 and asm.held == 0


def test_assembler_push_many_equals_push() -> None:
    frames, packets = _stream(20, 300, seed=3)
    flat = [p for f in packets for p in f]
    random.Random(5).shuffle(flat[10:30])
    with Vp8FrameAssembler() as a, Vp8FrameAssembler() as b:
        one = [g.data for g in _collect(a, flat)]
        many = [g.data for g in b.push_many(flat[:7]) + b.push_many(flat[7:])]
        assert one == many
        assert b.push_many([]) == []
        b.push_many([b"garbage", bytearray(b"\x80" * 20)])  # not RTP; RTP of another SSRC
        assert (b.stats.invalid, b.stats.foreign) == (1, 1)


def test_assembler_keyframe_ends_the_wait() -> None:
    frames, packets = _stream(3, 200, seed=11)
    key = Vp8Packetizer(0x1234, 96, sequence_number=(65500 + sum(map(len, packets))) % 65536,
                        frame_marking_id=3)
    kf = key.packetize(b"K" * 500, 12345, keyframe=True)
    with Vp8FrameAssembler(frame_marking_id=3, max_wait_frames=100) as asm:
        got = _collect(asm, packets[0] + packets[1][1:] + packets[2] + kf)
        assert [g.data for g in got] == [frames[0], b"K" * 500]
        assert got[1].keyframe is True and got[1].continuous is False
        assert got[1].frame_marking == FrameMarking(True, True, True, False, False, 0)
        assert [loss.reason for loss in asm.take_losses()] == ["keyframe"]


def test_assembler_time_limit() -> None:
    frames, packets = _stream(4, 200, seed=12)
    with Vp8FrameAssembler(max_wait_frames=100, max_wait_ms=50) as asm:
        got = []
        t = 0.0
        for i, f in enumerate(packets):
            for p in f[1:] if i == 1 else f:
                got += asm.push(p, arrival_ms=t)
                t += 1.0
        assert [g.data for g in got] == [frames[0]]  # frames 2, 3 wait behind frame 1's gap
        assert asm.advance(t + 10) == []
        late = asm.advance(t + 60)
        assert [g.data for g in late] == frames[2:]
        assert late[0].continuous is False and late[1].continuous is True
        assert late[0].arrival_ms is not None
        assert [loss.reason for loss in asm.take_losses()] == ["gap"]


def test_assembler_skip_window_reset_and_padding() -> None:
    frames, packets = _stream(6, 200, seed=13)
    with Vp8FrameAssembler(max_wait_frames=100, capacity=64) as asm:
        got = _collect(asm, packets[0] + packets[1][1:] + packets[2])
        assert [g.data for g in got] == [frames[0]]
        assert [g.data for g in asm.skip()] == [frames[2]]
        assert asm.take_losses()[0].reason == "skip"
        # padding-only packets (bandwidth probes) hold sequence numbers without loss
        nxt = RtpPacket.parse(packets[3][0])
        pad = nxt.replace(payload=b"", padding=20, marker=False)
        def shifted(pkts: list[bytes], n: int) -> list[bytes]:
            out = []
            for p in pkts:
                r = RtpPacket.parse(p)
                out.append(r.replace(sequence_number=(r.sequence_number + n) % 65536).serialize())
            return out

        got = asm.push(pad.serialize()) + _collect(asm, shifted(packets[3], 1))
        assert [g.data for g in got] == [frames[3]] and got[0].continuous
        assert asm.take_losses() == [] and asm.stats.padding == 1
        # a packet far ahead pushes the window
        _collect(asm, shifted(packets[4][:-1], 1))
        asm.push(shifted(packets[4][-1:], 1000)[0])
        assert [loss.reason for loss in asm.take_losses()] == ["window"]
        asm.reset()
        assert asm.held == 0
        assert [g.data for g in _collect(asm, packets[5])] == [frames[5]]


def test_assembler_ssrc_garbage_and_close() -> None:
    frames, packets = _stream(2, 1200, seed=14)
    asm = Vp8FrameAssembler(ssrc=0x1234)
    other = RtpPacket.parse(packets[0][0]).replace(ssrc=99).serialize()
    with pytest.raises(TransportError, match="another SSRC"):
        asm.push(other)
    for junk in (b"", b"\x00" * 12, b"\x80" * 11, RtpPacket(96, 1, 2, 0x1234, b"").serialize()[:12]
                 + b"\x80"):
        try:
            asm.push(junk)
        except TransportError:
            pass
    assert [g.data for g in _collect(asm, packets[0] + packets[1])] == frames
    s = asm.stats
    assert s.foreign == 1 and s.invalid >= 3
    asm.close()
    asm.close()
    assert asm.closed
    with pytest.raises(ClosedError):
        asm.push(packets[0][0])
    with pytest.raises(ClosedError):
        _ = asm.stats
    with pytest.raises(ValueError, match="capacity"):
        Vp8FrameAssembler(capacity=100_000)
    with pytest.raises(ValueError, match="max_wait_ms"):
        Vp8FrameAssembler(max_wait_ms=-1)


def test_assembler_sequence_restart() -> None:
    frames, packets = _stream(8, 200, seed=15)
    with Vp8FrameAssembler() as asm:
        _collect(asm, [p for f in packets[4:] for p in f])
        again = _collect(asm, [p for f in packets for p in f] * 2)
        # 64 late packets in a row: the assembler starts over and follows the new numbering
        assert [loss.reason for loss in asm.take_losses()][-1:] in (["reset"], ["partial"], [])
        assert again and again[-1].data == frames[-1]


@FUZZ
@given(st.lists(st.binary(max_size=60), max_size=30))
def test_fuzz_assembler_never_crashes(junk: list[bytes]) -> None:
    frames, packets = _stream(2, 100, seed=16)
    with Vp8FrameAssembler(capacity=128) as asm:
        for j in junk:
            try:
                asm.push(j)
            except TransportError:
                pass
        asm.push_many(junk)
        asm.flush()
        asm.reset(unlock_ssrc=True)
        assert [g.data for g in _collect(asm, [p for f in packets for p in f])] == frames


@FUZZ
@given(st.data())
def test_fuzz_round_trip_with_random_loss_and_order(data: st.DataObject) -> None:
    mtu = data.draw(st.sampled_from([17, 50, 300, 1200]))
    frames, packets = _stream(6, mtu, seed=data.draw(st.integers(0, 1000)))
    flat = [(i, p) for i, f in enumerate(packets) for p in f]
    drop = data.draw(st.sets(st.integers(0, len(flat) - 1), max_size=3))
    kept = [x for k, x in enumerate(flat) if k not in drop]
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    # bounded reordering: a packet moves at most 3 places (the first 4 stay first: at start-up
    # a frame arriving after a later one was emitted is late -- nothing said it existed)
    idx = sorted(range(len(kept)), key=lambda k: k + (rng.random() * 4 if k >= 4 else 0))
    with Vp8FrameAssembler(max_wait_frames=6) as asm:
        got = _collect(asm, [kept[k][1] for k in idx]) + asm.flush()
    hit = {flat[k][0] for k in drop}
    intact = [i for i in range(6) if i not in hit]
    by_data = [g.data for g in got]
    for g in got:  # never a corrupted frame
        assert g.data in frames
    assert [frames.index(d) for d in by_data] == sorted(frames.index(d) for d in by_data)
    assert set(intact) <= {frames.index(d) for d in by_data}


# -- real libvpx frames, encrypted frames ---------------------------------------------------
def test_real_vp8_frames_through_rtp_and_back() -> None:
    from callpipe.codecs.vp8 import Vp8Decoder, Vp8Encoder
    from callpipe.media.synthetic import SyntheticVideoSource

    src = SyntheticVideoSource(160, 96, frames=12)
    pk = Vp8Packetizer(0x55, 96, mtu=300)
    packets: list[bytes] = []
    encoded = []
    with Vp8Encoder(160, 96, 300) as enc:
        while (frame := src.read()) is not None:
            for ef in enc.encode(frame, keyframe=src.frame_count == 7):
                encoded.append(ef)
                packets += pk.packetize_frame(ef)
    rng = random.Random(1)
    for k in range(0, len(packets) - 4, 4):  # mild reordering plus duplicates
        w = packets[k : k + 4]
        rng.shuffle(w)
        packets[k : k + 4] = w
    packets += packets[::5]
    with Vp8FrameAssembler() as asm, Vp8Decoder() as dec:
        got = asm.push_many(packets)
        assert [g.data for g in got] == [e.data for e in encoded]
        assert [g.keyframe for g in got] == [e.keyframe for e in encoded]
        assert [g.timestamp for g in got] == [(e.pts + pk.timestamp_offset) % 2**32
                                              for e in encoded]
        pictures = [dec.decode(g.data) for g in got]
        assert all(p is not None and (p.width, p.height) == (160, 96) for p in pictures)


def test_sframe_encrypted_frames_carry_keyframe_in_frame_marking() -> None:
    from callpipe.codecs.vp8 import Vp8Encoder
    from callpipe.e2ee.sframe import SFrameReceiver, SFrameSender
    from callpipe.media.synthetic import SyntheticVideoSource

    key = bytes(range(16))
    src = SyntheticVideoSource(128, 64, frames=4)
    with SFrameSender() as tx, SFrameReceiver() as rx, Vp8Encoder(128, 64, 200) as enc:
        tx.add_key(1, key)
        rx.add_key(1, key)
        pk = Vp8Packetizer(9, frame_marking_id=7)
        plain_asm = Vp8FrameAssembler(encrypted=True)
        marked_asm = Vp8FrameAssembler(encrypted=True, frame_marking_id=7)
        encoded, got_plain, got_marked = [], [], []
        while (frame := src.read()) is not None:
            for ef in enc.encode(frame):
                encoded.append(ef)
                packets = pk.packetize_frame(ef, tx.encrypt(ef.data))
                no_marking = [RtpPacket.parse(p).replace(extensions=None).serialize()
                              for p in packets]
                got_plain += plain_asm.push_many(no_marking)
                got_marked += marked_asm.push_many(packets)
        plain_asm.close()
        marked_asm.close()
        assert [g.keyframe for g in got_plain] == [None] * len(encoded)
        assert [g.keyframe for g in got_marked] == [e.keyframe for e in encoded]
        assert [rx.decrypt(g.data) for g in got_marked] == [e.data for e in encoded]
