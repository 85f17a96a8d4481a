# cython: language_level=3
"""Bindings of native/src/cp_compose.c (I420 composition: fills, scaling, text, layouts).

Low level: callers pass numpy ``uint8`` planes (see ``callpipe.media.compositor`` for the public
API).  Every array is checked here (type, dtype, shape, unit column stride, writability) and any
problem raises :class:`callpipe.errors.ConversionError`.  The GIL is released around every C
call that touches pixels.
"""

from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free

import numpy as np

from ..errors import ConversionError

cdef extern from "callpipe/cp_compose.h" nogil:
    enum:
        CP_COMPOSE_OK
        CP_COMPOSE_EINVAL
        CP_COMPOSE_ENOMEM
        CP_FIT_CONTAIN
        CP_FIT_COVER
        CP_FIT_STRETCH
        CP_FONT_WIDTH
        CP_FONT_HEIGHT
        CP_FONT_ADVANCE

    ctypedef struct cp_image:
        uint8_t *y
        uint8_t *u
        uint8_t *v
        Py_ssize_t y_stride
        Py_ssize_t u_stride
        Py_ssize_t v_stride
        int width
        int height

    ctypedef struct cp_compose_tile:
        const uint8_t *y
        const uint8_t *u
        const uint8_t *v
        Py_ssize_t y_stride
        Py_ssize_t u_stride
        Py_ssize_t v_stride
        int src_width
        int src_height
        int x
        int y_pos
        int width
        int height
        const char *label
        int highlight

    ctypedef struct cp_compose_style:
        uint8_t background[3]
        uint8_t placeholder[3]
        uint8_t border[3]
        uint8_t highlight[3]
        uint8_t text[3]
        int border_px
        int label_scale
        int fit

    int cp_compose_fill(const cp_image *dst, int x, int y, int width, int height, int cy,
                        int cu, int cv)
    int cp_compose_shade(const cp_image *dst, int x, int y, int width, int height,
                         int keep_256)
    int cp_compose_scale(const uint8_t *src_y, Py_ssize_t src_y_stride, const uint8_t *src_u,
                         Py_ssize_t src_u_stride, const uint8_t *src_v,
                         Py_ssize_t src_v_stride, int src_width, int src_height,
                         const cp_image *dst, int x, int y, int width, int height)
    int cp_compose_text_width(const char *text, int scale)
    int cp_compose_text(const cp_image *dst, int x, int y, const char *text, int scale, int cy,
                        int cu, int cv, int clip_x, int clip_y, int clip_w, int clip_h)
    void cp_compose_glyph(int c, uint8_t *rows)
    int cp_compose(const cp_image *canvas, const cp_compose_tile *tiles, int n_tiles,
                   const cp_compose_style *style)

FIT_CONTAIN = CP_FIT_CONTAIN
FIT_COVER = CP_FIT_COVER
FIT_STRETCH = CP_FIT_STRETCH
FONT_WIDTH = CP_FONT_WIDTH
FONT_HEIGHT = CP_FONT_HEIGHT
FONT_ADVANCE = CP_FONT_ADVANCE

#: largest picture side the C code accepts, in pixels
MAX_DIM = 65536
#: largest coordinate magnitude the C code accepts, in pixels
COORD_LIMIT = 1 << 24

cdef object _U8 = np.dtype(np.uint8)


cdef _check_plane(object a, str name, tuple shape, bint writable):
    if not isinstance(a, np.ndarray):
        raise ConversionError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != _U8 or a.ndim != 2:
        raise ConversionError(f"{name} must be a 2-D uint8 array, got {a.dtype} {a.shape}")
    if shape is not None and a.shape != shape:
        raise ConversionError(f"{name} must have shape {shape}, got {a.shape}")
    if a.strides[1] != 1:
        raise ConversionError(f"{name} must have contiguous rows (column stride 1 byte)")
    if writable and not a.flags.writeable:
        raise ConversionError(f"{name} is read-only")


cdef tuple _check_i420(y, u, v, str what, bint writable):
    _check_plane(y, f"{what} y plane", None, writable)
    cdef int h = y.shape[0], w = y.shape[1]
    if w < 1 or h < 1 or w > MAX_DIM or h > MAX_DIM:
        raise ConversionError(f"{what} size {w}x{h} is out of range (1..{MAX_DIM} pixels)")
    cshape = ((h + 1) // 2, (w + 1) // 2)
    _check_plane(u, f"{what} u plane", cshape, writable)
    _check_plane(v, f"{what} v plane", cshape, writable)
    return (w, h)


cdef int _coord(object v, str name) except? -1:
    if not isinstance(v, (int, np.integer)):
        raise ConversionError(f"{name} must be an integer number of pixels, got {v!r}")
    if not -COORD_LIMIT < v < COORD_LIMIT:
        raise ConversionError(f"{name} = {v} pixels is out of range (|value| < 2**24)")
    return v


cdef int _level(object v, str name) except? -1:
    if not isinstance(v, (int, np.integer)) or not 0 <= v <= 255:
        raise ConversionError(f"{name} must be 0..255, got {v!r}")
    return v


cdef class _Canvas:
    """Keeps memoryviews of the canvas planes alive and describes them as a cp_image."""
    cdef cp_image im
    cdef uint8_t[:, :] my, mu, mv

    def __cinit__(self, y, u, v):
        w, h = _check_i420(y, u, v, "canvas", True)
        self.my = y
        self.mu = u
        self.mv = v
        self.im.y = &self.my[0, 0]
        self.im.u = &self.mu[0, 0]
        self.im.v = &self.mv[0, 0]
        self.im.y_stride = self.my.strides[0]
        self.im.u_stride = self.mu.strides[0]
        self.im.v_stride = self.mv.strides[0]
        self.im.width = w
        self.im.height = h


cdef _check_rc(int rc, str what):
    if rc == CP_COMPOSE_OK:
        return
    if rc == CP_COMPOSE_ENOMEM:
        raise MemoryError(f"{what}: out of memory for scratch rows")
    raise ConversionError(f"{what}: invalid arguments (status {rc})")


cdef bytes _ascii(object text):
    if text is None:
        return None
    if not isinstance(text, str):
        raise ConversionError(f"label text must be a str, got {type(text).__name__}")
    return text.encode("ascii", "replace").replace(b"\0", b"?")


def fill(y, u, v, x, top, width, height, colour):
    """Fill the rectangle (x, top, width, height) of a canvas with a (Y, U, V) colour."""
    cdef _Canvas c = _Canvas(y, u, v)
    cdef int ix = _coord(x, "x"), iy = _coord(top, "y")
    cdef int iw = _coord(width, "width"), ih = _coord(height, "height")
    cdef int cy = _level(colour[0], "Y"), cu = _level(colour[1], "U"), cv = _level(colour[2], "V")
    cdef int rc
    with nogil:
        rc = cp_compose_fill(&c.im, ix, iy, iw, ih, cy, cu, cv)
    _check_rc(rc, "fill")


def shade(y, u, v, x, top, width, height, int keep_256):
    """Darken a rectangle of a canvas towards black, keeping keep_256/256 of each level."""
    if not 0 <= keep_256 <= 256:
        raise ConversionError(f"keep_256 must be 0..256, got {keep_256}")
    cdef _Canvas c = _Canvas(y, u, v)
    cdef int ix = _coord(x, "x"), iy = _coord(top, "y")
    cdef int iw = _coord(width, "width"), ih = _coord(height, "height")
    cdef int rc
    with nogil:
        rc = cp_compose_shade(&c.im, ix, iy, iw, ih, keep_256)
    _check_rc(rc, "shade")


def scale_into(sy, su, sv, y, u, v, x, top, width, height):
    """Bilinear-scale the I420 picture sy/su/sv into the rectangle (x, top, width, height)."""
    sw, sh = _check_i420(sy, su, sv, "source", False)
    cdef _Canvas c = _Canvas(y, u, v)
    for a in (sy, su, sv):
        for b in (y, u, v):
            if np.may_share_memory(a, b):
                raise ConversionError("the source picture must not overlap the canvas")
    cdef const uint8_t[:, :] my = sy, mu = su, mv = sv
    cdef int ix = _coord(x, "x"), iy = _coord(top, "y")
    cdef int iw = _coord(width, "width"), ih = _coord(height, "height")
    cdef int isw = sw, ish = sh, rc
    with nogil:
        rc = cp_compose_scale(&my[0, 0], my.strides[0], &mu[0, 0], mu.strides[0], &mv[0, 0],
                              mv.strides[0], isw, ish, &c.im, ix, iy, iw, ih)
    _check_rc(rc, "scale")


def text_width(text, int scale=1):
    """Width in pixels of ``text`` drawn at ``scale`` (0 for an empty string)."""
    if scale < 1 or scale > 256:
        raise ConversionError(f"text scale must be 1..256, got {scale}")
    cdef bytes b = _ascii(text)
    return cp_compose_text_width(b, scale)


def text(y, u, v, x, top, label, int scale, colour, clip=None):
    """Draw ``label`` with its top-left corner at (x, top); clip to (cx, cy, cw, ch)."""
    if scale < 1 or scale > 256:
        raise ConversionError(f"text scale must be 1..256, got {scale}")
    cdef _Canvas c = _Canvas(y, u, v)
    cdef bytes b = _ascii(label)
    if b is None:
        raise ConversionError("label text must be a str")
    if clip is None:
        clip = (0, 0, c.im.width, c.im.height)
    cdef int ix = _coord(x, "x"), iy = _coord(top, "y")
    cdef int cx = _coord(clip[0], "clip x"), cyy = _coord(clip[1], "clip y")
    cdef int cw = _coord(clip[2], "clip width"), ch = _coord(clip[3], "clip height")
    cdef int ly = _level(colour[0], "Y"), lu = _level(colour[1], "U"), lv = _level(colour[2], "V")
    cdef const char *p = b
    cdef int rc
    with nogil:
        rc = cp_compose_text(&c.im, ix, iy, p, scale, ly, lu, lv, cx, cyy, cw, ch)
    _check_rc(rc, "text")


def glyph(int c):
    """The 7 rows of the 5x7 font glyph of character code ``c`` (bit 4 = leftmost pixel)."""
    cdef uint8_t rows[7]
    cp_compose_glyph(c, rows)
    return bytes([rows[i] for i in range(7)])


def compose(y, u, v, list tiles, tuple style):
    """Draw a layout on the canvas y/u/v.

    ``tiles``: ``(planes, x, top, width, height, label, highlight)`` tuples, ``planes`` a
    ``(y, u, v)`` tuple of a source picture or ``None`` for a placeholder, ``label`` a str or
    ``None``.  ``style``: ``(background, placeholder, border, highlight, text, border_px,
    label_scale, fit)`` with (Y, U, V) colours.
    """
    cdef _Canvas c = _Canvas(y, u, v)
    if len(style) != 8:
        raise ConversionError("style must have 8 fields")
    cdef cp_compose_style st
    cdef int k, i
    for k, name in enumerate(("background", "placeholder", "border", "highlight", "text")):
        col = style[k]
        if len(col) != 3:
            raise ConversionError(f"{name} colour must be a (Y, U, V) triple, got {col!r}")
        for i in range(3):
            lv = _level(col[i], f"{name} colour")
            if k == 0:
                st.background[i] = lv
            elif k == 1:
                st.placeholder[i] = lv
            elif k == 2:
                st.border[i] = lv
            elif k == 3:
                st.highlight[i] = lv
            else:
                st.text[i] = lv
    st.border_px = _coord(style[5], "border_px")
    st.label_scale = _coord(style[6], "label_scale")
    st.fit = style[7]
    if st.border_px < 0 or st.border_px > 4096:
        raise ConversionError(f"border_px must be 0..4096 pixels, got {st.border_px}")
    if st.label_scale < 0 or st.label_scale > 256:
        raise ConversionError(f"label_scale must be 0..256, got {st.label_scale}")
    if st.fit not in (CP_FIT_CONTAIN, CP_FIT_COVER, CP_FIT_STRETCH):
        raise ConversionError(f"unknown fit mode {st.fit}")
    cdef int n = len(tiles)
    cdef cp_compose_tile *ct = <cp_compose_tile *> calloc(max(n, 1), sizeof(cp_compose_tile))
    if ct == NULL:
        raise MemoryError("compose: out of memory for the tile list")
    keep = []  # memoryviews and label bytes, alive until the C call returns
    cdef const uint8_t[:, :] my, mu, mv
    cdef bytes lb
    cdef int rc
    try:
        for i in range(n):
            t = tiles[i]
            if not isinstance(t, tuple) or len(t) != 7:
                raise ConversionError(f"tile {i} must be a 7-tuple")
            planes, tx, ty, tw, th, label, hl = t
            if planes is not None:
                sw, sh = _check_i420(planes[0], planes[1], planes[2], f"tile {i}", False)
                for a in planes:
                    for b in (y, u, v):
                        if np.may_share_memory(a, b):
                            raise ConversionError(f"tile {i} picture overlaps the canvas")
                my = planes[0]
                mu = planes[1]
                mv = planes[2]
                keep.append((my, mu, mv))
                ct[i].y = &my[0, 0]
                ct[i].u = &mu[0, 0]
                ct[i].v = &mv[0, 0]
                ct[i].y_stride = my.strides[0]
                ct[i].u_stride = mu.strides[0]
                ct[i].v_stride = mv.strides[0]
                ct[i].src_width = sw
                ct[i].src_height = sh
            ct[i].x = _coord(tx, f"tile {i} x")
            ct[i].y_pos = _coord(ty, f"tile {i} y")
            ct[i].width = _coord(tw, f"tile {i} width")
            ct[i].height = _coord(th, f"tile {i} height")
            if ct[i].width > 4 * MAX_DIM or ct[i].height > 4 * MAX_DIM:
                raise ConversionError(f"tile {i} is larger than {4 * MAX_DIM} pixels")
            lb = _ascii(label)
            if lb is not None:
                keep.append(lb)
                ct[i].label = lb
            ct[i].highlight = 1 if hl else 0
        with nogil:
            rc = cp_compose(&c.im, ct, n, &st)
        _check_rc(rc, "compose")
    finally:
        free(ct)
