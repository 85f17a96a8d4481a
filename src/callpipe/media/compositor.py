"""Compose several participants' pictures into one I420 canvas: grid and picture-in-picture.

The drawing is native (``native/src/cp_compose.c`` through the Cython module ``_compose``, the
GIL released): each tile is bilinear-scaled straight into its rectangle of the canvas, framed
by a border and labelled with a built-in 5x7 bitmap font; a participant without a picture gets
a placeholder tile showing its name.  Used by the demo and by apps as a preview; a composed
canvas is an ordinary :class:`~callpipe.media.frames.VideoFrame` (encode it, record it, or
write a PNG with :meth:`Compositor.snapshot_png`).

Layouts (all rectangles start on even pixels, so chroma edges are exact):

* ``"grid"``: ``cols = ceil(sqrt(n))``, ``rows = ceil(n / cols)`` equal tiles with ``gap_px``
  between and around them, the grid centred on the canvas, a short last row centred.
* ``"pip"``: the main participant fills the canvas; the others are thumbnails of
  ``pip_fraction`` of the canvas width along the bottom edge from the right, wrapping upwards.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._lifetime import Closeable
from ..errors import ClosedError, ConversionError, NativeModuleError
from .frames import VideoFrame, i420_size

try:
    from . import _compose as _native
except ImportError as _e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.media._compose is not built (run `make build`)", str(_e)
    ) from _e

__all__ = [
    "Compositor",
    "Rect",
    "compose_frames",
    "grid_layout",
    "pip_layout",
    "rgb_to_yuv",
    "LAYOUTS",
    "FITS",
]

Layout = Literal["grid", "pip"]
Fit = Literal["contain", "cover", "stretch"]
Colour = tuple[int, int, int]

#: Layout names.
LAYOUTS: frozenset[str] = frozenset({"grid", "pip"})
#: How a picture fills its tile: whole with bars, cropped to fill, or stretched.
FITS: dict[str, int] = {
    "contain": _native.FIT_CONTAIN,
    "cover": _native.FIT_COVER,
    "stretch": _native.FIT_STRETCH,
}


@dataclass(frozen=True, slots=True)
class Rect:
    """A tile rectangle on the canvas, in pixels."""

    x: int
    y: int
    width: int
    height: int


def rgb_to_yuv(rgb: Colour) -> Colour:
    """The BT.601 limited-range (Y, U, V) of an RGB colour, exactly as the native converter
    (:func:`callpipe.media.convert.to_i420`) computes it.

    :param rgb: (R, G, B), each 0..255.
    """
    from .convert import to_i420

    if len(rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
        raise ConversionError(f"colour must be an (R, G, B) triple of 0..255, got {rgb!r}")
    f = to_i420(np.array(rgb, dtype=np.uint8).reshape(1, 1, 3).repeat(2, 0).repeat(2, 1), "rgb24")
    return (int(f.y[0, 0]), int(f.u[0, 0]), int(f.v[0, 0]))


def _even(v: int) -> int:
    return v - (v & 1)


def _check_canvas(width: int, height: int) -> None:
    if not isinstance(width, int) or not isinstance(height, int):
        raise ConversionError(f"canvas size must be integers, got {width!r} x {height!r}")
    if not (2 <= width <= 16384 and 2 <= height <= 16384):
        raise ConversionError(f"canvas size {width}x{height} is out of range (2..16384 pixels)")


def grid_layout(n: int, width: int, height: int, gap_px: int = 4) -> list[Rect]:
    """Rectangles of an ``n``-tile grid on a ``width`` x ``height`` canvas.

    :param n: number of tiles (0 gives an empty list).
    :param width: canvas width in pixels.
    :param height: canvas height in pixels.
    :param gap_px: space between tiles and around the grid, pixels (rounded up to even).
    """
    _check_canvas(width, height)
    if not isinstance(n, int) or n < 0:
        raise ConversionError(f"tile count must be a non-negative integer, got {n!r}")
    if not isinstance(gap_px, int) or gap_px < 0:
        raise ConversionError(f"gap_px must be a non-negative integer, got {gap_px!r}")
    if n == 0:
        return []
    gap_px += gap_px & 1  # even gaps keep every tile on even pixels
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tw = _even((width - gap_px * (cols + 1)) // cols)
    th = _even((height - gap_px * (rows + 1)) // rows)
    if tw < 2 or th < 2:
        raise ConversionError(
            f"{n} tiles do not fit a {width}x{height} canvas with {gap_px} px gaps"
        )
    grid_h = rows * th + (rows - 1) * gap_px
    top = _even((height - grid_h) // 2)
    rects = []
    for r in range(rows):
        in_row = min(cols, n - r * cols)
        row_w = in_row * tw + (in_row - 1) * gap_px
        left = _even((width - row_w) // 2)
        for c in range(in_row):
            rects.append(Rect(left + c * (tw + gap_px), top + r * (th + gap_px), tw, th))
    return rects


def pip_layout(
    n: int, width: int, height: int, pip_fraction: float = 0.25, margin_px: int = 16
) -> list[Rect]:
    """Rectangles of a picture-in-picture layout: tile 0 fills the canvas, tiles 1.. are
    thumbnails along the bottom edge from the right (wrapping upwards when a row is full).

    :param n: number of tiles.
    :param width: canvas width in pixels.
    :param height: canvas height in pixels.
    :param pip_fraction: thumbnail width as a fraction of the canvas width (0.05..0.5).
    :param margin_px: space around thumbnails, pixels.
    """
    _check_canvas(width, height)
    if not isinstance(n, int) or n < 0:
        raise ConversionError(f"tile count must be a non-negative integer, got {n!r}")
    if not 0.05 <= pip_fraction <= 0.5:
        raise ConversionError(f"pip_fraction must be 0.05..0.5, got {pip_fraction!r}")
    if not isinstance(margin_px, int) or margin_px < 0:
        raise ConversionError(f"margin_px must be a non-negative integer, got {margin_px!r}")
    if n == 0:
        return []
    rects = [Rect(0, 0, width, height)]
    tw = max(2, _even(int(width * pip_fraction)))
    th = max(2, _even(tw * height // width))
    per_row = max(1, (width - margin_px) // (tw + margin_px))
    for k in range(n - 1):
        row, col = divmod(k, per_row)
        x = _even(width - (col + 1) * (tw + margin_px))
        y = _even(height - (row + 1) * (th + margin_px))
        rects.append(Rect(x, y, tw, th))
    return rects


@dataclass(frozen=True, slots=True)
class _Style:
    background: Colour
    placeholder: Colour
    border: Colour
    highlight: Colour
    text: Colour
    border_px: int
    label_scale: int
    fit: int

    def as_tuple(self) -> tuple[object, ...]:
        return (
            self.background,
            self.placeholder,
            self.border,
            self.highlight,
            self.text,
            self.border_px,
            self.label_scale,
            self.fit,
        )


def _make_style(
    background_rgb: Colour,
    placeholder_rgb: Colour,
    border_rgb: Colour,
    highlight_rgb: Colour,
    text_rgb: Colour,
    border_px: int,
    label_scale: int,
    fit: str,
) -> _Style:
    if fit not in FITS:
        raise ConversionError(f"unknown fit {fit!r}; use one of {', '.join(sorted(FITS))}")
    if not isinstance(border_px, int) or not 0 <= border_px <= 64:
        raise ConversionError(f"border_px must be 0..64 pixels, got {border_px!r}")
    if not isinstance(label_scale, int) or not 0 <= label_scale <= 16:
        raise ConversionError(f"label_scale must be 0 (automatic)..16, got {label_scale!r}")
    return _Style(
        rgb_to_yuv(background_rgb),
        rgb_to_yuv(placeholder_rgb),
        rgb_to_yuv(border_rgb),
        rgb_to_yuv(highlight_rgb),
        rgb_to_yuv(text_rgb),
        border_px,
        label_scale,
        FITS[fit],
    )


def _layout(
    kind: str, n: int, width: int, height: int, gap_px: int, pip_fraction: float
) -> list[Rect]:
    if kind == "grid":
        return grid_layout(n, width, height, gap_px)
    if kind == "pip":
        return pip_layout(n, width, height, pip_fraction, 2 * gap_px)
    raise ConversionError(f"unknown layout {kind!r}; use 'grid' or 'pip'")


def _draw(
    width: int,
    height: int,
    rects: Sequence[Rect],
    frames: Sequence[VideoFrame | None],
    labels: Sequence[str | None],
    highlights: Sequence[bool],
    style: _Style,
    pts: int,
) -> VideoFrame:
    canvas = VideoFrame.from_i420(np.empty(i420_size(width, height), np.uint8), width, height, pts)
    tiles: list[tuple[object, ...]] = []
    for rect, frame, label, hl in zip(rects, frames, labels, highlights, strict=True):
        planes = None if frame is None else (frame.y, frame.u, frame.v)
        tiles.append((planes, rect.x, rect.y, rect.width, rect.height, label, hl))
    _native.compose(canvas.y, canvas.u, canvas.v, tiles, style.as_tuple())
    return canvas


def compose_frames(
    frames: Sequence[VideoFrame | None],
    width: int = 1280,
    height: int = 720,
    layout: Layout = "grid",
    labels: Sequence[str | None] | None = None,
    *,
    fit: Fit = "contain",
    gap_px: int = 4,
    pip_fraction: float = 0.25,
    border_px: int = 2,
    label_scale: int = 0,
    highlight: int | None = None,
    pts: int = 0,
) -> VideoFrame:
    """Compose pictures into a new ``width`` x ``height`` I420 frame in one native call.

    :param frames: one picture per tile, ``None`` for a placeholder tile.
    :param width: canvas width in pixels.
    :param height: canvas height in pixels.
    :param layout: ``"grid"`` or ``"pip"`` (the first frame is the big one).
    :param labels: one label per tile (ASCII; ``None`` for none), or ``None`` for no labels.
    :param fit: ``"contain"`` (whole picture, bars), ``"cover"`` (crop to fill) or
        ``"stretch"``.
    :param gap_px: space between grid tiles, pixels (PiP margin: twice that).
    :param pip_fraction: PiP thumbnail width as a fraction of the canvas width.
    :param border_px: frame thickness inside each tile, pixels.
    :param label_scale: font pixel size in canvas pixels, 0 = from the tile height (1..4).
    :param highlight: index of a tile to frame in the highlight colour (active speaker).
    :param pts: timestamp of the canvas, 90 kHz ticks.
    :raises ConversionError: on a bad layout, size or argument.
    """
    frames = list(frames)
    for i, f in enumerate(frames):
        if f is not None and not isinstance(f, VideoFrame):
            raise ConversionError(f"frame {i} must be a VideoFrame or None, got {type(f).__name__}")
    labs = [None] * len(frames) if labels is None else list(labels)
    if len(labs) != len(frames):
        raise ConversionError(f"{len(labs)} labels for {len(frames)} frames")
    style = _make_style(
        (0, 0, 0),
        (48, 48, 56),
        (64, 64, 64),
        (0, 200, 80),
        (255, 255, 255),
        border_px,
        label_scale,
        fit,
    )
    rects = _layout(layout, len(frames), width, height, gap_px, pip_fraction)
    hls = [i == highlight for i in range(len(frames))]
    return _draw(width, height, rects, frames, labs, hls, style, pts)


@dataclass(slots=True)
class _Participant:
    label: str | None
    frame: VideoFrame | None = None


class Compositor(Closeable):
    """A live preview of a call: the latest picture of every participant, laid out on one
    I420 canvas.

    Thread-safe: :meth:`update` may run on receive threads while another thread calls
    :meth:`compose`; each composition works on the frames current when it starts.
    Participants keep the order in which they were added (the first is PiP's main picture
    unless :meth:`set_main` chose another).

    :param width: canvas width in pixels (2..16384; odd sizes work).
    :param height: canvas height in pixels.
    :param layout: ``"grid"`` or ``"pip"``.
    :param fit: ``"contain"``, ``"cover"`` or ``"stretch"`` (see :func:`compose_frames`).
    :param labels: draw participant labels.
    :param gap_px: space between grid tiles, pixels (PiP thumbnail margin: twice that).
    :param pip_fraction: PiP thumbnail width as a fraction of the canvas width.
    :param border_px: frame thickness inside each tile, pixels.
    :param label_scale: font pixel size in canvas pixels, 0 = from the tile height.
    :param background_rgb: canvas colour (R, G, B).
    :param placeholder_rgb: colour of a tile without a picture.
    :param border_rgb: tile frame colour.
    :param highlight_rgb: frame colour of the highlighted (speaking) participant.
    :param text_rgb: label colour.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        layout: Layout = "grid",
        fit: Fit = "contain",
        labels: bool = True,
        *,
        gap_px: int = 4,
        pip_fraction: float = 0.25,
        border_px: int = 2,
        label_scale: int = 0,
        background_rgb: Colour = (0, 0, 0),
        placeholder_rgb: Colour = (48, 48, 56),
        border_rgb: Colour = (64, 64, 64),
        highlight_rgb: Colour = (0, 200, 80),
        text_rgb: Colour = (255, 255, 255),
    ) -> None:
        _check_canvas(width, height)
        if layout not in LAYOUTS:
            raise ConversionError(f"unknown layout {layout!r}; use 'grid' or 'pip'")
        self.width, self.height = width, height
        self.layout: Layout = layout
        self.labels = bool(labels)
        self._gap = gap_px
        self._pip = pip_fraction
        self._style = _make_style(
            background_rgb,
            placeholder_rgb,
            border_rgb,
            highlight_rgb,
            text_rgb,
            border_px,
            label_scale,
            fit,
        )
        _layout(layout, 1, width, height, gap_px, pip_fraction)  # validates the geometry
        self._lock = threading.Lock()
        self._people: dict[Hashable, _Participant] = {}
        self._main: Hashable | None = None
        self._highlight: Hashable | None = None
        self._closed = False

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Drop every participant and picture (idempotent)."""
        with self._lock:
            self._closed = True
            self._people.clear()

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._closed

    def _live(self) -> None:
        if self._closed:
            raise ClosedError("Compositor is closed")

    # -- participants ---------------------------------------------------------------------
    def add(self, participant: Hashable, label: str | None = None) -> None:
        """Add a participant (shown as a placeholder until its first picture).

        :param participant: any hashable id.
        :param label: text under its tile (ASCII); default ``str(participant)``.
        """
        with self._lock:
            self._live()
            p = self._people.get(participant)
            text = str(participant) if label is None else label
            if p is None:
                self._people[participant] = _Participant(text)
            else:
                p.label = text

    def update(self, participant: Hashable, frame: VideoFrame | None) -> None:
        """Set a participant's latest picture (adding the participant if new).

        The compositor keeps a reference to ``frame`` (no copy): do not write into it
        afterwards.

        :param participant: the participant's id.
        :param frame: the picture, or ``None`` to show the placeholder (video off).
        """
        if frame is not None and not isinstance(frame, VideoFrame):
            raise ConversionError(f"frame must be a VideoFrame or None, got {type(frame).__name__}")
        with self._lock:
            self._live()
            p = self._people.get(participant)
            if p is None:
                p = self._people[participant] = _Participant(str(participant))
            p.frame = frame

    def remove(self, participant: Hashable) -> None:
        """Remove a participant (no error when absent)."""
        with self._lock:
            self._live()
            self._people.pop(participant, None)
            if self._main == participant:
                self._main = None
            if self._highlight == participant:
                self._highlight = None

    def set_main(self, participant: Hashable | None) -> None:
        """Choose the participant PiP shows full-size (``None``: the first added)."""
        with self._lock:
            self._live()
            self._main = participant

    def set_highlight(self, participant: Hashable | None) -> None:
        """Frame one participant's tile in the highlight colour (``None``: nobody)."""
        with self._lock:
            self._live()
            self._highlight = participant

    @property
    def participants(self) -> list[Hashable]:
        """Participant ids in tile order."""
        with self._lock:
            return self._order()

    def _order(self) -> list[Hashable]:
        ids = list(self._people)
        if self.layout == "pip" and self._main in self._people:
            ids.remove(self._main)
            ids.insert(0, self._main)
        return ids

    def tile_rects(self) -> dict[Hashable, Rect]:
        """Where each participant's tile goes on the canvas now."""
        with self._lock:
            ids = self._order()
        rects = _layout(self.layout, len(ids), self.width, self.height, self._gap, self._pip)
        return dict(zip(ids, rects, strict=True))

    # -- output ---------------------------------------------------------------------------
    def compose(self, pts: int = 0) -> VideoFrame:
        """A new canvas with every participant's latest picture (native, GIL released).

        :param pts: timestamp of the canvas, 90 kHz ticks.
        :raises ClosedError: after :meth:`close`.
        """
        with self._lock:
            self._live()
            ids = self._order()
            people = [self._people[i] for i in ids]
            frames = [p.frame for p in people]
            labels = [p.label if self.labels else None for p in people]
            hls = [i == self._highlight for i in ids]
        rects = _layout(self.layout, len(ids), self.width, self.height, self._gap, self._pip)
        return _draw(self.width, self.height, rects, frames, labels, hls, self._style, pts)

    def snapshot_png(self, path: str | os.PathLike[str]) -> VideoFrame:
        """Compose and write the canvas as an RGB PNG file.

        :param path: file to create or overwrite.
        :returns: the composed canvas.
        """
        from .png import save_frame_png

        canvas = self.compose()
        save_frame_png(canvas, path)
        return canvas

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._people)} participants"
        return f"<Compositor {self.width}x{self.height} {self.layout} {state}>"
