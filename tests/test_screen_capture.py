"""Screen capture for real: start Xvfb on a free display, put a known picture on the root window
(through a tiny X11 client speaking the core protocol over the server's Unix socket: no
toolkit or X utilities needed), capture it with DeviceSource(kind="screen") and compare."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from callpipe.media import DeviceNotFoundError, DeviceSource, SyntheticVideoSource, read_stamp
from callpipe.media.convert import psnr, to_i420
from callpipe.media.sources import available_devices

XVFB = shutil.which("Xvfb")
pytestmark = pytest.mark.skipif(XVFB is None, reason="Xvfb not installed (make deps)")
SW, SH = 320, 240


class X11:
    """Just enough of the X11 core protocol (little-endian) to paint RGB pixels on the root
    window: connection set-up, CreateGC, PutImage (ZPixmap), and GetInputFocus as a sync."""

    def __init__(self, display: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(f"/tmp/.X11-unix/X{display}")
        # byte order 'l', protocol 11.0, no authorisation (Xvfb runs with -ac)
        self.sock.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = self._recv(8)
        assert head[0] == 1, "X server refused the connection"
        setup = self._recv(struct.unpack_from("<H", head, 6)[0] * 4)
        rid_base = struct.unpack_from("<I", setup, 4)[0]
        vendor_len, self.max_request = struct.unpack_from("<HH", setup, 16)
        n_formats = setup[21]
        off = 32 + (vendor_len + 3) // 4 * 4
        bpp_of_depth = {setup[off + 8 * i]: setup[off + 8 * i + 1] for i in range(n_formats)}
        off += 8 * n_formats  # the first SCREEN
        self.root = struct.unpack_from("<I", setup, off)[0]
        self.width, self.height = struct.unpack_from("<HH", setup, off + 20)
        self.depth = setup[off + 38]
        assert bpp_of_depth[self.depth] == 32, "expected 32 bits per pixel at depth 24"
        self.gc = rid_base | 1
        self.sock.sendall(struct.pack("<BxHIII", 55, 4, self.gc, self.root, 0))  # CreateGC

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("X server closed the connection")
            data += chunk
        return data

    def put_rgb(self, rgb: npt.NDArray[np.uint8], x: int = 0, y: int = 0) -> None:
        h, w, _ = rgb.shape
        pixels = np.zeros((h, w, 4), np.uint8)  # ZPixmap at depth 24: B, G, R, pad
        pixels[..., :3] = rgb[..., ::-1]
        rows = max(1, (self.max_request * 4 - 24) // (w * 4))
        for r0 in range(0, h, rows):
            data = pixels[r0 : r0 + rows].tobytes()
            n = len(data) // (w * 4)
            self.sock.sendall(
                struct.pack("<BBHIIHHhhBBxx", 72, 2, 6 + len(data) // 4, self.root, self.gc,
                            w, n, x, y + r0, 0, self.depth) + data
            )  # fmt: skip
        self.sync()

    def sync(self) -> None:
        """Round trip: when the reply comes, every earlier request has been executed."""
        self.sock.sendall(struct.pack("<BxH", 43, 1))  # GetInputFocus
        while True:
            msg = self._recv(32)
            if msg[0] == 0:
                raise RuntimeError(f"X11 error {msg[1]} for request {msg[10]}")
            if msg[0] == 1:
                self._recv(struct.unpack_from("<I", msg, 4)[0] * 4)
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def xvfb() -> Iterator[int]:
    """Xvfb on a display number it picks itself (-displayfd): never clashes with another.
    -noreset keeps the picture when the painting client disconnects."""
    assert XVFB is not None
    rfd, wfd = os.pipe()
    proc = subprocess.Popen(
        [XVFB, "-displayfd", str(wfd), "-screen", "0", f"{SW}x{SH}x24", "-nolisten", "tcp",
         "-ac", "-nocursor", "-noreset"],
        pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(wfd)
    try:
        with os.fdopen(rfd, "rb") as f:
            line = f.readline()
        if not line.strip():
            pytest.fail("Xvfb did not start")
        yield int(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def picture(xvfb: int) -> npt.NDArray[np.uint8]:
    """Four colour quadrants and a stamped synthetic picture in the middle, on the screen."""
    pic = np.zeros((SH, SW, 3), np.uint8)
    pic[: SH // 2, : SW // 2] = (255, 0, 0)
    pic[: SH // 2, SW // 2 :] = (0, 255, 0)
    pic[SH // 2 :, : SW // 2] = (0, 0, 255)
    pic[SH // 2 :, SW // 2 :] = (255, 255, 255)
    stamped = SyntheticVideoSource(128, 32).render(4242, capture_ms=99)
    pic[104:136, 96:224] = stamped.to_ndarray("rgb24")
    x = X11(xvfb)
    try:
        assert (x.width, x.height) == (SW, SH)
        x.put_rgb(pic)
    finally:
        x.close()
    return pic


def test_capture_whole_screen_matches_the_picture(
    xvfb: int, picture: npt.NDArray[np.uint8]
) -> None:
    with DeviceSource("screen", f":{xvfb}", fps=10) as src:
        first, second = src.read(), src.read()
    assert first is not None and second is not None
    assert (first.width, first.height) == (SW, SH)
    assert second.pts > first.pts == 0
    # captured BGR0 -> our converter: the same I420 as converting the picture itself
    assert psnr(to_i420(picture, "rgb24"), first) >= 48.0
    rgb = first.to_ndarray("rgb24").astype(int)
    for (y, x), want in {
        (20, 20): (255, 0, 0),
        (20, 300): (0, 255, 0),
        (220, 20): (0, 0, 255),
        (220, 300): (255, 255, 255),
    }.items():
        assert np.abs(rgb[y, x] - want).max() <= 3, (y, x, rgb[y, x])
    region = to_i420(np.ascontiguousarray(first.to_ndarray("rgb24")[104:136, 96:224]), "rgb24")
    stamp = read_stamp(region)
    assert stamp is not None and (stamp.frame_number, stamp.capture_ms) == (4242, 99)


def test_capture_a_region(xvfb: int, picture: npt.NDArray[np.uint8]) -> None:
    with DeviceSource("screen", f":{xvfb}", fps=10, x=96, y=104, width=128, height=32) as src:
        frame = src.read()
    assert frame is not None and (frame.width, frame.height) == (128, 32)
    stamp = read_stamp(frame)
    assert stamp is not None and stamp.frame_number == 4242
    assert psnr(to_i420(np.ascontiguousarray(picture[104:136, 96:224]), "rgb24"), frame) >= 48.0


def test_async_capture(xvfb: int, picture: npt.NDArray[np.uint8]) -> None:
    import asyncio

    async def grab(n: int) -> list[int]:
        out = []
        src = DeviceSource("screen", f":{xvfb}", fps=20, width=64, height=64)
        async for frame in src:
            out.append(frame.pts)
            if len(out) == n:
                break
        src.close()
        return out

    pts = asyncio.run(grab(3))
    assert pts == sorted(pts) and len(set(pts)) == 3


def test_missing_display_lists_the_running_one(xvfb: int) -> None:
    assert f":{xvfb}" in available_devices("screen")
    with pytest.raises(DeviceNotFoundError) as e:
        DeviceSource("screen", ":4242")
    assert f":{xvfb}" in e.value.available and ":4242" in str(e.value)
