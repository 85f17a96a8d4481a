"""VideoFrame / AudioFrame: layout, zero-copy wrapping, odd sizes, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from callpipe.errors import CallpipeError, ConversionError
from callpipe.media import AudioFrame, VideoFrame, i420_size


@pytest.mark.parametrize("w,h", [(1, 1), (2, 2), (3, 5), (320, 240), (641, 359)])
def test_i420_round_trip_and_plane_shapes(w: int, h: int) -> None:
    data = np.random.default_rng(w * h).integers(0, 256, i420_size(w, h), dtype=np.uint8)
    f = VideoFrame.from_i420(data.tobytes(), w, h, pts=1234)
    assert (f.width, f.height, f.pts) == (w, h, 1234)
    assert f.y.shape == (h, w)
    assert f.u.shape == f.v.shape == ((h + 1) // 2, (w + 1) // 2)
    assert bytes(f.to_i420()) == data.tobytes()
    # Y plane is the first w*h bytes, U follows, V last
    assert f.y[0, 0] == data[0] and f.u[0, 0] == data[w * h]
    assert f.v[-1, -1] == data[-1]


def test_from_i420_is_zero_copy_over_writable_buffers() -> None:
    buf = bytearray(i420_size(4, 4))
    f = VideoFrame.from_i420(buf, 4, 4)
    buf[0] = 77
    assert f.y[0, 0] == 77


def test_strided_planes_pack_correctly() -> None:
    big = np.arange(20 * 30, dtype=np.uint32).astype(np.uint8).reshape(20, 30)
    y = big[:9, :7]  # row stride 30 bytes, not 7
    u = np.full((5, 4), 100, np.uint8)
    v = np.full((5, 4), 200, np.uint8)
    f = VideoFrame(y, u, v)
    assert f.strides == (30, 4, 4)
    packed = np.frombuffer(f.to_i420(), np.uint8)
    assert packed.size == i420_size(7, 9)
    assert np.array_equal(packed[:63].reshape(9, 7), y)
    assert np.all(packed[63:83] == 100) and np.all(packed[83:] == 200)
    assert f.copy() == f


@pytest.mark.parametrize(
    "args,match",
    [
        ((b"\x00" * 10, 4, 4), "must be 24 bytes, got 10"),
        ((b"\x00" * 24, 0, 4), "out of range"),
        ((b"\x00" * 24, 4.0, 4), "integers"),
        ((12345, 4, 4), "bytes-like"),
    ],
)
def test_from_i420_rejects_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(ConversionError, match=match):
        VideoFrame.from_i420(*args)


def test_plane_validation() -> None:
    with pytest.raises(ConversionError, match="chroma planes must be 2x2"):
        VideoFrame(
            np.zeros((4, 4), np.uint8), np.zeros((3, 3), np.uint8), np.zeros((2, 2), np.uint8)
        )
    with pytest.raises(ConversionError, match="uint8"):
        VideoFrame(
            np.zeros((4, 4), np.int16), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
        )
    with pytest.raises(ConversionError, match="contiguous rows"):
        VideoFrame(
            np.zeros((4, 8), np.uint8)[:, ::2],
            np.zeros((2, 2), np.uint8),
            np.zeros((2, 2), np.uint8),
        )
    # the tree: ConversionError is a CallpipeError and a ValueError
    assert issubclass(ConversionError, CallpipeError) and issubclass(ConversionError, ValueError)


def test_blank_frame() -> None:
    f = VideoFrame.blank(5, 3, luma=16)
    assert np.all(f.y == 16) and np.all(f.u == 128) and f.u.shape == (2, 3)


@pytest.mark.parametrize("rate,ms,ch", [(48000, 10, 1), (48000, 20, 2), (16000, 20, 1)])
def test_audio_pcm_round_trip(rate: int, ms: int, ch: int) -> None:
    n = rate * ms // 1000
    pcm = np.random.default_rng(0).integers(-32768, 32767, n * ch, dtype=np.int16).tobytes()
    a = AudioFrame.from_pcm(pcm, sample_rate=rate, channels=ch, pts=960)
    assert a.samples_per_channel == n and a.channels == ch and a.duration_ms == ms
    assert bytes(a.to_pcm()) == pcm
    assert a.samples[1, ch - 1] == np.frombuffer(pcm, np.int16)[2 * ch - 1]


def test_audio_bad_input() -> None:
    with pytest.raises(ConversionError, match="whole number"):
        AudioFrame.from_pcm(b"\x00" * 3, channels=1)
    with pytest.raises(ConversionError, match="whole number"):
        AudioFrame.from_pcm(b"\x00" * 6, channels=2)
    with pytest.raises(ConversionError, match="sample_rate"):
        AudioFrame.from_pcm(b"\x00" * 4, sample_rate=0)
    with pytest.raises(ConversionError, match="channels"):
        AudioFrame.from_pcm(b"\x00" * 4, channels=0)
    with pytest.raises(ConversionError, match="int16"):
        AudioFrame(np.zeros((10, 1), np.float32))
