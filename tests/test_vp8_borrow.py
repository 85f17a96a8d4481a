"""Vp8Decoder.decode(copy=False): frames that borrow libvpx's own picture, and their lifetime.

Borrowed planes are read-only views of libvpx's frame buffer.  The promises tested here: the
pictures are the very same as copied ones; the memory under a borrowed frame is never freed
while the frame lives (not by close(), not by a keyframe of another size, not by a damaged
keyframe header); the libvpx decoder is freed once the last borrowed frame is gone; copied
frames (the default) stay independent of later decodes.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from callpipe.codecs.vp8 import EncodedFrame, Vp8Decoder, Vp8Encoder
from callpipe.errors import ClosedError, CodecError
from callpipe.media.frames import VideoFrame


def make_clip(width: int, height: int, count: int, seed: int = 5) -> list[VideoFrame]:
    """A moving gradient with a moving box and a little noise, drifting chroma."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = np.mgrid[0 : (height + 1) // 2, 0 : (width + 1) // 2]
    frames = []
    for i in range(count):
        f = VideoFrame.blank(width, height, pts=i * 3000)
        y = (xx * 2 + yy + 5 * i) % 220 + 16 + rng.integers(0, 6, (height, width))
        bx = (6 * i) % max(1, width - width // 3)
        y[height // 4 : height // 2, bx : bx + width // 3] = 235
        f.y[:] = y
        f.u[:] = (cx + 3 * i) % 80 + 88
        f.v[:] = (cy + i) % 80 + 88
        frames.append(f)
    return frames


def encode(width: int, height: int, count: int, **kwargs: int) -> list[EncodedFrame]:
    with Vp8Encoder(width, height, 500, frame_dropping=False, **kwargs) as enc:
        return [p for f in make_clip(width, height, count) for p in enc.encode(f)]


def snapshot(frame: VideoFrame) -> list[np.ndarray]:
    return [p.copy() for p in frame.planes]


def same(frame: VideoFrame, planes: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(frame.planes, planes, strict=True))


@pytest.mark.parametrize("threads", [1, 2])
def test_borrowed_frames_are_the_copied_pictures(threads: int) -> None:
    # keyframes every 4 frames while earlier borrowed frames are all still referenced: each
    # keyframe moves to a fresh libvpx decoder, and the pictures must not notice
    stream = encode(97, 61, 14, keyframe_interval=4, token_partitions=2)
    held = []
    with Vp8Decoder(threads=threads) as ref, Vp8Decoder(threads=threads) as dec:
        for p in stream:
            a = ref.decode(p.data, pts=p.pts)
            b = dec.decode(p.data, pts=p.pts, copy=False)
            assert a is not None and b is not None
            assert (b.width, b.height, b.pts) == (97, 61, p.pts)
            assert b == a
            assert all(not plane.flags.writeable for plane in b.planes)
            assert b.strides[0] >= 97  # libvpx's own rows (with its borders), not a copy
            held.append(b)
        assert dec.frames_decoded == len(stream) and not dec.needs_keyframe
    assert bytes(held[-1].to_i420()) == bytes(a.to_i420())  # to_i420 copies a borrowed frame


def test_borrowed_planes_are_read_only() -> None:
    stream = encode(64, 48, 1)
    with Vp8Decoder() as dec:
        f = dec.decode(stream[0].data, copy=False)
        assert f is not None
        with pytest.raises(ValueError, match="read-only"):
            f.y[0, 0] = 1
        with pytest.raises(ValueError, match="read-only"):
            f.v[:] = 0


def test_borrowed_frame_outlives_close_and_frees_the_decoder_after() -> None:
    stream = encode(80, 64, 5)
    dec = Vp8Decoder()
    for p in stream:
        f = dec.decode(p.data, copy=False)
    assert f is not None
    kept = snapshot(f)
    handle = weakref.ref(dec._dec)  # the libvpx decoder handle (ffi.gc): alive or gone
    dec.close()
    with pytest.raises(ClosedError):
        dec.decode(stream[0].data, copy=False)
    gc.collect()
    assert handle() is not None  # still referenced by the borrowed frame
    assert same(f, kept)  # memory still there, picture untouched
    u = f.u
    del f
    gc.collect()
    assert handle() is not None  # one plane is enough to keep it
    assert np.array_equal(u, kept[1])
    del u
    gc.collect()
    assert handle() is None  # freed with the last plane


def test_close_frees_at_once_without_borrowed_frames() -> None:
    stream = encode(80, 64, 2)
    dec = Vp8Decoder()
    copied = [dec.decode(p.data) for p in stream]
    borrowed = dec.decode(stream[0].data, copy=False)
    del borrowed
    handle = weakref.ref(dec._dec)
    dec.close()
    assert handle() is None
    assert all(f is not None and f.width == 80 for f in copied)


def test_size_change_under_borrowed_frames() -> None:
    big = encode(160, 120, 3)
    small = encode(63, 35, 3)
    with Vp8Decoder() as ref, Vp8Decoder() as dec:
        held = []
        for p in big + small + big:
            a = ref.decode(p.data)
            b = dec.decode(p.data, copy=False)
            assert b == a
            held.append((b, snapshot(b)))
        # the last frame of each run of a size was never decoded over: still exactly itself
        for i in (2, 5, 8):
            frame, planes = held[i]
            assert same(frame, planes), f"borrowed frame {i} changed under its holder"
        # copy and borrow mix on one decoder
        c = dec.decode(small[0].data)
        assert c == ref.decode(small[0].data)
        assert c is not None and c.y.flags.writeable


def test_damaged_keyframe_headers_do_not_free_borrowed_pictures() -> None:
    """A keyframe header claiming another size (or 0x0) makes libvpx reallocate at the next
    keyframe; borrowed frames from before must keep their memory and their picture."""
    stream = encode(96, 64, 3)
    key = stream[0].data
    with Vp8Decoder() as dec:
        f = dec.decode(key, copy=False)
        assert f is not None
        kept = snapshot(f)
        errors = 0
        held = []  # keep every borrowed output too: each damaged keyframe meets live leases
        for i in range(1, len(key)):  # byte 0 keeps the keyframe bit: every one is a keyframe
            variants = [bytearray(key)]
            variants[0][i] ^= 0xFF
            if i < 10:  # the start code and size fields: 0x0 and a foreign size
                hdr = bytearray(key)
                hdr[6:10] = b"\x00\x00\x00\x00" if i % 2 else b"\x20\x00\x10\x00"
                variants.append(hdr)
            for bad in variants:
                try:
                    held.append(dec.decode(bytes(bad), copy=False))
                except CodecError:
                    errors += 1
        assert errors > 0
        out = [dec.decode(p.data, copy=False) for p in stream]
        assert all(o is not None and o.width == 96 for o in out)
        assert same(f, kept)


def test_copied_frames_are_independent_of_later_decodes() -> None:
    stream = encode(64, 48, 6)
    with Vp8Decoder() as dec:
        first = dec.decode(stream[0].data)
        assert first is not None
        kept = snapshot(first)
        for p in stream[1:]:
            dec.decode(p.data)
        assert same(first, kept)
        assert first.y.flags.writeable


def test_copy_flag_is_validated() -> None:
    stream = encode(64, 48, 1)
    with Vp8Decoder() as dec:
        with pytest.raises(CodecError, match="copy"):
            dec.decode(stream[0].data, copy="no")  # type: ignore[arg-type]
        assert dec.decode(stream[0].data, copy=np.bool_(False)) is not None


def test_borrowed_frame_encodes_like_its_copy() -> None:
    """Transcoding straight from libvpx's picture: the encoder reads the read-only, strided
    planes in place and makes the same bytes as from a packed copy."""
    stream = encode(96, 64, 4)
    with Vp8Decoder() as dec, Vp8Encoder(96, 64, 300) as a, Vp8Encoder(96, 64, 300) as b:
        for p in stream:
            f = dec.decode(p.data, pts=p.pts, copy=False)
            assert f is not None
            packed = VideoFrame.from_i420(bytes(f.to_i420()), 96, 64, f.pts)
            assert [x.data for x in a.encode(f)] == [x.data for x in b.encode(packed)]
