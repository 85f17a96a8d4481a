"""Compositor (callpipe.media.compositor over native/src/cp_compose.c): layouts, exact tile
colours, labels, placeholders, odd sizes, fit modes, PNG snapshots, argument checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from callpipe.errors import ClosedError, ConversionError
from callpipe.media import SyntheticVideoSource, VideoFrame, read_stamp
from callpipe.media import _compose as native
from callpipe.media.compositor import (
    Compositor,
    Rect,
    compose_frames,
    grid_layout,
    pip_layout,
    rgb_to_yuv,
)
from callpipe.media.convert import from_i420, to_i420
from callpipe.media.png import read_png

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(w: int, h: int, rgb: tuple[int, int, int]) -> VideoFrame:
    return to_i420(np.full((h, w, 3), rgb, np.uint8), "rgb24")


def yuv_at(f: VideoFrame, x: int, y: int) -> tuple[int, int, int]:
    return (int(f.y[y, x]), int(f.u[y // 2, x // 2]), int(f.v[y // 2, x // 2]))


def test_grid_layout_positions() -> None:
    assert grid_layout(1, 1280, 720, gap_px=0) == [Rect(0, 0, 1280, 720)]
    assert grid_layout(2, 1280, 720, gap_px=4) == [Rect(4, 4, 634, 712), Rect(642, 4, 634, 712)]
    four = grid_layout(4, 640, 360, gap_px=0)
    assert four == [
        Rect(0, 0, 320, 180),
        Rect(320, 0, 320, 180),
        Rect(0, 180, 320, 180),
        Rect(320, 180, 320, 180),
    ]
    three = grid_layout(3, 640, 360, gap_px=0)  # short last row, centred
    assert three[2] == Rect(160, 180, 320, 180)
    for n in range(1, 17):
        rects = grid_layout(n, 1281, 721)
        assert len(rects) == n
        for r in rects:
            assert r.x % 2 == r.y % 2 == r.width % 2 == r.height % 2 == 0
            assert 0 <= r.x and r.x + r.width <= 1281 and 0 <= r.y and r.y + r.height <= 721
        for i, a in enumerate(rects):  # no overlaps
            for b in rects[i + 1 :]:
                assert (
                    a.x + a.width <= b.x
                    or b.x + b.width <= a.x
                    or a.y + a.height <= b.y
                    or b.y + b.height <= a.y
                )
    assert grid_layout(0, 64, 64) == []
    with pytest.raises(ConversionError, match="do not fit"):
        grid_layout(100, 16, 16)


def test_pip_layout_positions() -> None:
    rects = pip_layout(3, 1280, 720, pip_fraction=0.25, margin_px=16)
    assert rects[0] == Rect(0, 0, 1280, 720)
    assert rects[1] == Rect(1280 - 336, 720 - 196, 320, 180)
    assert rects[2] == Rect(1280 - 672, 720 - 196, 320, 180)
    wrapped = pip_layout(6, 1280, 720)  # 3 thumbnails per row, then the next row up
    assert wrapped[4].y < wrapped[1].y and wrapped[4].x == wrapped[1].x
    with pytest.raises(ConversionError, match="pip_fraction"):
        pip_layout(2, 640, 360, pip_fraction=0.9)


def test_grid_tiles_have_exact_colours_and_positions() -> None:
    frames = [solid(64, 36, RED), solid(64, 36, GREEN), solid(64, 36, BLUE), None]
    canvas = compose_frames(frames, 640, 360, gap_px=0, border_px=0, fit="stretch")
    assert (canvas.width, canvas.height) == (640, 360)
    rects = grid_layout(4, 640, 360, gap_px=0)
    for rect, rgb in zip(rects[:3], (RED, GREEN, BLUE), strict=True):
        want = rgb_to_yuv(rgb)
        y = canvas.y[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width]
        u = canvas.u[
            rect.y // 2 : (rect.y + rect.height) // 2, rect.x // 2 : (rect.x + rect.width) // 2
        ]
        assert np.all(y == want[0]) and np.all(u == want[1])
    # the fourth participant has no picture: the placeholder colour and its "no video" text
    ph = rgb_to_yuv((48, 48, 56))
    r = rects[3]
    tile = canvas.y[r.y : r.y + r.height, r.x : r.x + r.width]
    assert (tile == ph[0]).mean() > 0.9
    assert (tile == rgb_to_yuv((255, 255, 255))[0]).sum() > 50


def test_background_border_and_highlight() -> None:
    frames = [solid(32, 32, RED), solid(32, 32, GREEN)]
    canvas = compose_frames(frames, 200, 100, gap_px=8, border_px=3, highlight=1, fit="stretch")
    rects = grid_layout(2, 200, 100, gap_px=8)
    assert yuv_at(canvas, 2, 2) == rgb_to_yuv((0, 0, 0))  # the gap around the grid
    a, b = rects
    assert yuv_at(canvas, a.x, a.y + 10) == rgb_to_yuv((64, 64, 64))  # border of tile 0
    assert yuv_at(canvas, b.x + 1, b.y + 10) == rgb_to_yuv((0, 200, 80))  # highlighted tile 1
    assert yuv_at(canvas, a.x + 3 + 1, a.y + 10) == rgb_to_yuv(RED)  # just inside the border


def test_labels_change_pixels_where_the_text_is() -> None:
    src = solid(320, 180, BLUE)
    plain = compose_frames([src], 640, 360, gap_px=0, border_px=0, fit="stretch")
    labelled = compose_frames(
        [src], 640, 360, labels=["Alice 42"], gap_px=0, border_px=0, fit="stretch"
    )
    diff = np.argwhere(plain.y != labelled.y)
    assert len(diff) > 100
    scale = 3  # automatic: tile height 360 // 100
    box_w = native.text_width("Alice 42", scale) + 4 * scale
    box_h = 7 * scale + 4 * scale
    # every changed pixel is inside the label box at the bottom left of the tile
    y0, x0 = 360 - 2 * scale - box_h, 2 * scale
    assert diff[:, 0].min() >= y0 and diff[:, 0].max() < y0 + box_h
    assert diff[:, 1].min() >= x0 and diff[:, 1].max() < x0 + box_w
    white = rgb_to_yuv((255, 255, 255))[0]
    assert (labelled.y == white).sum() > 30 * scale * scale  # glyph dots, scale x scale each
    # the box is a shaded (darker) version of the picture
    assert labelled.y[y0 + 1, x0 + 1] < plain.y[y0 + 1, x0 + 1]


def test_font_and_text_primitives() -> None:
    assert native.text_width("", 2) == 0 and native.text_width("AB", 1) == 11
    assert native.glyph(ord("!")) == bytes([4, 4, 4, 4, 4, 0, 4])
    assert native.glyph(0xE9) == native.glyph(ord("?"))
    c = VideoFrame.blank(40, 20)
    native.text(c.y, c.u, c.v, 0, 0, "I", 1, (235, 128, 128))
    rows = native.glyph(ord("I"))
    drawn = (c.y[:7, :5] == 235).astype(int)
    want = np.array([[(r >> (4 - k)) & 1 for k in range(5)] for r in rows])
    assert np.array_equal(drawn, want)
    assert (c.y == 235).sum() == want.sum()
    # clipping
    c = VideoFrame.blank(40, 20)
    native.text(c.y, c.u, c.v, -3, -3, "WWWWWWWW", 2, (235, 128, 128), clip=(2, 2, 10, 6))
    assert (c.y == 235).sum() == (c.y[2:8, 2:12] == 235).sum() > 0


@pytest.mark.parametrize("w,h", [(321, 241), (99, 13), (1281, 719), (15, 11)])
@pytest.mark.parametrize("fit", ["contain", "cover", "stretch"])
def test_odd_canvas_and_source_sizes(w: int, h: int, fit: str) -> None:
    frames = [solid(33, 17, RED), solid(7, 5, GREEN), solid(1, 1, BLUE)]
    canvas = compose_frames(frames, w, h, fit=fit, gap_px=2, border_px=0)  # type: ignore[arg-type]
    assert (canvas.width, canvas.height) == (w, h)
    assert canvas.u.shape == ((h + 1) // 2, (w + 1) // 2)
    assert (canvas.y == rgb_to_yuv(RED)[0]).any() and (canvas.y == rgb_to_yuv(BLUE)[0]).any()


def test_too_many_tiles_for_the_canvas() -> None:
    with pytest.raises(ConversionError, match="do not fit"):
        compose_frames([None] * 3, 2, 2)


def test_fit_modes() -> None:
    tall = solid(20, 40, GREEN)
    g, bg = rgb_to_yuv(GREEN), rgb_to_yuv((0, 0, 0))
    contain = compose_frames([tall], 200, 100, fit="contain", gap_px=0, border_px=0)
    assert yuv_at(contain, 100, 50) == g and yuv_at(contain, 10, 50) == bg  # bars left/right
    assert (contain.y[:, 100] == g[0]).all()  # full height
    cover = compose_frames([tall], 200, 100, fit="cover", gap_px=0, border_px=0)
    assert (cover.y == g[0]).all()
    stretch = compose_frames([tall], 200, 100, fit="stretch", gap_px=0, border_px=0)
    assert (stretch.y == g[0]).all()


def test_scaled_picture_keeps_its_content() -> None:
    src = SyntheticVideoSource(256, 144).render(77, capture_ms=5)  # 8-pixel stamp blocks
    canvas = compose_frames([src], 512, 288, gap_px=0, border_px=0, fit="stretch")
    stamp = read_stamp(canvas)  # 16-pixel blocks after a 2x bilinear upscale
    assert stamp is not None and stamp.frame_number == 77
    small = compose_frames([src], 256, 144, gap_px=0, border_px=0, fit="stretch")
    assert np.array_equal(small.y, src.y)  # 1:1 is an exact copy


def test_compositor_participants_placeholder_and_png(tmp_path: Path) -> None:
    with Compositor(320, 180, border_px=0, gap_px=0, fit="stretch") as comp:
        comp.update("alice", solid(64, 36, RED))
        comp.add("bob", label="Bob")  # no picture yet: placeholder
        comp.update("carol", solid(64, 36, GREEN))
        assert comp.participants == ["alice", "bob", "carol"]
        rects = comp.tile_rects()
        canvas = comp.compose(pts=9000)
        assert canvas.pts == 9000
        assert yuv_at(canvas, rects["alice"].x + 4, rects["alice"].y + 4) == rgb_to_yuv(RED)
        bob = rects["bob"]
        assert yuv_at(canvas, bob.x + 2, bob.y + 2) == rgb_to_yuv((48, 48, 56))
        comp.update("bob", solid(64, 36, BLUE))
        assert yuv_at(comp.compose(), bob.x + 2, bob.y + 2) == rgb_to_yuv(BLUE)
        comp.update("bob", None)  # video off again
        assert yuv_at(comp.compose(), bob.x + 2, bob.y + 2) == rgb_to_yuv((48, 48, 56))
        comp.remove("carol")
        assert comp.participants == ["alice", "bob"]
        path = tmp_path / "snap.png"
        snap = comp.snapshot_png(path)
        assert np.array_equal(read_png(path), from_i420(snap, "rgb24"))
    with pytest.raises(ClosedError):
        comp.compose()
    comp.close()  # idempotent


def test_pip_main_participant() -> None:
    comp = Compositor(320, 180, layout="pip", border_px=0, fit="stretch", labels=False)
    comp.update("a", solid(32, 18, RED))
    comp.update("b", solid(32, 18, GREEN))
    canvas = comp.compose()
    assert yuv_at(canvas, 10, 10) == rgb_to_yuv(RED)  # first added is main
    comp.set_main("b")
    canvas = comp.compose()
    assert yuv_at(canvas, 10, 10) == rgb_to_yuv(GREEN)
    thumb = comp.tile_rects()["a"]
    assert yuv_at(canvas, thumb.x + thumb.width // 2, thumb.y + thumb.height // 2) == rgb_to_yuv(
        RED
    )


def test_bad_arguments_raise_and_object_stays_usable() -> None:
    comp = Compositor(64, 36)
    with pytest.raises(ConversionError):
        comp.update("x", np.zeros((4, 4, 3), np.uint8))  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="layout"):
        Compositor(64, 36, layout="mosaic")  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="fit"):
        Compositor(64, 36, fit="zoom")  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="colour"):
        Compositor(64, 36, background_rgb=(300, 0, 0))
    with pytest.raises(ConversionError):
        Compositor(1, 36)
    comp.update("x", solid(8, 8, RED))
    assert comp.compose().width == 64
    c = VideoFrame.blank(16, 16)
    ro = c.y.copy()
    ro.flags.writeable = False
    with pytest.raises(ConversionError, match="read-only"):
        native.fill(ro, c.u, c.v, 0, 0, 4, 4, (1, 2, 3))
    with pytest.raises(ConversionError, match="shape"):
        native.fill(c.y, c.u[:4], c.v, 0, 0, 4, 4, (1, 2, 3))
    with pytest.raises(ConversionError, match="out of range"):
        native.fill(c.y, c.u, c.v, 1 << 30, 0, 4, 4, (1, 2, 3))
    with pytest.raises(ConversionError, match="overlap"):
        native.compose(
            c.y,
            c.u,
            c.v,
            [((c.y, c.u, c.v), 0, 0, 8, 8, None, False)],
            ((0, 0, 0),) * 5 + (0, 0, 0),
        )


def test_compose_while_updating_from_threads() -> None:
    comp = Compositor(160, 90)
    src = SyntheticVideoSource(64, 36)
    stop = threading.Event()

    def feed(name: str) -> None:
        n = 0
        while not stop.is_set():
            comp.update(name, src.render(n))
            n += 1

    threads = [threading.Thread(target=feed, args=(f"p{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(30):
            assert comp.compose().width == 160
    finally:
        stop.set()
        for t in threads:
            t.join()
