/* cp_convert.h - colour conversion to/from planar I420 and I420 scaling (plain C11).
 *
 * Every picture is described by a pointer to its first row and a row stride in bytes
 * (ptrdiff_t: any value, negative strides allowed for bottom-up pictures).  Pixels within a row
 * are packed.  I420 chroma planes are ceil(width/2) x ceil(height/2).
 *
 * Colour: BT.601 or BT.709 matrix, limited ("TV": Y 16..235, chroma 16..240) or full
 * ("PC"/JPEG: 0..255) range on the YUV side; the RGB side is always full range 0..255.
 * The default of callpipe (and of swscale) is BT.601, limited range.
 *
 * Return values: CP_CONVERT_OK, or a negative cp_convert_status.  The functions never keep
 * pointers after returning and are safe to call from several threads at once.
 *
 * Kept in cffi's parsable C subset (plain prototypes, enums for constants).
 */
#ifndef CALLPIPE_CP_CONVERT_H
#define CALLPIPE_CP_CONVERT_H

#include <stddef.h>
#include <stdint.h>

/* Packed pixel formats, named by byte order in memory (the ffmpeg / PyAV convention). */
typedef enum {
    CP_PIX_RGB24 = 0,   /* R G B                                     */
    CP_PIX_BGR24 = 1,   /* B G R                                     */
    CP_PIX_RGBA = 2,    /* R G B A                                   */
    CP_PIX_BGRA = 3,    /* B G R A                                   */
    CP_PIX_ARGB = 4,    /* A R G B                                   */
    CP_PIX_YUYV = 5,    /* 4:2:2 packed: Y0 U Y1 V per pixel pair    */
    CP_PIX_UYVY = 6     /* 4:2:2 packed: U Y0 V Y1 per pixel pair    */
} cp_pixfmt;

typedef enum {
    CP_MATRIX_BT601 = 0,
    CP_MATRIX_BT709 = 1
} cp_matrix;

typedef enum {
    CP_CONVERT_OK = 0,
    CP_CONVERT_EINVAL = -1,   /* bad size, format, matrix or NULL pointer */
    CP_CONVERT_ENOMEM = -2    /* scratch allocation failed (scaling only) */
} cp_convert_status;

/* SIMD level for cp_convert_set_simd / cp_convert_simd. */
typedef enum {
    CP_SIMD_AUTO = -1,        /* best the CPU supports (the default) */
    CP_SIMD_BASELINE = 0,     /* the compiler's baseline ISA (SSE2 on x86-64) */
    CP_SIMD_AVX2 = 1          /* the same C code compiled for AVX2, plus a hand-written AVX2
                                 RGB -> I420 kernel (output identical to the baseline's) */
} cp_simd_level;

/* RGB24 / BGR24 / RGBA / BGRA / ARGB -> I420.  Chroma is the rounded mean of each 2x2 block
 * (of the pixels that exist, at odd right/bottom edges).  Alpha is ignored. */
int cp_rgb_to_i420(const uint8_t *src, ptrdiff_t src_stride, int fmt, int width, int height,
                   uint8_t *dst_y, ptrdiff_t y_stride, uint8_t *dst_u, ptrdiff_t u_stride,
                   uint8_t *dst_v, ptrdiff_t v_stride, int matrix, int full_range);

/* I420 -> RGB24 / BGR24 / RGBA / BGRA (alpha written as 255).  Chroma is upsampled by
 * replication (nearest neighbour, as libyuv and swscale's unscaled path do). */
int cp_i420_to_rgb(const uint8_t *src_y, ptrdiff_t y_stride, const uint8_t *src_u,
                   ptrdiff_t u_stride, const uint8_t *src_v, ptrdiff_t v_stride, int width,
                   int height, uint8_t *dst, ptrdiff_t dst_stride, int fmt, int matrix,
                   int full_range);

/* NV12 (uv_order 0: U V pairs) or NV21 (uv_order 1: V U pairs) -> I420.  The interleaved
 * plane holds ceil(height/2) rows of ceil(width/2) pairs. */
int cp_nv12_to_i420(const uint8_t *src_y, ptrdiff_t y_stride, const uint8_t *src_uv,
                    ptrdiff_t uv_stride, int uv_order, int width, int height, uint8_t *dst_y,
                    ptrdiff_t dst_y_stride, uint8_t *dst_u, ptrdiff_t u_stride, uint8_t *dst_v,
                    ptrdiff_t v_stride);

/* YUYV or UYVY (fmt CP_PIX_YUYV / CP_PIX_UYVY) -> I420.  Each source row holds
 * ceil(width/2) 4-byte pixel pairs; chroma rows are averaged vertically in pairs. */
int cp_packed422_to_i420(const uint8_t *src, ptrdiff_t src_stride, int fmt, int width,
                         int height, uint8_t *dst_y, ptrdiff_t y_stride, uint8_t *dst_u,
                         ptrdiff_t u_stride, uint8_t *dst_v, ptrdiff_t v_stride);

/* I420 -> I420 bilinear scaling, any size to any size (pixel-centre aligned, edge clamped,
 * 8-bit weights).  Each plane is scaled on its own. */
int cp_i420_scale_bilinear(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                           ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                           int src_width, int src_height, uint8_t *dst_y, ptrdiff_t dst_y_stride,
                           uint8_t *dst_u, ptrdiff_t dst_u_stride, uint8_t *dst_v,
                           ptrdiff_t dst_v_stride, int dst_width, int dst_height);

/* I420 -> I420 2:1 box downscale to ceil(width/2) x ceil(height/2): every output sample is the
 * rounded mean of its 2x2 source block (of the samples that exist at odd edges). */
int cp_i420_box_half(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                     ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                     int src_width, int src_height, uint8_t *dst_y, ptrdiff_t dst_y_stride,
                     uint8_t *dst_u, ptrdiff_t dst_u_stride, uint8_t *dst_v,
                     ptrdiff_t dst_v_stride);

/* Select the SIMD build of the kernels (for tests and benchmarks; process-wide).  Returns the
 * level now in effect (a request the CPU cannot run falls back to the baseline). */
int cp_convert_set_simd(int level);

/* The SIMD level the kernels currently use (CP_SIMD_BASELINE or CP_SIMD_AVX2). */
int cp_convert_simd(void);

#endif /* CALLPIPE_CP_CONVERT_H */
