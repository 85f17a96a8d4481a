# cython: language_level=3
"""Bindings of native/src/cp_convert.c (colour conversion and I420 scaling).

Low level: callers pass numpy ``uint8`` arrays for the source *and* the destination (see
``callpipe.media.convert`` for the public API, which allocates the destinations).  Every array is
checked here (type, dtype, shape, unit column / pixel stride, writability, overlap) and any
problem raises :class:`callpipe.errors.ConversionError`; rows may have any stride, negative
included.  The GIL is released around every C call.
"""

from libc.stdint cimport uint8_t

import numpy as np

from ..errors import ConversionError

cdef extern from "callpipe/cp_convert.h" nogil:
    enum:
        CP_PIX_RGB24
        CP_PIX_BGR24
        CP_PIX_RGBA
        CP_PIX_BGRA
        CP_PIX_ARGB
        CP_PIX_YUYV
        CP_PIX_UYVY
        CP_MATRIX_BT601
        CP_MATRIX_BT709
        CP_CONVERT_OK
        CP_CONVERT_EINVAL
        CP_CONVERT_ENOMEM
        CP_SIMD_AUTO
        CP_SIMD_BASELINE
        CP_SIMD_AVX2

    int cp_rgb_to_i420(const uint8_t *src, Py_ssize_t src_stride, int fmt, int width,
                       int height, uint8_t *dst_y, Py_ssize_t y_stride, uint8_t *dst_u,
                       Py_ssize_t u_stride, uint8_t *dst_v, Py_ssize_t v_stride, int matrix,
                       int full_range)
    int cp_i420_to_rgb(const uint8_t *src_y, Py_ssize_t y_stride, const uint8_t *src_u,
                       Py_ssize_t u_stride, const uint8_t *src_v, Py_ssize_t v_stride,
                       int width, int height, uint8_t *dst, Py_ssize_t dst_stride, int fmt,
                       int matrix, int full_range)
    int cp_nv12_to_i420(const uint8_t *src_y, Py_ssize_t y_stride, const uint8_t *src_uv,
                        Py_ssize_t uv_stride, int uv_order, int width, int height,
                        uint8_t *dst_y, Py_ssize_t dst_y_stride, uint8_t *dst_u,
                        Py_ssize_t u_stride, uint8_t *dst_v, Py_ssize_t v_stride)
    int cp_packed422_to_i420(const uint8_t *src, Py_ssize_t src_stride, int fmt, int width,
                             int height, uint8_t *dst_y, Py_ssize_t y_stride, uint8_t *dst_u,
                             Py_ssize_t u_stride, uint8_t *dst_v, Py_ssize_t v_stride)
    int cp_i420_scale_bilinear(const uint8_t *src_y, Py_ssize_t src_y_stride,
                               const uint8_t *src_u, Py_ssize_t src_u_stride,
                               const uint8_t *src_v, Py_ssize_t src_v_stride, int src_width,
                               int src_height, uint8_t *dst_y, Py_ssize_t dst_y_stride,
                               uint8_t *dst_u, Py_ssize_t dst_u_stride, uint8_t *dst_v,
                               Py_ssize_t dst_v_stride, int dst_width, int dst_height)
    int cp_i420_box_half(const uint8_t *src_y, Py_ssize_t src_y_stride, const uint8_t *src_u,
                         Py_ssize_t src_u_stride, const uint8_t *src_v,
                         Py_ssize_t src_v_stride, int src_width, int src_height,
                         uint8_t *dst_y, Py_ssize_t dst_y_stride, uint8_t *dst_u,
                         Py_ssize_t dst_u_stride, uint8_t *dst_v, Py_ssize_t dst_v_stride)
    int cp_convert_set_simd(int level)
    int cp_convert_simd()

# Values of the C enums, for callpipe.media.convert.
PIX_RGB24 = CP_PIX_RGB24
PIX_BGR24 = CP_PIX_BGR24
PIX_RGBA = CP_PIX_RGBA
PIX_BGRA = CP_PIX_BGRA
PIX_ARGB = CP_PIX_ARGB
PIX_YUYV = CP_PIX_YUYV
PIX_UYVY = CP_PIX_UYVY
MATRIX_BT601 = CP_MATRIX_BT601
MATRIX_BT709 = CP_MATRIX_BT709
SIMD_AUTO = CP_SIMD_AUTO
SIMD_BASELINE = CP_SIMD_BASELINE
SIMD_AVX2 = CP_SIMD_AVX2

#: largest width / height the C code accepts, in pixels
MAX_DIM = 65536

cdef object _U8 = np.dtype(np.uint8)
cdef dict _BPP = {CP_PIX_RGB24: 3, CP_PIX_BGR24: 3, CP_PIX_RGBA: 4, CP_PIX_BGRA: 4,
                  CP_PIX_ARGB: 4}


# -- validation --------------------------------------------------------------------------------
cdef _check_array(object a, str name, int ndim, bint writable):
    if not isinstance(a, np.ndarray):
        raise ConversionError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != _U8:
        raise ConversionError(f"{name} must have dtype uint8, got {a.dtype}")
    if a.ndim != ndim:
        raise ConversionError(f"{name} must be {ndim}-D, got shape {a.shape}")
    for n in a.shape:
        if n < 1 or n > 4 * MAX_DIM:
            raise ConversionError(f"{name} has an empty or oversized shape {a.shape}")
    if writable and not a.flags.writeable:
        raise ConversionError(f"{name} is read-only")


cdef _check_plane(object a, str name, tuple shape, bint writable):
    _check_array(a, name, 2, writable)
    if a.shape != shape:
        raise ConversionError(
            f"{name} must have shape {shape} (rows, columns), got {a.shape}")
    if a.strides[1] != 1:
        raise ConversionError(
            f"{name} must have contiguous rows (column stride 1 byte), got strides {a.strides}")


cdef _check_dims(int w, int h):
    if w < 1 or h < 1 or w > MAX_DIM or h > MAX_DIM:
        raise ConversionError(f"picture size {w}x{h} is out of range (1..{MAX_DIM} pixels)")


cdef _check_disjoint(tuple outputs, tuple inputs):
    cdef Py_ssize_t i, j
    for i in range(len(outputs)):
        for a in inputs:
            if np.may_share_memory(outputs[i], a):
                raise ConversionError("destination arrays must not overlap the source arrays")
        for j in range(i + 1, len(outputs)):
            if np.may_share_memory(outputs[i], outputs[j]):
                raise ConversionError("destination arrays must not overlap each other")


cdef _check_rc(int rc, str what):
    if rc == CP_CONVERT_OK:
        return
    if rc == CP_CONVERT_ENOMEM:
        raise MemoryError(f"{what}: out of memory for scratch rows")
    raise ConversionError(f"{what}: invalid arguments (status {rc})")


cdef tuple _chroma_shape(int w, int h):
    return ((h + 1) // 2, (w + 1) // 2)


cdef int _matrix(int matrix) except -1:
    if matrix != CP_MATRIX_BT601 and matrix != CP_MATRIX_BT709:
        raise ConversionError(f"unknown colour matrix code {matrix}")
    return matrix


# -- conversions -------------------------------------------------------------------------------
def rgb_to_i420(src, int fmt, y, u, v, int matrix=CP_MATRIX_BT601, bint full_range=False):
    """Convert packed RGB-family pixels ``src`` (h, w, 3 or 4) into the I420 planes y, u, v."""
    if fmt not in _BPP:
        raise ConversionError(f"unknown packed RGB format code {fmt}")
    cdef int bpp = _BPP[fmt]
    _check_array(src, "source image", 3, False)
    if src.shape[2] != bpp or src.strides[2] != 1 or src.strides[1] != bpp:
        raise ConversionError(
            f"source image must be (height, width, {bpp}) with packed pixels (strides "
            f"(any, {bpp}, 1)), got shape {src.shape} strides {src.strides}")
    cdef int h = src.shape[0], w = src.shape[1]
    _check_dims(w, h)
    _check_plane(y, "y plane", (h, w), True)
    _check_plane(u, "u plane", _chroma_shape(w, h), True)
    _check_plane(v, "v plane", _chroma_shape(w, h), True)
    _matrix(matrix)
    _check_disjoint((y, u, v), (src,))
    cdef const uint8_t[:, :, :] s = src
    cdef uint8_t[:, :] my = y, mu = u, mv = v
    cdef int rc, full = full_range
    with nogil:
        rc = cp_rgb_to_i420(&s[0, 0, 0], s.strides[0], fmt, w, h, &my[0, 0], my.strides[0],
                            &mu[0, 0], mu.strides[0], &mv[0, 0], mv.strides[0], matrix, full)
    _check_rc(rc, "RGB to I420")


def i420_to_rgb(y, u, v, dst, int fmt, int matrix=CP_MATRIX_BT601, bint full_range=False):
    """Convert the I420 planes y, u, v into packed pixels ``dst`` (h, w, 3 or 4)."""
    if fmt not in _BPP or fmt == CP_PIX_ARGB:
        raise ConversionError(f"unsupported output format code {fmt}")
    cdef int bpp = _BPP[fmt]
    _check_array(y, "y plane", 2, False)
    cdef int h = y.shape[0], w = y.shape[1]
    _check_dims(w, h)
    _check_plane(y, "y plane", (h, w), False)
    _check_plane(u, "u plane", _chroma_shape(w, h), False)
    _check_plane(v, "v plane", _chroma_shape(w, h), False)
    _check_array(dst, "destination image", 3, True)
    if dst.shape != (h, w, bpp) or dst.strides[2] != 1 or dst.strides[1] != bpp:
        raise ConversionError(
            f"destination image must be ({h}, {w}, {bpp}) with packed pixels, got shape "
            f"{dst.shape} strides {dst.strides}")
    _matrix(matrix)
    _check_disjoint((dst,), (y, u, v))
    cdef const uint8_t[:, :] my = y, mu = u, mv = v
    cdef uint8_t[:, :, :] d = dst
    cdef int rc, full = full_range
    with nogil:
        rc = cp_i420_to_rgb(&my[0, 0], my.strides[0], &mu[0, 0], mu.strides[0], &mv[0, 0],
                            mv.strides[0], w, h, &d[0, 0, 0], d.strides[0], fmt, matrix, full)
    _check_rc(rc, "I420 to RGB")


def nv12_to_i420(src_y, src_uv, int uv_order, y, u, v):
    """Convert NV12 (``uv_order`` 0) or NV21 (1) into I420.

    ``src_uv`` is 2-D, ``(ceil(h/2), 2*ceil(w/2))`` bytes of interleaved chroma pairs.
    """
    if uv_order != 0 and uv_order != 1:
        raise ConversionError(f"uv_order must be 0 (NV12) or 1 (NV21), got {uv_order}")
    _check_array(src_y, "source y plane", 2, False)
    cdef int h = src_y.shape[0], w = src_y.shape[1]
    _check_dims(w, h)
    cdef tuple cs = _chroma_shape(w, h)
    _check_plane(src_y, "source y plane", (h, w), False)
    _check_plane(src_uv, "source uv plane", (cs[0], 2 * cs[1]), False)
    _check_plane(y, "y plane", (h, w), True)
    _check_plane(u, "u plane", cs, True)
    _check_plane(v, "v plane", cs, True)
    _check_disjoint((y, u, v), (src_y, src_uv))
    cdef const uint8_t[:, :] sy = src_y, suv = src_uv
    cdef uint8_t[:, :] my = y, mu = u, mv = v
    cdef int rc
    with nogil:
        rc = cp_nv12_to_i420(&sy[0, 0], sy.strides[0], &suv[0, 0], suv.strides[0], uv_order,
                             w, h, &my[0, 0], my.strides[0], &mu[0, 0], mu.strides[0],
                             &mv[0, 0], mv.strides[0])
    _check_rc(rc, "NV12 to I420")


def packed422_to_i420(src, int fmt, int width, y, u, v):
    """Convert YUYV / UYVY ``src`` (h, 2*ceil(width/2), 2) into I420 of ``width`` pixels."""
    if fmt != CP_PIX_YUYV and fmt != CP_PIX_UYVY:
        raise ConversionError(f"unknown packed 4:2:2 format code {fmt}")
    _check_array(src, "source image", 3, False)
    cdef int h = src.shape[0]
    _check_dims(width, h)
    cdef int pairs = (width + 1) // 2
    if src.shape[1] != 2 * pairs or src.shape[2] != 2 or src.strides[2] != 1 \
            or src.strides[1] != 2:
        raise ConversionError(
            f"packed 4:2:2 source for width {width} must be (height, {2 * pairs}, 2) with "
            f"packed samples, got shape {src.shape} strides {src.strides}")
    _check_plane(y, "y plane", (h, width), True)
    _check_plane(u, "u plane", _chroma_shape(width, h), True)
    _check_plane(v, "v plane", _chroma_shape(width, h), True)
    _check_disjoint((y, u, v), (src,))
    cdef const uint8_t[:, :, :] s = src
    cdef uint8_t[:, :] my = y, mu = u, mv = v
    cdef int rc
    with nogil:
        rc = cp_packed422_to_i420(&s[0, 0, 0], s.strides[0], fmt, width, h, &my[0, 0],
                                  my.strides[0], &mu[0, 0], mu.strides[0], &mv[0, 0],
                                  mv.strides[0])
    _check_rc(rc, "packed 4:2:2 to I420")


# -- scaling -----------------------------------------------------------------------------------
cdef tuple _check_i420(y, u, v, str what, bint writable):
    _check_array(y, f"{what} y plane", 2, writable)
    cdef int h = y.shape[0], w = y.shape[1]
    _check_dims(w, h)
    _check_plane(y, f"{what} y plane", (h, w), writable)
    _check_plane(u, f"{what} u plane", _chroma_shape(w, h), writable)
    _check_plane(v, f"{what} v plane", _chroma_shape(w, h), writable)
    return (w, h)


def scale_bilinear(y, u, v, dy, du, dv):
    """Bilinear-scale the I420 planes y, u, v into dy, du, dv (sizes taken from the arrays)."""
    sw, sh = _check_i420(y, u, v, "source", False)
    dw, dh = _check_i420(dy, du, dv, "destination", True)
    _check_disjoint((dy, du, dv), (y, u, v))
    cdef const uint8_t[:, :] my = y, mu = u, mv = v
    cdef uint8_t[:, :] ny = dy, nu = du, nv = dv
    cdef int rc, isw = sw, ish = sh, idw = dw, idh = dh
    with nogil:
        rc = cp_i420_scale_bilinear(&my[0, 0], my.strides[0], &mu[0, 0], mu.strides[0],
                                    &mv[0, 0], mv.strides[0], isw, ish, &ny[0, 0],
                                    ny.strides[0], &nu[0, 0], nu.strides[0], &nv[0, 0],
                                    nv.strides[0], idw, idh)
    _check_rc(rc, "bilinear scale")


def box_half(y, u, v, dy, du, dv):
    """2:1 box-downscale the I420 planes y, u, v into dy, du, dv (ceil(w/2) x ceil(h/2))."""
    sw, sh = _check_i420(y, u, v, "source", False)
    dw, dh = _check_i420(dy, du, dv, "destination", True)
    if dw != (sw + 1) // 2 or dh != (sh + 1) // 2:
        raise ConversionError(
            f"2:1 box downscale of {sw}x{sh} gives {(sw + 1) // 2}x{(sh + 1) // 2}, "
            f"destination is {dw}x{dh}")
    _check_disjoint((dy, du, dv), (y, u, v))
    cdef const uint8_t[:, :] my = y, mu = u, mv = v
    cdef uint8_t[:, :] ny = dy, nu = du, nv = dv
    cdef int rc, isw = sw, ish = sh
    with nogil:
        rc = cp_i420_box_half(&my[0, 0], my.strides[0], &mu[0, 0], mu.strides[0], &mv[0, 0],
                              mv.strides[0], isw, ish, &ny[0, 0], ny.strides[0], &nu[0, 0],
                              nu.strides[0], &nv[0, 0], nv.strides[0])
    _check_rc(rc, "box downscale")


# -- SIMD selection ----------------------------------------------------------------------------
def set_simd(int level):
    """Select the kernel set (SIMD_AUTO, SIMD_BASELINE or SIMD_AVX2); returns the level used."""
    if level != CP_SIMD_AUTO and level != CP_SIMD_BASELINE and level != CP_SIMD_AVX2:
        raise ConversionError(f"unknown SIMD level {level}")
    return cp_convert_set_simd(level)


def simd():
    """The kernel set in use: ``"avx2"`` or ``"baseline"``."""
    return "avx2" if cp_convert_simd() == CP_SIMD_AVX2 else "baseline"
