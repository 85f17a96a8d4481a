"""PNG writer/reader (callpipe.media.png): round trips and interop with ffmpeg / PyAV."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from callpipe.errors import ConversionError
from callpipe.media import convert
from callpipe.media.png import PngError, decode_png, encode_png, read_png, save_frame_png, write_png

U8 = npt.NDArray[np.uint8]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed")


def picture(w: int, h: int, seed: int = 0) -> U8:
    """Half noise, half gradient: exercises both incompressible and smooth rows."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[h // 2 :, :, 0] = (xx * 3)[h // 2 :] % 256
    img[h // 2 :, :, 1] = (yy * 5)[h // 2 :] % 256
    return img


def ffmpeg_decode(path: Path, w: int, h: int) -> U8:
    assert FFMPEG is not None
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize("w,h", [(1, 1), (3, 5), (64, 48), (641, 359)])
def test_round_trip(tmp_path: Path, w: int, h: int) -> None:
    img = picture(w, h, seed=w)
    path = tmp_path / "x.png"
    write_png(path, img)
    back = read_png(path)
    assert back.shape == (h, w, 3) and back.dtype == np.uint8
    assert np.array_equal(back, img)


def test_strided_input_and_levels(tmp_path: Path) -> None:
    big = picture(50, 40)
    view = big[5:35, 7:47]
    for level in (0, 1, 9):
        assert np.array_equal(decode_png(encode_png(view, level)), view)
    path = tmp_path / "v.png"
    write_png(path, view[::-1])
    assert np.array_equal(read_png(path), view[::-1])


@needs_ffmpeg
def test_ffmpeg_and_pyav_read_our_png(tmp_path: Path) -> None:
    w, h = 97, 61
    img = picture(w, h, seed=3)
    path = tmp_path / "ours.png"
    write_png(path, img)
    assert np.array_equal(ffmpeg_decode(path, w, h), img)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert np.array_equal(frame.to_ndarray(format="rgb24"), img)


@needs_ffmpeg
@pytest.mark.parametrize("pred", ["none", "sub", "up", "avg", "paeth", "mixed"])
def test_we_read_ffmpeg_png(tmp_path: Path, pred: str) -> None:
    """Every row filter, as ffmpeg's PNG encoder writes them."""
    assert FFMPEG is not None
    w, h = 45, 23
    img = picture(w, h, seed=4)
    path = tmp_path / f"ffmpeg-{pred}.png"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-i",
            "-",
            "-pred",
            pred,
            "-frames:v",
            "1",
            "-y",
            str(path),
        ],
        input=img.tobytes(),
        check=True,
        timeout=60,
    )
    assert np.array_equal(read_png(path), img)


@needs_ffmpeg
def test_save_frame_png(tmp_path: Path) -> None:
    w, h = 33, 19  # odd sizes
    frame = convert.to_i420(picture(w, h, seed=5), "rgb24")
    path = tmp_path / "frame.png"
    save_frame_png(frame, path)
    expect = convert.from_i420(frame, "rgb24")
    assert np.array_equal(read_png(path), expect)
    assert np.array_equal(ffmpeg_decode(path, w, h), expect)


def test_bad_files(tmp_path: Path) -> None:
    good = encode_png(picture(8, 6))
    with pytest.raises(PngError, match="signature"):
        decode_png(b"GIF89a" + good[6:])
    corrupt = bytearray(good)
    corrupt[40] ^= 0xFF  # inside IDAT
    with pytest.raises(PngError, match="CRC"):
        decode_png(bytes(corrupt))
    with pytest.raises(PngError, match="truncated|past the end"):
        decode_png(good[:-20])
    with pytest.raises(PngError, match="truncated"):
        decode_png(good[:8])
    # a well-formed grey PNG is refused with its colour type named
    grey = b"\x89PNG\r\n\x1a\n"
    for kind, body in (
        (b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)),
        (b"IDAT", zlib.compress(b"\x00\x00\x00" * 2)),
        (b"IEND", b""),
    ):
        grey += (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )
    with pytest.raises(PngError, match="colour type 0"):
        decode_png(grey)
    path = tmp_path / "junk.png"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(PngError):
        read_png(path)
    assert issubclass(PngError, ConversionError)


def test_bad_arrays() -> None:
    for bad in (
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ):
        with pytest.raises(ConversionError):
            encode_png(bad)
