"""Colour conversion: callpipe's native RGB24/BGRA -> I420 against swscale (PyAV ``reformat``).

Same frame on both sides, interleaved rounds; each round times ``per_round`` calls and reports
calls per second.  A plain numpy copy of the same bytes is reported too, as the memory-bandwidth
floor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import Comparison, interleave

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def _picture(w: int, h: int, bpp: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.empty((h, w, bpp), np.uint8)
    arr[..., 0] = xx * 255 // w
    arr[..., 1] = yy * 255 // h
    arr[..., 2] = (xx ^ yy) & 255
    if bpp == 4:
        arr[..., 3] = 255
    return arr


def _rate(fn: Callable[[], object], calls: int) -> float:
    import time

    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls / (time.perf_counter() - t0)


def run_suite(
    sizes: list[str], repeats: int, progress: Callable[[str], None] | None = None, calls: int = 30
) -> list[Comparison]:
    """RGB24 and BGRA -> I420 at each size: callpipe vs swscale (1 thread) and vs a numpy copy.

    :param sizes: keys of ``SIZES``.
    :param repeats: interleaved rounds per side.
    :param calls: conversions per round.
    """
    import av

    from ..media.convert import to_i420

    out: list[Comparison] = []
    for size in sizes:
        w, h = SIZES[size]
        for fmt, bpp in (("rgb24", 3), ("bgra", 4)):
            arr = _picture(w, h, bpp)
            avf = av.VideoFrame.from_ndarray(arr, format=fmt)

            def ours(arr: np.ndarray = arr, fmt: str = fmt) -> float:
                return _rate(lambda: to_i420(arr, fmt), calls)

            def swscale(avf: av.VideoFrame = avf) -> float:
                return _rate(lambda: avf.reformat(format="yuv420p", threads=1), calls)

            def copy(arr: np.ndarray = arr) -> float:
                return _rate(arr.copy, calls)

            name = f"{fmt} -> I420 {size}"
            out.append(
                interleave(
                    Comparison(name, "frames/s", "PyAV reformat (swscale, 1 thread)", target=5.0),
                    ours,
                    swscale,
                    repeats,
                    progress,
                )
            )
            out.append(
                interleave(
                    Comparison(name, "frames/s", "numpy copy of the input"),
                    ours,
                    copy,
                    repeats,
                    progress,
                )
            )
    return out
