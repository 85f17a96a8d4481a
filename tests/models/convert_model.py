"""Pure-numpy reference model of native/src/cp_convert.c (float64, straight from the formulas).

Used by tests/test_convert.py for differential testing: the native code must agree with this
model to within one level everywhere.  Nothing here is tuned to the C code except the documented
conventions (2x2-mean chroma, replicated chroma on output, centre-aligned bilinear with 8-bit
weights, round half up).

Colour equations (ITU-R BT.601 / BT.709, 8 bit):
    Y' = Kr R + Kg G + Kb B,  Pb = (B - Y') / (2 (1 - Kb)),  Pr = (R - Y') / (2 (1 - Kr))
    limited: Y = 16 + 219/255 Y',  U = 128 + 224/255 Pb,  V = 128 + 224/255 Pr
    full:    Y = Y',               U = 128 + Pb,           V = 128 + Pr
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

#: byte offsets of R, G, B (and alpha, or -1) inside one pixel of each packed format
LAYOUTS = {
    "rgb24": (0, 1, 2, -1),
    "bgr24": (2, 1, 0, -1),
    "rgba": (0, 1, 2, 3),
    "bgra": (2, 1, 0, 3),
    "argb": (1, 2, 3, 0),
}


def _round(x: F64) -> U8:
    """Round half up and clamp to 0..255."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def unpack_rgb(pixels: U8, fmt: str) -> U8:
    """(h, w, bpp) packed pixels of ``fmt`` -> (h, w, 3) in R, G, B order."""
    r, g, b, _ = LAYOUTS[fmt]
    return np.stack([pixels[..., r], pixels[..., g], pixels[..., b]], axis=-1)


def pack_rgb(rgb: U8, fmt: str) -> U8:
    """(h, w, 3) R, G, B -> (h, w, bpp) packed pixels of ``fmt`` (alpha 255)."""
    r, g, b, a = LAYOUTS[fmt]
    out = np.empty(rgb.shape[:2] + (4 if a >= 0 else 3,), dtype=np.uint8)
    out[..., r], out[..., g], out[..., b] = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if a >= 0:
        out[..., a] = 255
    return out


def _pad_even(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Replicate the last row / column of an odd-sized array (axis 0 and 1)."""
    h, w = a.shape[:2]
    pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="edge")


def block_mean(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean of each 2x2 block over the samples that exist (odd edges: 2 or 1 samples)."""
    p = _pad_even(a)
    return (p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2]) / 4.0


def rgb_to_yuv_float(rgb: F64, colorspace: str, full_range: bool) -> tuple[F64, F64, F64]:
    """Real-valued Y, U, V of real-valued R, G, B (last axis)."""
    kr, kb = MATRICES[colorspace]
    kg = 1.0 - kr - kb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    yp = kr * r + kg * g + kb * b
    pb = (b - yp) / (2 * (1 - kb))
    pr = (r - yp) / (2 * (1 - kr))
    if full_range:
        return yp, 128 + pb, 128 + pr
    return 16 + yp * 219 / 255, 128 + pb * 224 / 255, 128 + pr * 224 / 255


def rgb_to_i420(rgb: U8, colorspace: str = "bt601", full_range: bool = False) -> tuple[U8, U8, U8]:
    """(h, w, 3) RGB -> I420 planes; chroma from the 2x2 mean of R, G, B."""
    f = rgb.astype(np.float64)
    y, _, _ = rgb_to_yuv_float(f, colorspace, full_range)
    _, u, v = rgb_to_yuv_float(block_mean(f), colorspace, full_range)
    return _round(y), _round(u), _round(v)


def i420_to_rgb(y: U8, u: U8, v: U8, colorspace: str = "bt601", full_range: bool = False) -> U8:
    """I420 planes -> (h, w, 3) RGB; each chroma sample covers its 2x2 block (replication)."""
    kr, kb = MATRICES[colorspace]
    kg = 1.0 - kr - kb
    h, w = y.shape
    uu = np.repeat(np.repeat(u.astype(np.float64), 2, 0), 2, 1)[:h, :w] - 128
    vv = np.repeat(np.repeat(v.astype(np.float64), 2, 0), 2, 1)[:h, :w] - 128
    yy = y.astype(np.float64)
    if not full_range:
        yy = (yy - 16) * 255 / 219
        uu = uu * 255 / 224
        vv = vv * 255 / 224
    r = yy + 2 * (1 - kr) * vv
    b = yy + 2 * (1 - kb) * uu
    g = (yy - kr * r - kb * b) / kg
    return _round(np.stack([r, g, b], axis=-1))


def nv_to_i420(y: U8, uv: U8, order: str = "nv12") -> tuple[U8, U8, U8]:
    """NV12 / NV21 (uv: (ch, 2*cw) interleaved) -> I420."""
    a, b = uv[:, 0::2].copy(), uv[:, 1::2].copy()
    return (y.copy(), a, b) if order == "nv12" else (y.copy(), b, a)


def i420_to_nv(y: U8, u: U8, v: U8, order: str = "nv12") -> tuple[U8, U8]:
    """I420 -> NV12 / NV21 (y, uv)."""
    uv = np.empty((u.shape[0], 2 * u.shape[1]), dtype=np.uint8)
    first, second = (u, v) if order == "nv12" else (v, u)
    uv[:, 0::2], uv[:, 1::2] = first, second
    return y.copy(), uv


def packed422_to_i420(src: U8, fmt: str, width: int) -> tuple[U8, U8, U8]:
    """YUYV / UYVY (h, 2*ceil(width/2), 2) -> I420; chroma rows averaged in pairs."""
    flat = src.reshape(src.shape[0], -1).astype(np.float64)
    yo, uo, vo = (0, 1, 3) if fmt == "yuyv422" else (1, 0, 2)
    y = flat[:, yo::2][:, :width]
    u, v = flat[:, uo::4], flat[:, vo::4]
    h = src.shape[0]
    if h % 2:
        u = np.concatenate([u, u[-1:]])
        v = np.concatenate([v, v[-1:]])
    return _round(y), _round((u[0::2] + u[1::2]) / 2), _round((v[0::2] + v[1::2]) / 2)


def i420_to_packed422(y: U8, u: U8, v: U8, fmt: str) -> U8:
    """I420 -> YUYV / UYVY (h, 2*ceil(w/2), 2), chroma rows duplicated, odd Y padded."""
    h, w = y.shape
    cw = u.shape[1]
    yp = np.pad(y, [(0, 0), (0, 2 * cw - w)], mode="edge")
    uu = np.repeat(u, 2, 0)[:h]
    vv = np.repeat(v, 2, 0)[:h]
    out = np.empty((h, cw, 4), dtype=np.uint8)
    if fmt == "yuyv422":
        out[..., 0], out[..., 1], out[..., 2], out[..., 3] = yp[:, 0::2], uu, yp[:, 1::2], vv
    else:
        out[..., 0], out[..., 1], out[..., 2], out[..., 3] = uu, yp[:, 0::2], vv, yp[:, 1::2]
    return out.reshape(h, 2 * cw, 2)


def box_half(plane: U8) -> U8:
    """2:1 box downscale: rounded mean of each 2x2 block's existing samples."""
    return _round(block_mean(plane.astype(np.float64)))


def bilinear_map(sn: int, dn: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Source index and 8-bit fraction of each destination sample (centre aligned, clamped).

    s = (d + 0.5) * sn / dn - 0.5 in 16.16 fixed point, the fraction truncated to 8 bits.
    """
    d = np.arange(dn, dtype=np.int64)
    s = ((2 * d + 1) * sn * 65536) // (2 * dn) - 32768
    s = np.clip(s, 0, (sn - 1) * 65536)
    return s >> 16, (s >> 8) & 255


def bilinear(plane: U8, dw: int, dh: int) -> U8:
    """Bilinear resample of one plane to dw x dh with the 8-bit weights of ``bilinear_map``."""
    sh, sw = plane.shape
    xi, xf = bilinear_map(sw, dw)
    yi, yf = bilinear_map(sh, dh)
    p = plane.astype(np.float64)
    x1, y1 = np.minimum(xi + 1, sw - 1), np.minimum(yi + 1, sh - 1)
    fx, fy = xf / 256.0, yf[:, None] / 256.0
    top = p[yi][:, xi] * (1 - fx) + p[yi][:, x1] * fx
    bot = p[y1][:, xi] * (1 - fx) + p[y1][:, x1] * fx
    return _round(top * (1 - fy) + bot * fy)
