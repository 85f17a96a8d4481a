/* cp_convert.c - colour conversion to/from I420 and I420 scaling.
 *
 * How it is made fast: auto-vectorisation + runtime dispatch (+ AVX2 intrinsics for RGB -> I420)
 * ----------------------------------------------------------------------------------------------
 * Every hot loop is a plain, branch-free C loop over one row (or a chunk of CP_CHUNK pixels of
 * one row) with restrict pointers, a compile-time pixel layout and 16-bit fixed-point
 * arithmetic, written so that GCC's loop vectoriser turns it into SIMD code.  The kernels are
 * `static inline __attribute__((always_inline))` bodies instantiated twice (DEF_SET below): once
 * for the compiler's baseline ISA (SSE2 on x86-64) and once inside functions marked
 * `__attribute__((target("avx2")))`, where the same loops are vectorised with 256-bit registers.
 * The AVX2 set is picked at run time with __builtin_cpu_supports("avx2"); cp_convert_set_simd()
 * can force the baseline set, so the tests cover both.
 *
 * One exception: RGB -> I420 (the conversion camera and screen capture feed every frame
 * through) has a hand-written AVX2 kernel in the AVX2 set (avx2_rgb_to_i420_body: one pass
 * over each pair of source rows, fused 2x2 chroma, no scratch rows; about half the
 * instructions and time of the auto-vectorised loops).  It computes exactly the same
 * fixed-point expressions (each product truncated the same way), so its output is
 * bit-identical to the baseline set (tests/test_convert.py and native/tests/test_cp_convert.c
 * compare the two on random pictures).
 *
 * Checked with
 *     gcc -O3 -Wall -Wextra -std=c11 -Inative/include -fopt-info-vec-optimized \
 *         -c native/src/cp_convert.c -o /dev/null
 * (GCC 12): every row loop below reports "loop vectorized using 32 byte vectors" in each AVX2
 * instantiation and "16 byte vectors" in each baseline one; the only scalar hot loop is the
 * horizontal pass of the bilinear scaler (an indexed gather).  Things that matter to GCC here:
 * weights must have a 16-bit *type* (not int32 narrowed in the loop) for the high-half
 * multiplies to become vpmulhuw / vpmulhw, and 4-byte pixels are loaded / stored as whole
 * uint32 words (memcpy) because four separate byte accesses vectorise poorly.  The baseline set
 * is slow for 3-byte pixels (SSE2 has no byte shuffle); every x86-64 CPU since 2013 takes AVX2.
 *
 * Fixed point
 * -----------
 * Weights are the exact BT.601 / BT.709 values scaled by 2^14..2^16 and rounded; products keep
 * their high 16 bits, so intermediates carry 6..8 fractional bits, and each result adds half an
 * LSB before the final shift.  Results are within one level of the exactly rounded real value
 * (checked exhaustively over all 2^24 inputs of each direction, matrix and range: max 1, and
 * under 1% of samples differ at all, all at near-ties).  The weights of each output sum exactly
 * to the scale, so greys stay grey and black / white map exactly.
 */
#include "callpipe/cp_convert.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CP_X86 1
#define CP_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define CP_X86 0
#define CP_TARGET_AVX2
#endif

#define CP_INLINE static inline __attribute__((always_inline))
#define CP_CHUNK 1024       /* pixels per inner-loop chunk: scratch rows stay in L1 */
#define CP_MAX_DIM 65536    /* largest width / height accepted, in pixels */

/* ------------------------------------------------------------------------------------------ */
/* coefficients                                                                                */

typedef struct {
    uint16_t yr, yg, yb, yoff;            /* 2^16-scaled luma weights; offset in 1/256 level */
    int16_t ur, ug, ub, vr, vg, vb, coff; /* 2^15-scaled chroma weights; offset in 1/64 level */
} rgb2yuv_k;

typedef struct {
    uint16_t yc, yoff;                    /* Y term = hi(Y*256 * yc) + yoff, in 1/64 level   */
    int16_t rv, gu, gv, bu1;              /* 2^14-scaled chroma weights (bu1 = bu - 1)       */
} yuv2rgb_k;

static int32_t fix16(double x)
{
    double s = x * 65536.0;
    return (int32_t)(s >= 0 ? s + 0.5 : s - 0.5);
}

static void matrix_k(int matrix, double *kr, double *kb)
{
    if (matrix == CP_MATRIX_BT709) {
        *kr = 0.2126;
        *kb = 0.0722;
    } else {
        *kr = 0.299;
        *kb = 0.114;
    }
}

static int32_t fix15(double x)
{
    double s = x * 32768.0;
    return (int32_t)(s >= 0 ? s + 0.5 : s - 0.5);
}

static void make_rgb2yuv(int matrix, int full, rgb2yuv_k *k)
{
    double kr, kb;
    matrix_k(matrix, &kr, &kb);
    const double ys = full ? 1.0 : 219.0 / 255.0;
    const double cs = full ? 1.0 : 224.0 / 255.0;
    /* luma: 2^16 scale (the green weight takes the rounding slack, so the weights sum to the
     * scale and white stays white) */
    const int32_t yr = fix16(kr * ys), yb = fix16(kb * ys);
    int32_t yg = fix16(ys) - yr - yb;
    yg = yg > 65535 ? 65535 : yg;
    k->yr = (uint16_t)yr;
    k->yg = (uint16_t)yg;
    k->yb = (uint16_t)yb;
    k->yoff = (uint16_t)((full ? 0 : 16 << 8) + 128);
    /* chroma: 2^15 scale.  Pb = (B - Y') / (2 (1 - kb)),  Pr = (R - Y') / (2 (1 - kr)); the
     * green weight again takes the slack so that greys give exactly 128 */
    const int32_t ub = fix15(0.5 * cs), ur = fix15(-kr / (2.0 * (1.0 - kb)) * cs);
    const int32_t vr = fix15(0.5 * cs), vb = fix15(-kb / (2.0 * (1.0 - kr)) * cs);
    k->ub = (int16_t)ub;
    k->ur = (int16_t)ur;
    k->ug = (int16_t)(-ub - ur);
    k->vr = (int16_t)vr;
    k->vb = (int16_t)vb;
    k->vg = (int16_t)(-vr - vb);
    k->coff = (128 << 6) + 32 + 1;
}

/* I420 -> RGB works in unsigned 16-bit lanes holding levels in 1/64 units plus CP_RGB_BIAS, so
 * that every intermediate (-289 .. 567 levels for any input and either matrix/range) stays in
 * 0..65535; wrap-around of the signed chroma terms cancels exactly. */
#define CP_RGB_BIAS (300 * 64)

static void make_yuv2rgb(int matrix, int full, yuv2rgb_k *k)
{
    double kr, kb;
    matrix_k(matrix, &kr, &kb);
    const double kg = 1.0 - kr - kb;
    const double ys = full ? 1.0 : 255.0 / 219.0;
    const double cs = full ? 1.0 : 255.0 / 224.0;
    const double s14 = 16384.0;
    k->yc = (uint16_t)(ys * s14 + 0.5);
    /* -16 * ys (limited range), + 1/2 to round, + 1/64 offsetting the mean truncation */
    const double yoff = -(full ? 0 : 16) * ys * 64.0 + 32 + 1 + CP_RGB_BIAS;
    k->yoff = (uint16_t)(yoff + 0.5);
    k->rv = (int16_t)fix15(2.0 * (1.0 - kr) * cs / 2.0);
    k->bu1 = (int16_t)fix15((2.0 * (1.0 - kb) * cs - 1.0) / 2.0);
    k->gu = (int16_t)fix15(-2.0 * kb * (1.0 - kb) / kg * cs / 2.0);
    k->gv = (int16_t)fix15(-2.0 * kr * (1.0 - kr) / kg * cs / 2.0);
}

/* ------------------------------------------------------------------------------------------ */
/* row kernels (always inlined into the baseline and the AVX2 instantiations)                  */

/* Bit position (in bytes) of memory byte i inside a uint32_t loaded from memory. */
CP_INLINE int pix_shift(int i)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return 3 - i;
#else
    return i;
#endif
}

/* High half of a 16x16-bit product; GCC maps these to vpmulhuw / vpmulhw when vectorising. */
CP_INLINE uint16_t mulhi_u16(uint16_t a, uint16_t b)
{
    return (uint16_t)(((uint32_t)a * b) >> 16);
}

CP_INLINE int16_t mulhi_s16(int16_t a, int16_t b)
{
    return (int16_t)(((int32_t)a * b) >> 16);
}

/* Luma of two rows plus the vertical per-channel sums of the pair, n pixels.
 * Y*256 = hi(R*256 * yr) + hi(G*256 * yg) + hi(B*256 * yb), coefficients scaled by 2^16, in
 * unsigned 16-bit lanes (each product truncated to 1/256 level). */
CP_INLINE void rgb_rows_y(const uint8_t *restrict s0, const uint8_t *restrict s1,
                          uint8_t *restrict y0, uint8_t *restrict y1, uint16_t *restrict rs,
                          uint16_t *restrict gs, uint16_t *restrict bs, int n,
                          const rgb2yuv_k *restrict k, const int bpp, const int ro, const int go,
                          const int bo)
{
    const uint16_t cr = k->yr, cg = k->yg, cb = k->yb, off = k->yoff;
    for (int x = 0; x < n; x++) {
        uint8_t r0, g0, b0, r1, g1, b1;
        if (bpp == 4) { /* whole-pixel loads vectorise better than four byte loads */
            uint32_t p0, p1;
            memcpy(&p0, s0 + 4 * x, 4);
            memcpy(&p1, s1 + 4 * x, 4);
            r0 = (uint8_t)(p0 >> (8 * pix_shift(ro)));
            g0 = (uint8_t)(p0 >> (8 * pix_shift(go)));
            b0 = (uint8_t)(p0 >> (8 * pix_shift(bo)));
            r1 = (uint8_t)(p1 >> (8 * pix_shift(ro)));
            g1 = (uint8_t)(p1 >> (8 * pix_shift(go)));
            b1 = (uint8_t)(p1 >> (8 * pix_shift(bo)));
        } else {
            r0 = s0[x * bpp + ro], g0 = s0[x * bpp + go], b0 = s0[x * bpp + bo];
            r1 = s1[x * bpp + ro], g1 = s1[x * bpp + go], b1 = s1[x * bpp + bo];
        }
        const uint16_t t0 = (uint16_t)(mulhi_u16((uint16_t)(r0 << 8), cr) +
                                       mulhi_u16((uint16_t)(g0 << 8), cg) +
                                       mulhi_u16((uint16_t)(b0 << 8), cb) + off);
        const uint16_t t1 = (uint16_t)(mulhi_u16((uint16_t)(r1 << 8), cr) +
                                       mulhi_u16((uint16_t)(g1 << 8), cg) +
                                       mulhi_u16((uint16_t)(b1 << 8), cb) + off);
        y0[x] = (uint8_t)(t0 >> 8);
        y1[x] = (uint8_t)(t1 >> 8);
        rs[x] = (uint16_t)(r0 + r1);
        gs[x] = (uint16_t)(g0 + g1);
        bs[x] = (uint16_t)(b0 + b1);
    }
}

CP_INLINE int16_t clamp255_s16(int16_t v)
{
    v = v < 0 ? 0 : v;
    v = v > 255 ? 255 : v;
    return v;
}

/* Chroma from the vertical sums: m outputs, each from sums[2i] + sums[2i+1] (a 2x2 sum S,
 * 0..1020).  U*64 = hi(S*32 * ur) + ... with coefficients scaled by 2^15, signed 16-bit lanes
 * (each product truncated to 1/64 level). */
CP_INLINE void rgb_sums_uv(const uint16_t *restrict rs, const uint16_t *restrict gs,
                           const uint16_t *restrict bs, uint8_t *restrict u, uint8_t *restrict v,
                           int m, const rgb2yuv_k *restrict k)
{
    const int16_t ur = k->ur, ug = k->ug, ub = k->ub, vr = k->vr, vg = k->vg, vb = k->vb;
    const int16_t off = k->coff;
    for (int i = 0; i < m; i++) {
        const int16_t r = (int16_t)((rs[2 * i] + rs[2 * i + 1]) << 5);
        const int16_t g = (int16_t)((gs[2 * i] + gs[2 * i + 1]) << 5);
        const int16_t b = (int16_t)((bs[2 * i] + bs[2 * i + 1]) << 5);
        const int16_t tu =
            (int16_t)(mulhi_s16(r, ur) + mulhi_s16(g, ug) + mulhi_s16(b, ub) + off);
        const int16_t tv =
            (int16_t)(mulhi_s16(r, vr) + mulhi_s16(g, vg) + mulhi_s16(b, vb) + off);
        u[i] = (uint8_t)clamp255_s16((int16_t)(tu >> 6));
        v[i] = (uint8_t)clamp255_s16((int16_t)(tv >> 6));
    }
}

CP_INLINE void rgb_to_i420_body(const uint8_t *src, ptrdiff_t ss, int w, int h, uint8_t *dy,
                                ptrdiff_t dys, uint8_t *du, ptrdiff_t dus, uint8_t *dv,
                                ptrdiff_t dvs, const rgb2yuv_k *k, const int bpp, const int ro,
                                const int go, const int bo)
{
    uint16_t rs[CP_CHUNK + 2], gs[CP_CHUNK + 2], bs[CP_CHUNK + 2];
    uint8_t yscratch[CP_CHUNK];
    for (int row = 0; row < h; row += 2) {
        const int pair = row + 1 < h;
        const uint8_t *s0 = src + (ptrdiff_t)row * ss;
        const uint8_t *s1 = pair ? s0 + ss : s0; /* odd height: last row counts twice */
        uint8_t *y0 = dy + (ptrdiff_t)row * dys;
        uint8_t *y1 = pair ? y0 + dys : NULL;
        uint8_t *u = du + (ptrdiff_t)(row / 2) * dus;
        uint8_t *v = dv + (ptrdiff_t)(row / 2) * dvs;
        for (int x0 = 0; x0 < w; x0 += CP_CHUNK) {
            const int n = w - x0 < CP_CHUNK ? w - x0 : CP_CHUNK;
            rgb_rows_y(s0 + (ptrdiff_t)x0 * bpp, s1 + (ptrdiff_t)x0 * bpp, y0 + x0,
                       pair ? y1 + x0 : yscratch, rs, gs, bs, n, k, bpp, ro, go, bo);
            if (n & 1) { /* odd width: last column counts twice */
                rs[n] = rs[n - 1];
                gs[n] = gs[n - 1];
                bs[n] = bs[n - 1];
            }
            rgb_sums_uv(rs, gs, bs, u + x0 / 2, v + x0 / 2, (n + 1) / 2, k);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* hand-written AVX2 RGB -> I420 (the hottest conversion; bit-identical to the kernels above)  */
#if CP_X86
#include <immintrin.h>

/* Same arithmetic as rgb_rows_y + rgb_sums_uv, one pass over a pair of source rows, no
 * temporaries, 32 pixels per step.  A 3-byte pixel is first widened to 4 bytes (the fourth
 * zero), so every layout is handled as 4 bytes per pixel with its byte positions folded into
 * the weight vectors (weight 0 for the alpha / padding byte):
 *
 * - luma: per pixel, the 16-bit lanes [b0 | b1 << 8, b2 | b3 << 8] (b = the pixel's bytes);
 *   `<< 8` gives [b0 << 8, b2 << 8] and `& 0xff00` gives [b1 << 8, b3 << 8]; vpmulhuw with the
 *   matching weights gives the same truncated products as mulhi_u16, and vphaddw adds each
 *   pixel's pair of lanes (wrapping 16-bit sums, as the scalar code).
 * - chroma: vpshufb groups each byte position of a horizontal pixel pair, vpmaddubsw against
 *   ones adds the pair, the two rows are added, and the 2x2 sums (0..1020) take the same
 *   vpmulhw products as mulhi_s16; two rounds of vphaddw add the four products of each sample;
 *   vpackuswb clamps to 0..255 exactly like clamp255_s16.
 * - outputs come out lane-interleaved and are put in order with one vpermd (luma) and a
 *   vpermq + vpshufb (chroma).
 * The last w % 32 columns go through the scalar kernels. */

#define CP_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))

typedef struct {
    __m256i kl, kh, yoff, hmask;   /* luma weights of bytes 0,2 / 1,3; offset; 0xff00 */
    __m256i ku, kv, coff;          /* chroma weights of bytes 0..3; offset                */
    __m256i pairs, w32, expand;    /* byte shuffles; 32 in every byte                     */
    __m256i yperm, uvfix;          /* output reordering                                   */
} avx2_rgb_k;

/* Weight of byte position p of a (widened) pixel with R, G, B at ro, go, bo, whose weights are
 * cr, cg, cb; any other position (alpha, padding) weighs 0. */
CP_INLINE uint16_t byte_weight(int p, int ro, int go, int bo, uint16_t cr, uint16_t cg,
                               uint16_t cb)
{
    return p == ro ? cr : p == go ? cg : p == bo ? cb : 0;
}

CP_INLINE int64_t weights4(int ro, int go, int bo, int16_t cr, int16_t cg, int16_t cb)
{
    uint64_t w = 0;
    for (int p = 0; p < 4; p++)
        w |= (uint64_t)byte_weight(p, ro, go, bo, (uint16_t)cr, (uint16_t)cg, (uint16_t)cb)
             << (16 * p);
    return (int64_t)w;
}

CP_AVX2_INLINE void avx2_rgb_setup(avx2_rgb_k *c, const rgb2yuv_k *k, int ro, int go, int bo)
{
    const uint16_t w0 = byte_weight(0, ro, go, bo, k->yr, k->yg, k->yb);
    const uint16_t w1 = byte_weight(1, ro, go, bo, k->yr, k->yg, k->yb);
    const uint16_t w2 = byte_weight(2, ro, go, bo, k->yr, k->yg, k->yb);
    const uint16_t w3 = byte_weight(3, ro, go, bo, k->yr, k->yg, k->yb);
    c->kl = _mm256_set1_epi32((int)((uint32_t)w0 | (uint32_t)w2 << 16));
    c->kh = _mm256_set1_epi32((int)((uint32_t)w1 | (uint32_t)w3 << 16));
    c->yoff = _mm256_set1_epi16((short)k->yoff);
    c->hmask = _mm256_set1_epi16((short)0xff00);
    c->ku = _mm256_set1_epi64x(weights4(ro, go, bo, k->ur, k->ug, k->ub));
    c->kv = _mm256_set1_epi64x(weights4(ro, go, bo, k->vr, k->vg, k->vb));
    c->coff = _mm256_set1_epi16(k->coff);
    /* per 128-bit lane (4 pixels): byte c of pixels 0,1 then of pixels 2,3, for c = 0..3 */
    c->pairs = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,
                                0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    c->w32 = _mm256_set1_epi8(32);
    /* 3 -> 4 bytes per pixel: lane 0 holds source bytes 0..15 (pixels 0..3 at 0..11), lane 1
     * bytes 8..23 (pixels 4..7 at 4..15); -128 gives a zero byte */
    c->expand = _mm256_setr_epi8(0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128,
                                 4, 5, 6, -128, 7, 8, 9, -128, 10, 11, 12, -128, 13, 14, 15,
                                 -128);
    c->yperm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    c->uvfix = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,
                                0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
}

/* 8 pixels as 8 x 4 bytes. */
CP_AVX2_INLINE __m256i avx2_load8(const uint8_t *p, const int bpp, const avx2_rgb_k *c)
{
    if (bpp == 4)
        return _mm256_loadu_si256((const __m256i *)(const void *)p);
    const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(p + 8));
    return _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1),
                               c->expand);
}

/* Per pixel, two 16-bit lanes whose (wrapping) sum is Y*256 without the offset. */
CP_AVX2_INLINE __m256i avx2_luma_terms(__m256i p, const avx2_rgb_k *c)
{
    const __m256i t02 = _mm256_mulhi_epu16(_mm256_slli_epi16(p, 8), c->kl);
    const __m256i t13 = _mm256_mulhi_epu16(_mm256_and_si256(p, c->hmask), c->kh);
    return _mm256_add_epi16(t02, t13);
}

/* 32 luma samples from the terms of pixels 0..7, 8..15, 16..23, 24..31. */
CP_AVX2_INLINE void avx2_store_y32(uint8_t *y, __m256i t0, __m256i t1, __m256i t2, __m256i t3,
                                   const avx2_rgb_k *c)
{
    /* vphaddw: [0-3, 8-11 | 4-7, 12-15] and [16-19, 24-27 | 20-23, 28-31] */
    const __m256i a = _mm256_srli_epi16(_mm256_add_epi16(_mm256_hadd_epi16(t0, t1), c->yoff), 8);
    const __m256i b = _mm256_srli_epi16(_mm256_add_epi16(_mm256_hadd_epi16(t2, t3), c->yoff), 8);
    /* bytes, in 4-pixel dwords: [0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31] */
    const __m256i yb = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), c->yperm);
    _mm256_storeu_si256((__m256i *)(void *)y, yb);
}

/* Horizontal pair sums of each byte position of 8 pixels, times 32 (at most 510 * 32, so the
 * two rows' sums add up to at most 32640 without overflow): per lane, [pixels 0+1: b0 b1 b2 b3,
 * pixels 2+3: b0 b1 b2 b3]. */
CP_AVX2_INLINE __m256i avx2_pair_sums(__m256i p, const avx2_rgb_k *c)
{
    return _mm256_maddubs_epi16(_mm256_shuffle_epi8(p, c->pairs), c->w32);
}

/* One chroma plane's 16 samples (in the order [0,1,4,5,8,9,12,13 | 2,3,6,7,10,11,14,15]) from
 * the block sums of pixels 0..7, 8..15, 16..23, 24..31. */
CP_AVX2_INLINE __m256i avx2_chroma16(__m256i s0, __m256i s1, __m256i s2, __m256i s3, __m256i kw,
                                     __m256i off)
{
    const __m256i a = _mm256_hadd_epi16(_mm256_mulhi_epi16(s0, kw), _mm256_mulhi_epi16(s1, kw));
    const __m256i b = _mm256_hadd_epi16(_mm256_mulhi_epi16(s2, kw), _mm256_mulhi_epi16(s3, kw));
    return _mm256_srai_epi16(_mm256_add_epi16(_mm256_hadd_epi16(a, b), off), 6);
}

CP_AVX2_INLINE void avx2_rgb_to_i420_body(const uint8_t *src, ptrdiff_t ss, int w, int h,
                                          uint8_t *dy, ptrdiff_t dys, uint8_t *du,
                                          ptrdiff_t dus, uint8_t *dv, ptrdiff_t dvs,
                                          const rgb2yuv_k *k, const int bpp, const int ro,
                                          const int go, const int bo)
{
    avx2_rgb_k c;
    avx2_rgb_setup(&c, k, ro, go, bo);
    const int wv = w & ~31; /* columns done with vectors; the rest (< 32) by the scalar code */
    const int n = w - wv;
    uint16_t rs[34], gs[34], bs[34];
    uint8_t yscratch[32];
    for (int row = 0; row < h; row += 2) {
        const int pair = row + 1 < h;
        const uint8_t *s0 = src + (ptrdiff_t)row * ss;
        const uint8_t *s1 = pair ? s0 + ss : s0; /* odd height: last row counts twice */
        uint8_t *y0 = dy + (ptrdiff_t)row * dys;
        uint8_t *y1 = pair ? y0 + dys : y0;     /* ... and its luma is stored twice */
        uint8_t *u = du + (ptrdiff_t)(row / 2) * dus;
        uint8_t *v = dv + (ptrdiff_t)(row / 2) * dvs;
        for (int x = 0; x < wv; x += 32) {
            const uint8_t *a = s0 + (ptrdiff_t)x * bpp, *b = s1 + (ptrdiff_t)x * bpp;
            __m256i p0 = avx2_load8(a, bpp, &c), p1 = avx2_load8(a + 8 * bpp, bpp, &c);
            __m256i p2 = avx2_load8(a + 16 * bpp, bpp, &c), p3 = avx2_load8(a + 24 * bpp, bpp, &c);
            avx2_store_y32(y0 + x, avx2_luma_terms(p0, &c), avx2_luma_terms(p1, &c),
                           avx2_luma_terms(p2, &c), avx2_luma_terms(p3, &c), &c);
            /* 2x2 sums of each byte position, times 32, per chroma sample */
            __m256i q0 = avx2_pair_sums(p0, &c), q1 = avx2_pair_sums(p1, &c);
            __m256i q2 = avx2_pair_sums(p2, &c), q3 = avx2_pair_sums(p3, &c);
            p0 = avx2_load8(b, bpp, &c), p1 = avx2_load8(b + 8 * bpp, bpp, &c);
            p2 = avx2_load8(b + 16 * bpp, bpp, &c), p3 = avx2_load8(b + 24 * bpp, bpp, &c);
            avx2_store_y32(y1 + x, avx2_luma_terms(p0, &c), avx2_luma_terms(p1, &c),
                           avx2_luma_terms(p2, &c), avx2_luma_terms(p3, &c), &c);
            q0 = _mm256_add_epi16(q0, avx2_pair_sums(p0, &c));
            q1 = _mm256_add_epi16(q1, avx2_pair_sums(p1, &c));
            q2 = _mm256_add_epi16(q2, avx2_pair_sums(p2, &c));
            q3 = _mm256_add_epi16(q3, avx2_pair_sums(p3, &c));
            const __m256i cu = avx2_chroma16(q0, q1, q2, q3, c.ku, c.coff);
            const __m256i cv = avx2_chroma16(q0, q1, q2, q3, c.kv, c.coff);
            /* words (sample pairs) [U01 U45 U89 U1213 V.. | U23 U67 U1011 U1415 V..] ->
             * [U0..15 | V0..15] */
            __m256i uv = _mm256_permute4x64_epi64(_mm256_packus_epi16(cu, cv), 0xd8);
            uv = _mm256_shuffle_epi8(uv, c.uvfix);
            _mm_storeu_si128((__m128i *)(void *)(u + x / 2), _mm256_castsi256_si128(uv));
            _mm_storeu_si128((__m128i *)(void *)(v + x / 2), _mm256_extracti128_si256(uv, 1));
        }
        if (n) {
            rgb_rows_y(s0 + (ptrdiff_t)wv * bpp, s1 + (ptrdiff_t)wv * bpp, y0 + wv,
                       pair ? y1 + wv : yscratch, rs, gs, bs, n, k, bpp, ro, go, bo);
            if (n & 1) {
                rs[n] = rs[n - 1];
                gs[n] = gs[n - 1];
                bs[n] = bs[n - 1];
            }
            rgb_sums_uv(rs, gs, bs, u + wv / 2, v + wv / 2, (n + 1) / 2, k);
        }
    }
}
#endif /* CP_X86 */

/* Per-chroma-sample terms in 1/64 level (two's complement in uint16), replicated to the two
 * pixels each sample covers.  (U-128)*256 fits int16 exactly; hi((U-128)*256 * c) with c a
 * 2^14-scaled weight is (U-128)*weight*64. */
CP_INLINE void yuv_chroma_terms(const uint8_t *restrict u, const uint8_t *restrict v,
                                uint16_t *restrict rt, uint16_t *restrict gt,
                                uint16_t *restrict bt, int m, const yuv2rgb_k *restrict k)
{
    const int16_t rv = k->rv, gu = k->gu, gv = k->gv, bu1 = k->bu1;
    for (int i = 0; i < m; i++) {
        const int16_t cu = (int16_t)((u[i] - 128) * 256), cv = (int16_t)((v[i] - 128) * 256);
        const uint16_t r = (uint16_t)mulhi_s16(cv, rv);
        const uint16_t g = (uint16_t)(mulhi_s16(cu, gu) + mulhi_s16(cv, gv));
        const uint16_t b = (uint16_t)(mulhi_s16(cu, bu1) + (u[i] - 128) * 64);
        rt[2 * i] = r;
        rt[2 * i + 1] = r;
        gt[2 * i] = g;
        gt[2 * i + 1] = g;
        bt[2 * i] = b;
        bt[2 * i + 1] = b;
    }
}

/* Biased 1/64-level value -> 0..255. */
CP_INLINE uint8_t unbias(uint16_t v)
{
    const uint16_t lo = CP_RGB_BIAS, hi = CP_RGB_BIAS + 255 * 64;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (uint8_t)((uint16_t)(v - lo) >> 6);
}

CP_INLINE void yuv_row_rgb(const uint8_t *restrict y, const uint16_t *restrict rt,
                           const uint16_t *restrict gt, const uint16_t *restrict bt,
                           uint8_t *restrict d, int n, const yuv2rgb_k *restrict k,
                           const int bpp, const int ro, const int go, const int bo, const int ao)
{
    const uint16_t yc = k->yc, yoff = k->yoff;
    if (bpp == 4) {
        /* Whole 4-byte pixels, assembled in a register and stored with memcpy (unaligned,
         * alias-safe): GCC vectorises this; four separate byte stores it does not. */
        for (int x = 0; x < n; x++) {
            const uint16_t yt = (uint16_t)(mulhi_u16((uint16_t)(y[x] << 8), yc) + yoff);
            const uint32_t px = ((uint32_t)unbias((uint16_t)(yt + rt[x])) << (8 * pix_shift(ro))) |
                                ((uint32_t)unbias((uint16_t)(yt + gt[x])) << (8 * pix_shift(go))) |
                                ((uint32_t)unbias((uint16_t)(yt + bt[x])) << (8 * pix_shift(bo))) |
                                ((uint32_t)255 << (8 * pix_shift(ao)));
            memcpy(d + 4 * x, &px, 4);
        }
        return;
    }
    for (int x = 0; x < n; x++) {
        const uint16_t yt = (uint16_t)(mulhi_u16((uint16_t)(y[x] << 8), yc) + yoff);
        d[x * bpp + ro] = unbias((uint16_t)(yt + rt[x]));
        d[x * bpp + go] = unbias((uint16_t)(yt + gt[x]));
        d[x * bpp + bo] = unbias((uint16_t)(yt + bt[x]));
    }
}

CP_INLINE void i420_to_rgb_body(const uint8_t *sy, ptrdiff_t sys, const uint8_t *su,
                                ptrdiff_t sus, const uint8_t *sv, ptrdiff_t svs, int w, int h,
                                uint8_t *dst, ptrdiff_t ds, const yuv2rgb_k *k, const int bpp,
                                const int ro, const int go, const int bo, const int ao)
{
    uint16_t rt[CP_CHUNK + 2], gt[CP_CHUNK + 2], bt[CP_CHUNK + 2];
    for (int row = 0; row < h; row += 2) {
        const int pair = row + 1 < h;
        const uint8_t *y0 = sy + (ptrdiff_t)row * sys;
        const uint8_t *u = su + (ptrdiff_t)(row / 2) * sus;
        const uint8_t *v = sv + (ptrdiff_t)(row / 2) * svs;
        uint8_t *d0 = dst + (ptrdiff_t)row * ds;
        for (int x0 = 0; x0 < w; x0 += CP_CHUNK) {
            const int n = w - x0 < CP_CHUNK ? w - x0 : CP_CHUNK;
            yuv_chroma_terms(u + x0 / 2, v + x0 / 2, rt, gt, bt, (n + 1) / 2, k);
            yuv_row_rgb(y0 + x0, rt, gt, bt, d0 + (ptrdiff_t)x0 * bpp, n, k, bpp, ro, go, bo,
                        ao);
            if (pair)
                yuv_row_rgb(y0 + sys + x0, rt, gt, bt, d0 + ds + (ptrdiff_t)x0 * bpp, n, k, bpp,
                            ro, go, bo, ao);
        }
    }
}

CP_INLINE void deinterleave_row(const uint8_t *restrict s, uint8_t *restrict a,
                                uint8_t *restrict b, int m)
{
    for (int i = 0; i < m; i++) {
        a[i] = s[2 * i];
        b[i] = s[2 * i + 1];
    }
}

CP_INLINE void nv_to_i420_body(const uint8_t *sy, ptrdiff_t sys, const uint8_t *suv,
                               ptrdiff_t suvs, int w, int h, uint8_t *dy, ptrdiff_t dys,
                               uint8_t *da, ptrdiff_t das, uint8_t *db, ptrdiff_t dbs)
{
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    for (int row = 0; row < h; row++)
        memcpy(dy + (ptrdiff_t)row * dys, sy + (ptrdiff_t)row * sys, (size_t)w);
    for (int row = 0; row < ch; row++)
        deinterleave_row(suv + (ptrdiff_t)row * suvs, da + (ptrdiff_t)row * das,
                         db + (ptrdiff_t)row * dbs, cw);
}

CP_INLINE void p422_row_y(const uint8_t *restrict s, uint8_t *restrict y, int n, const int yo)
{
    for (int x = 0; x < n; x++)
        y[x] = s[2 * x + yo];
}

CP_INLINE void p422_rows_uv(const uint8_t *restrict s0, const uint8_t *restrict s1,
                            uint8_t *restrict u, uint8_t *restrict v, int m, const int uo,
                            const int vo)
{
    for (int i = 0; i < m; i++) {
        u[i] = (uint8_t)((s0[4 * i + uo] + s1[4 * i + uo] + 1) >> 1);
        v[i] = (uint8_t)((s0[4 * i + vo] + s1[4 * i + vo] + 1) >> 1);
    }
}

CP_INLINE void p422_to_i420_body(const uint8_t *src, ptrdiff_t ss, int w, int h, uint8_t *dy,
                                 ptrdiff_t dys, uint8_t *du, ptrdiff_t dus, uint8_t *dv,
                                 ptrdiff_t dvs, const int yo, const int uo, const int vo)
{
    const int cw = (w + 1) / 2;
    for (int row = 0; row < h; row += 2) {
        const int pair = row + 1 < h;
        const uint8_t *s0 = src + (ptrdiff_t)row * ss;
        const uint8_t *s1 = pair ? s0 + ss : s0;
        p422_row_y(s0, dy + (ptrdiff_t)row * dys, w, yo);
        if (pair)
            p422_row_y(s1, dy + (ptrdiff_t)(row + 1) * dys, w, yo);
        p422_rows_uv(s0, s1, du + (ptrdiff_t)(row / 2) * dus, dv + (ptrdiff_t)(row / 2) * dvs,
                     cw, uo, vo);
    }
}

CP_INLINE void box_row(const uint8_t *restrict s0, const uint8_t *restrict s1,
                       uint8_t *restrict d, int m)
{
    for (int i = 0; i < m; i++)
        d[i] = (uint8_t)((s0[2 * i] + s0[2 * i + 1] + s1[2 * i] + s1[2 * i + 1] + 2) >> 2);
}

CP_INLINE void box_plane_body(const uint8_t *src, ptrdiff_t ss, int w, int h, uint8_t *dst,
                              ptrdiff_t ds)
{
    for (int row = 0; row < h; row += 2) {
        const uint8_t *s0 = src + (ptrdiff_t)row * ss;
        const uint8_t *s1 = row + 1 < h ? s0 + ss : s0;
        uint8_t *d = dst + (ptrdiff_t)(row / 2) * ds;
        box_row(s0, s1, d, w / 2);
        if (w & 1)
            d[w / 2] = (uint8_t)((s0[w - 1] + s1[w - 1] + 1) >> 1);
    }
}

/* Vertical pass of the bilinear scaler: t[x] = a[x]*(256-f) + b[x]*f (exact, 0..65280). */
CP_INLINE void vblend_body(const uint8_t *restrict a, const uint8_t *restrict b,
                           uint16_t *restrict t, int n, int f)
{
    const uint16_t fa = (uint16_t)(256 - f), fb = (uint16_t)f;
    for (int x = 0; x < n; x++)
        t[x] = (uint16_t)(a[x] * fa + b[x] * fb);
}

/* ------------------------------------------------------------------------------------------ */
/* instantiations: baseline and AVX2                                                           */

typedef void (*rgb2i420_fn)(const uint8_t *, ptrdiff_t, int, int, uint8_t *, ptrdiff_t,
                            uint8_t *, ptrdiff_t, uint8_t *, ptrdiff_t, const rgb2yuv_k *);
typedef void (*i4202rgb_fn)(const uint8_t *, ptrdiff_t, const uint8_t *, ptrdiff_t,
                            const uint8_t *, ptrdiff_t, int, int, uint8_t *, ptrdiff_t,
                            const yuv2rgb_k *);
typedef void (*nv_fn)(const uint8_t *, ptrdiff_t, const uint8_t *, ptrdiff_t, int, int,
                      uint8_t *, ptrdiff_t, uint8_t *, ptrdiff_t, uint8_t *, ptrdiff_t);
typedef void (*p422_fn)(const uint8_t *, ptrdiff_t, int, int, uint8_t *, ptrdiff_t, uint8_t *,
                        ptrdiff_t, uint8_t *, ptrdiff_t);
typedef void (*box_fn)(const uint8_t *, ptrdiff_t, int, int, uint8_t *, ptrdiff_t);
typedef void (*vblend_fn)(const uint8_t *, const uint8_t *, uint16_t *, int, int);

typedef struct {
    rgb2i420_fn rgb2i420[5]; /* indexed by cp_pixfmt RGB24..ARGB */
    i4202rgb_fn i4202rgb[4]; /* RGB24..BGRA */
    nv_fn nv;
    p422_fn p422[2];         /* YUYV, UYVY */
    box_fn box;
    vblend_fn vblend;
} kernel_set;

/* RGB -> I420 body of each set: the auto-vectorised one, or the hand-written AVX2 one */
#define RGB_BODY_base rgb_to_i420_body
#define RGB_BODY_avx2 avx2_rgb_to_i420_body

#define DEF_RGB2I420(name, attr, body, bpp, ro, go, bo)                                         \
    static attr void name(const uint8_t *s, ptrdiff_t ss, int w, int h, uint8_t *dy,           \
                          ptrdiff_t dys, uint8_t *du, ptrdiff_t dus, uint8_t *dv, ptrdiff_t dvs, \
                          const rgb2yuv_k *k)                                                   \
    {                                                                                           \
        body(s, ss, w, h, dy, dys, du, dus, dv, dvs, k, bpp, ro, go, bo);                       \
    }

#define DEF_I4202RGB(name, attr, bpp, ro, go, bo, ao)                                           \
    static attr void name(const uint8_t *sy, ptrdiff_t sys, const uint8_t *su, ptrdiff_t sus,   \
                          const uint8_t *sv, ptrdiff_t svs, int w, int h, uint8_t *d,           \
                          ptrdiff_t ds, const yuv2rgb_k *k)                                     \
    {                                                                                           \
        i420_to_rgb_body(sy, sys, su, sus, sv, svs, w, h, d, ds, k, bpp, ro, go, bo, ao);       \
    }

#define DEF_SET(sfx, attr)                                                                      \
    DEF_RGB2I420(rgb24_i420_##sfx, attr, RGB_BODY_##sfx, 3, 0, 1, 2)                            \
    DEF_RGB2I420(bgr24_i420_##sfx, attr, RGB_BODY_##sfx, 3, 2, 1, 0)                            \
    DEF_RGB2I420(rgba_i420_##sfx, attr, RGB_BODY_##sfx, 4, 0, 1, 2)                             \
    DEF_RGB2I420(bgra_i420_##sfx, attr, RGB_BODY_##sfx, 4, 2, 1, 0)                             \
    DEF_RGB2I420(argb_i420_##sfx, attr, RGB_BODY_##sfx, 4, 1, 2, 3)                             \
    DEF_I4202RGB(i420_rgb24_##sfx, attr, 3, 0, 1, 2, 0)                                         \
    DEF_I4202RGB(i420_bgr24_##sfx, attr, 3, 2, 1, 0, 0)                                         \
    DEF_I4202RGB(i420_rgba_##sfx, attr, 4, 0, 1, 2, 3)                                          \
    DEF_I4202RGB(i420_bgra_##sfx, attr, 4, 2, 1, 0, 3)                                          \
    static attr void nv_i420_##sfx(const uint8_t *sy, ptrdiff_t sys, const uint8_t *suv,        \
                                   ptrdiff_t suvs, int w, int h, uint8_t *dy, ptrdiff_t dys,    \
                                   uint8_t *da, ptrdiff_t das, uint8_t *db, ptrdiff_t dbs)      \
    {                                                                                           \
        nv_to_i420_body(sy, sys, suv, suvs, w, h, dy, dys, da, das, db, dbs);                   \
    }                                                                                           \
    static attr void yuyv_i420_##sfx(const uint8_t *s, ptrdiff_t ss, int w, int h, uint8_t *dy, \
                                     ptrdiff_t dys, uint8_t *du, ptrdiff_t dus, uint8_t *dv,    \
                                     ptrdiff_t dvs)                                             \
    {                                                                                           \
        p422_to_i420_body(s, ss, w, h, dy, dys, du, dus, dv, dvs, 0, 1, 3);                     \
    }                                                                                           \
    static attr void uyvy_i420_##sfx(const uint8_t *s, ptrdiff_t ss, int w, int h, uint8_t *dy, \
                                     ptrdiff_t dys, uint8_t *du, ptrdiff_t dus, uint8_t *dv,    \
                                     ptrdiff_t dvs)                                             \
    {                                                                                           \
        p422_to_i420_body(s, ss, w, h, dy, dys, du, dus, dv, dvs, 1, 0, 2);                     \
    }                                                                                           \
    static attr void box_##sfx(const uint8_t *s, ptrdiff_t ss, int w, int h, uint8_t *d,        \
                               ptrdiff_t ds)                                                    \
    {                                                                                           \
        box_plane_body(s, ss, w, h, d, ds);                                                     \
    }                                                                                           \
    static attr void vblend_##sfx(const uint8_t *a, const uint8_t *b, uint16_t *t, int n,       \
                                  int f)                                                        \
    {                                                                                           \
        vblend_body(a, b, t, n, f);                                                             \
    }                                                                                           \
    static const kernel_set kernels_##sfx = {                                                   \
        {rgb24_i420_##sfx, bgr24_i420_##sfx, rgba_i420_##sfx, bgra_i420_##sfx,                  \
         argb_i420_##sfx},                                                                      \
        {i420_rgb24_##sfx, i420_bgr24_##sfx, i420_rgba_##sfx, i420_bgra_##sfx},                 \
        nv_i420_##sfx,                                                                          \
        {yuyv_i420_##sfx, uyvy_i420_##sfx},                                                     \
        box_##sfx,                                                                              \
        vblend_##sfx,                                                                           \
    };

DEF_SET(base, )
#if CP_X86
DEF_SET(avx2, CP_TARGET_AVX2)
#endif

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                    */

static atomic_int simd_request = CP_SIMD_AUTO;

static int cpu_has_avx2(void)
{
#if CP_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

int cp_convert_simd(void)
{
    const int req = atomic_load_explicit(&simd_request, memory_order_relaxed);
    if (req == CP_SIMD_BASELINE)
        return CP_SIMD_BASELINE;
    return cpu_has_avx2() ? CP_SIMD_AVX2 : CP_SIMD_BASELINE;
}

int cp_convert_set_simd(int level)
{
    if (level != CP_SIMD_AUTO && level != CP_SIMD_BASELINE && level != CP_SIMD_AVX2)
        level = CP_SIMD_AUTO;
    atomic_store_explicit(&simd_request, level, memory_order_relaxed);
    return cp_convert_simd();
}

static const kernel_set *kernels(void)
{
#if CP_X86
    if (cp_convert_simd() == CP_SIMD_AVX2)
        return &kernels_avx2;
#endif
    return &kernels_base;
}

/* ------------------------------------------------------------------------------------------ */
/* public entry points                                                                         */

static int bad_dims(int w, int h)
{
    return w < 1 || h < 1 || w > CP_MAX_DIM || h > CP_MAX_DIM;
}

static int bad_matrix(int matrix)
{
    return matrix != CP_MATRIX_BT601 && matrix != CP_MATRIX_BT709;
}

int cp_rgb_to_i420(const uint8_t *src, ptrdiff_t src_stride, int fmt, int width, int height,
                   uint8_t *dst_y, ptrdiff_t y_stride, uint8_t *dst_u, ptrdiff_t u_stride,
                   uint8_t *dst_v, ptrdiff_t v_stride, int matrix, int full_range)
{
    if (!src || !dst_y || !dst_u || !dst_v || bad_dims(width, height) || bad_matrix(matrix) ||
        fmt < CP_PIX_RGB24 || fmt > CP_PIX_ARGB)
        return CP_CONVERT_EINVAL;
    rgb2yuv_k k;
    make_rgb2yuv(matrix, full_range != 0, &k);
    kernels()->rgb2i420[fmt](src, src_stride, width, height, dst_y, y_stride, dst_u, u_stride,
                             dst_v, v_stride, &k);
    return CP_CONVERT_OK;
}

int cp_i420_to_rgb(const uint8_t *src_y, ptrdiff_t y_stride, const uint8_t *src_u,
                   ptrdiff_t u_stride, const uint8_t *src_v, ptrdiff_t v_stride, int width,
                   int height, uint8_t *dst, ptrdiff_t dst_stride, int fmt, int matrix,
                   int full_range)
{
    if (!src_y || !src_u || !src_v || !dst || bad_dims(width, height) || bad_matrix(matrix) ||
        fmt < CP_PIX_RGB24 || fmt > CP_PIX_BGRA)
        return CP_CONVERT_EINVAL;
    yuv2rgb_k k;
    make_yuv2rgb(matrix, full_range != 0, &k);
    kernels()->i4202rgb[fmt](src_y, y_stride, src_u, u_stride, src_v, v_stride, width, height,
                             dst, dst_stride, &k);
    return CP_CONVERT_OK;
}

int cp_nv12_to_i420(const uint8_t *src_y, ptrdiff_t y_stride, const uint8_t *src_uv,
                    ptrdiff_t uv_stride, int uv_order, int width, int height, uint8_t *dst_y,
                    ptrdiff_t dst_y_stride, uint8_t *dst_u, ptrdiff_t u_stride, uint8_t *dst_v,
                    ptrdiff_t v_stride)
{
    if (!src_y || !src_uv || !dst_y || !dst_u || !dst_v || bad_dims(width, height) ||
        (uv_order != 0 && uv_order != 1))
        return CP_CONVERT_EINVAL;
    /* NV21 is NV12 with the destinations of the two deinterleaved streams swapped. */
    if (uv_order == 0)
        kernels()->nv(src_y, y_stride, src_uv, uv_stride, width, height, dst_y, dst_y_stride,
                      dst_u, u_stride, dst_v, v_stride);
    else
        kernels()->nv(src_y, y_stride, src_uv, uv_stride, width, height, dst_y, dst_y_stride,
                      dst_v, v_stride, dst_u, u_stride);
    return CP_CONVERT_OK;
}

int cp_packed422_to_i420(const uint8_t *src, ptrdiff_t src_stride, int fmt, int width,
                         int height, uint8_t *dst_y, ptrdiff_t y_stride, uint8_t *dst_u,
                         ptrdiff_t u_stride, uint8_t *dst_v, ptrdiff_t v_stride)
{
    if (!src || !dst_y || !dst_u || !dst_v || bad_dims(width, height) ||
        (fmt != CP_PIX_YUYV && fmt != CP_PIX_UYVY))
        return CP_CONVERT_EINVAL;
    kernels()->p422[fmt - CP_PIX_YUYV](src, src_stride, width, height, dst_y, y_stride, dst_u,
                                       u_stride, dst_v, v_stride);
    return CP_CONVERT_OK;
}

int cp_i420_box_half(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                     ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                     int src_width, int src_height, uint8_t *dst_y, ptrdiff_t dst_y_stride,
                     uint8_t *dst_u, ptrdiff_t dst_u_stride, uint8_t *dst_v,
                     ptrdiff_t dst_v_stride)
{
    if (!src_y || !src_u || !src_v || !dst_y || !dst_u || !dst_v ||
        bad_dims(src_width, src_height))
        return CP_CONVERT_EINVAL;
    const kernel_set *ks = kernels();
    const int cw = (src_width + 1) / 2, ch = (src_height + 1) / 2;
    ks->box(src_y, src_y_stride, src_width, src_height, dst_y, dst_y_stride);
    ks->box(src_u, src_u_stride, cw, ch, dst_u, dst_u_stride);
    ks->box(src_v, src_v_stride, cw, ch, dst_v, dst_v_stride);
    return CP_CONVERT_OK;
}

/* Source position of each destination column/row: integer part and an 8-bit fraction.
 * Centre-aligned: s = (d + 0.5) * sn / dn - 0.5, clamped to [0, sn - 1], in 16.16 fixed point. */
static void bilinear_map(int sn, int dn, int32_t *idx, int32_t *frac)
{
    const int64_t lim = (int64_t)(sn - 1) << 16;
    for (int d = 0; d < dn; d++) {
        int64_t s = (((int64_t)(2 * d + 1) * sn) << 16) / (2 * (int64_t)dn) - 32768;
        s = s < 0 ? 0 : s;
        s = s > lim ? lim : s;
        idx[d] = (int32_t)(s >> 16);
        frac[d] = (int32_t)((s >> 8) & 255);
    }
}

/* One plane; scratch holds 2*dw + 2*dh int32 and sw + 1 uint16 (see cp_i420_scale_bilinear). */
static void bilinear_plane(const kernel_set *ks, const uint8_t *src, ptrdiff_t ss, int sw,
                           int sh, uint8_t *dst, ptrdiff_t ds, int dw, int dh, int32_t *xi,
                           int32_t *xf, int32_t *yi, int32_t *yf, uint16_t *t)
{
    bilinear_map(sw, dw, xi, xf);
    bilinear_map(sh, dh, yi, yf);
    for (int row = 0; row < dh; row++) {
        const uint8_t *a = src + (ptrdiff_t)yi[row] * ss;
        const uint8_t *b = yi[row] + 1 < sh ? a + ss : a;
        ks->vblend(a, b, t, sw, yf[row]);
        t[sw] = t[sw - 1]; /* right edge: x0 + 1 may equal sw (with weight 0) */
        uint8_t *d = dst + (ptrdiff_t)row * ds;
        for (int x = 0; x < dw; x++) {
            const uint32_t l = t[xi[x]], r = t[xi[x] + 1], f = (uint32_t)xf[x];
            d[x] = (uint8_t)((l * (256 - f) + r * f + 32768) >> 16);
        }
    }
}

int cp_i420_scale_bilinear(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                           ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                           int src_width, int src_height, uint8_t *dst_y, ptrdiff_t dst_y_stride,
                           uint8_t *dst_u, ptrdiff_t dst_u_stride, uint8_t *dst_v,
                           ptrdiff_t dst_v_stride, int dst_width, int dst_height)
{
    if (!src_y || !src_u || !src_v || !dst_y || !dst_u || !dst_v ||
        bad_dims(src_width, src_height) || bad_dims(dst_width, dst_height))
        return CP_CONVERT_EINVAL;
    /* luma sizes bound the chroma ones, so one scratch block serves all three planes */
    const size_t n32 = 2 * (size_t)dst_width + 2 * (size_t)dst_height;
    void *mem = malloc(n32 * sizeof(int32_t) + ((size_t)src_width + 1) * sizeof(uint16_t));
    if (!mem)
        return CP_CONVERT_ENOMEM;
    int32_t *xi = mem, *xf = xi + dst_width, *yi = xf + dst_width, *yf = yi + dst_height;
    uint16_t *t = (uint16_t *)(yf + dst_height);
    const kernel_set *ks = kernels();
    const int scw = (src_width + 1) / 2, sch = (src_height + 1) / 2;
    const int dcw = (dst_width + 1) / 2, dch = (dst_height + 1) / 2;
    bilinear_plane(ks, src_y, src_y_stride, src_width, src_height, dst_y, dst_y_stride,
                   dst_width, dst_height, xi, xf, yi, yf, t);
    bilinear_plane(ks, src_u, src_u_stride, scw, sch, dst_u, dst_u_stride, dcw, dch, xi, xf, yi,
                   yf, t);
    bilinear_plane(ks, src_v, src_v_stride, scw, sch, dst_v, dst_v_stride, dcw, dch, xi, xf, yi,
                   yf, t);
    free(mem);
    return CP_CONVERT_OK;
}
