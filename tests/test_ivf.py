"""IVF container: known bytes, round trips, and clear errors on truncated or bad files."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.codecs.ivf import IvfError, IvfFrame, IvfReader, IvfWriter
from callpipe.errors import ClosedError, CodecError

# Written by hand from the format description (not by IvfWriter): a 320x240 VP80 file, timebase
# 1/30, two frames: b"abc" at pts 0 and b"\x01" at pts 2**40 + 5.
KNOWN = bytes.fromhex(
    "444b4946" "0000" "2000" "56503830" "4001" "f000" "1e000000" "01000000" "02000000" "00000000"
    "03000000" "0000000000000000" "616263"
    "01000000" "0500000000010000" "01"
)


def test_writer_produces_known_bytes() -> None:
    buf = io.BytesIO()
    with IvfWriter(buf, 320, 240, fourcc="VP80", timebase=(1, 30)) as w:
        w.write(b"abc", 0)
        w.write(memoryview(b"\x01"), 2**40 + 5)
        assert w.frame_count == 2
    assert not buf.closed  # a file object passed in is left open
    assert buf.getvalue() == KNOWN


def test_reader_parses_known_bytes() -> None:
    with IvfReader(io.BytesIO(KNOWN)) as r:
        assert (r.width, r.height, r.fourcc, r.timebase, r.frame_count) == (
            320, 240, "VP80", (1, 30), 2
        )
        frames = list(r)
    assert frames == [IvfFrame(0, b"abc"), IvfFrame(2**40 + 5, b"\x01")]
    pts, data = frames[1]
    assert (pts, data) == (2**40 + 5, b"\x01")


def test_round_trip_through_a_path(tmp_path: Path) -> None:
    path = tmp_path / "x.ivf"
    payloads = [bytes([i]) * (i * 37 + 1) for i in range(20)]
    with IvfWriter(str(path), 1920, 1080, fourcc="VP90", timebase=(1, 90000)) as w:
        for i, p in enumerate(payloads):
            w.write(p, i * 3000 - 6000)  # negative pts allowed (signed 64 bit)
    assert w.closed
    with IvfReader(path) as r:
        assert (r.width, r.height, r.fourcc, r.timebase) == (1920, 1080, "VP90", (1, 90000))
        assert r.frame_count == 20
        got = list(r)
        assert r.frames_read == 20
    assert [d for _, d in got] == payloads
    assert [p for p, _ in got] == [i * 3000 - 6000 for i in range(20)]


@settings(max_examples=50, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.binary(min_size=1, max_size=64)),
        max_size=20,
    ),
    size=st.tuples(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF)),
)
def test_round_trip_property(frames: list[tuple[int, bytes]], size: tuple[int, int]) -> None:
    buf = io.BytesIO()
    with IvfWriter(buf, size[0], size[1]) as w:
        for pts, data in frames:
            w.write(data, pts)
    buf.seek(0)
    with IvfReader(buf) as r:
        assert (r.width, r.height, r.frame_count) == (size[0], size[1], len(frames))
        assert [tuple(f) for f in r] == frames


class _Pipe:
    """A write-only, non-seekable sink (like a pipe)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, b: bytes | memoryview) -> int:
        self.chunks.append(bytes(b))
        return len(b)

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass


def test_non_seekable_output_keeps_a_zero_count() -> None:
    pipe = _Pipe()
    with IvfWriter(pipe, 16, 16) as w:
        w.write(b"\x00\x01", 1)
    data = b"".join(pipe.chunks)
    assert struct.unpack_from("<I", data, 24)[0] == 0
    r = IvfReader(io.BytesIO(data))
    assert r.frame_count == 0 and list(r) == [(1, b"\x00\x01")]


# -- bad files ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "truncated IVF file header: 0 of 32"),
        (KNOWN[:10], "truncated IVF file header: 10 of 32"),
        (b"RIFF" + KNOWN[4:], "not an IVF file"),
        (KNOWN[:4] + b"\x01\x00" + KNOWN[6:], "unsupported IVF version 1"),
        (KNOWN[:6] + b"\x10\x00" + KNOWN[8:], "bad IVF header size 16"),
        (KNOWN[:6] + b"\x40\x00" + KNOWN[8:40], "truncated IVF file header: 64 bytes"),
    ],
)
def test_bad_headers(blob: bytes, match: str) -> None:
    with pytest.raises(IvfError, match=match):
        IvfReader(io.BytesIO(blob))


@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (32 + 5, "truncated IVF frame header of frame 0: 5 of 12"),
        (32 + 12 + 1, "truncated IVF frame 0: 1 of 3 bytes"),
        (32 + 15 + 7, "truncated IVF frame header of frame 1: 7 of 12"),
        (len(KNOWN) - 1, "truncated IVF frame 1: 0 of 1 bytes"),
    ],
)
def test_truncated_frames(cut: int, match: str) -> None:
    r = IvfReader(io.BytesIO(KNOWN[:cut]))
    with pytest.raises(IvfError, match=match):
        list(r)


def test_implausible_frame_size() -> None:
    blob = KNOWN[:32] + struct.pack("<Iq", 0xFFFFFFF0, 0) + b"xx"
    with pytest.raises(IvfError, match="claims 4294967280 bytes"):
        list(IvfReader(io.BytesIO(blob)))


def test_ivf_error_is_a_codec_error(tmp_path: Path) -> None:
    assert issubclass(IvfError, CodecError)
    with pytest.raises(IvfError, match="cannot open IVF file"):
        IvfReader(tmp_path / "missing.ivf")
    with pytest.raises(IvfError, match="path or a binary file object"):
        IvfReader(42)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"height": 70000},
        {"width": 2.0},
        {"fourcc": "VP8"},
        {"fourcc": "VPé0"},
        {"timebase": (0, 30)},
        {"timebase": (1,)},
        {"timebase": (1, 2**32)},
    ],
)
def test_writer_rejects_bad_headers(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"width": 16, "height": 16}
    args.update(kwargs)
    with pytest.raises(IvfError):
        IvfWriter(io.BytesIO(), **args)  # type: ignore[arg-type]


def test_writer_rejects_bad_frames_and_use_after_close() -> None:
    w = IvfWriter(io.BytesIO(), 16, 16)
    with pytest.raises(IvfError, match="1..2\\*\\*32-1 bytes"):
        w.write(b"", 0)
    with pytest.raises(IvfError, match="bytes-like"):
        w.write("text", 0)
    with pytest.raises(IvfError, match="64-bit"):
        w.write(b"x", 2**63)
    with pytest.raises(IvfError, match="64-bit"):
        w.write(b"x", 1.0)  # type: ignore[arg-type]
    w.write(b"x", 0)
    w.close()
    w.close()
    with pytest.raises(ClosedError):
        w.write(b"x", 1)
    r = IvfReader(io.BytesIO(KNOWN))
    r.close()
    r.close()
    with pytest.raises(ClosedError):
        r.read_frame()
