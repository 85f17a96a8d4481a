/* cp_compose.c - compose I420 pictures into one canvas: fills, bilinear scaling into
 * rectangles, a 5x7 bitmap font, whole layouts.  See cp_compose.h. */
#include "callpipe/cp_compose.h"

#include <stdlib.h>

#define MAX_DIM 65536

/* ---- the font ---------------------------------------------------------------------------
 * ASCII 32..126, 7 rows of 5 pixels each, bit 4 the leftmost pixel.  Drawn for callpipe. */
static const uint8_t FONT[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /*   */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}, /* ! */
    {0x0a, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00}, /* " */
    {0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a}, /* # */
    {0x04, 0x0f, 0x14, 0x0e, 0x05, 0x1e, 0x04}, /* $ */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, /* % */
    {0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d}, /* & */
    {0x04, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00}, /* quote */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00}, /* star */
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}, /* . */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* slash */
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}, /* 0 */
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* 1 */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}, /* 2 */
    {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}, /* 3 */
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}, /* 4 */
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}, /* 5 */
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}, /* 6 */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}, /* 8 */
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}, /* 9 */
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}, /* : */
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x04, 0x08}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}, /* < */
    {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}, /* > */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, /* ? */
    {0x0e, 0x11, 0x01, 0x0d, 0x15, 0x15, 0x0e}, /* @ */
    {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}, /* A */
    {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}, /* B */
    {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}, /* C */
    {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c}, /* D */
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}, /* E */
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}, /* F */
    {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}, /* G */
    {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}, /* H */
    {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}, /* J */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}, /* L */
    {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}, /* N */
    {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}, /* O */
    {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}, /* P */
    {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}, /* Q */
    {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}, /* R */
    {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}, /* S */
    {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* T */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}, /* V */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}, /* W */
    {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}, /* X */
    {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}, /* Y */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}, /* Z */
    {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e}, /* [ */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00}, /* backslash */
    {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e}, /* ] */
    {0x04, 0x0a, 0x11, 0x00, 0x00, 0x00, 0x00}, /* ^ */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}, /* _ */
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00}, /* ` */
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}, /* a */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e}, /* b */
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}, /* c */
    {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f}, /* d */
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}, /* e */
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08}, /* f */
    {0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* h */
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, /* k */
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* l */
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* n */
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e}, /* o */
    {0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* r */
    {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e}, /* s */
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a}, /* w */
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* y */
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f}, /* z */
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02}, /* { */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* | */
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08}, /* } */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00}, /* ~ */
};

void cp_compose_glyph(int c, uint8_t *rows) {
    if (c < 32 || c > 126) c = '?';
    for (int r = 0; r < CP_FONT_HEIGHT; r++) rows[r] = FONT[c - 32][r];
}

/* ---- helpers ----------------------------------------------------------------------------- */
static int floor_half(int v) { return v >= 0 ? v / 2 : -((1 - v) / 2); }
static int ceil_half(int v) { return v >= 0 ? (v + 1) / 2 : -((-v) / 2); }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static uint8_t clamp_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

static int image_ok(const cp_image *im) {
    return im && im->y && im->u && im->v && im->width >= 1 && im->height >= 1 &&
           im->width <= MAX_DIM && im->height <= MAX_DIM;
}

/* Coordinates and sizes beyond +-2^24 pixels are refused (keeps all arithmetic in range). */
#define COORD_LIMIT (1 << 24)
static int rect_ok(int x, int y, int w, int h) {
    return x > -COORD_LIMIT && x < COORD_LIMIT && y > -COORD_LIMIT && y < COORD_LIMIT &&
           w < COORD_LIMIT && h < COORD_LIMIT;
}

/* Clip [x, x+w) to [lo, hi); returns the clipped width (<= 0: nothing left). */
static int clip_span(int *x, int w, int lo, int hi) {
    long a = *x, b = (long)*x + w;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    *x = (int)a;
    return (int)(b - a);
}

static void fill_plane(uint8_t *p, ptrdiff_t stride, int pw, int ph, int x, int y, int w, int h,
                       uint8_t value) {
    w = clip_span(&x, w, 0, pw);
    h = clip_span(&y, h, 0, ph);
    if (w <= 0 || h <= 0) return;
    for (int r = 0; r < h; r++) {
        uint8_t *row = p + (ptrdiff_t)(y + r) * stride + x;
        for (int c = 0; c < w; c++) row[c] = value;
    }
}

/* Chroma rectangle of the luma rectangle (x, y, w, h). */
static void chroma_rect(int x, int y, int w, int h, int *cx, int *cy, int *cw, int *ch) {
    *cx = floor_half(x);
    *cy = floor_half(y);
    *cw = ceil_half(x + w) - *cx;
    *ch = ceil_half(y + h) - *cy;
}

int cp_compose_fill(const cp_image *dst, int x, int y, int width, int height, int cy, int cu,
                    int cv) {
    if (!image_ok(dst) || !rect_ok(x, y, width, height)) return CP_COMPOSE_EINVAL;
    if (width <= 0 || height <= 0) return CP_COMPOSE_OK;
    int cx, cyy, cw, ch;
    int pw = (dst->width + 1) / 2, ph = (dst->height + 1) / 2;
    fill_plane(dst->y, dst->y_stride, dst->width, dst->height, x, y, width, height, clamp_u8(cy));
    chroma_rect(x, y, width, height, &cx, &cyy, &cw, &ch);
    fill_plane(dst->u, dst->u_stride, pw, ph, cx, cyy, cw, ch, clamp_u8(cu));
    fill_plane(dst->v, dst->v_stride, pw, ph, cx, cyy, cw, ch, clamp_u8(cv));
    return CP_COMPOSE_OK;
}

static void shade_plane(uint8_t *p, ptrdiff_t stride, int pw, int ph, int x, int y, int w, int h,
                        int centre, int keep) {
    w = clip_span(&x, w, 0, pw);
    h = clip_span(&y, h, 0, ph);
    if (w <= 0 || h <= 0) return;
    for (int r = 0; r < h; r++) {
        uint8_t *row = p + (ptrdiff_t)(y + r) * stride + x;
        for (int c = 0; c < w; c++) {
            int d = row[c] - centre;
            /* round half away from zero so that shading is symmetric around the centre */
            int s = d >= 0 ? (d * keep + 128) >> 8 : -((-d * keep + 128) >> 8);
            row[c] = clamp_u8(centre + s);
        }
    }
}

int cp_compose_shade(const cp_image *dst, int x, int y, int width, int height, int keep_256) {
    if (!image_ok(dst) || !rect_ok(x, y, width, height) || keep_256 < 0 || keep_256 > 256)
        return CP_COMPOSE_EINVAL;
    if (width <= 0 || height <= 0) return CP_COMPOSE_OK;
    int cx, cyy, cw, ch;
    int pw = (dst->width + 1) / 2, ph = (dst->height + 1) / 2;
    shade_plane(dst->y, dst->y_stride, dst->width, dst->height, x, y, width, height, 16,
                keep_256);
    chroma_rect(x, y, width, height, &cx, &cyy, &cw, &ch);
    shade_plane(dst->u, dst->u_stride, pw, ph, cx, cyy, cw, ch, 128, keep_256);
    shade_plane(dst->v, dst->v_stride, pw, ph, cx, cyy, cw, ch, 128, keep_256);
    return CP_COMPOSE_OK;
}

/* ---- bilinear scaling into a rectangle ----------------------------------------------------
 * Destination sample i of a span of n maps to source position ((2i + 1) * s / (2n)) - 1/2
 * (pixel centres aligned), in 16.16 fixed point, clamped to [0, s - 1]; weights are 8 bits.
 * `idx` / `frac` receive the left (top) source index and the weight of the right (bottom) one
 * for destination samples first..first+count-1. */
static void map_span(int s, int n, int first, int count, int *idx, uint8_t *frac) {
    for (int k = 0; k < count; k++) {
        long long i = first + k;
        long long pos = ((2 * i + 1) * (long long)s * 65536) / (2LL * n) - 32768;
        if (pos < 0) pos = 0;
        int i0 = (int)(pos >> 16);
        int f = (int)((pos >> 8) & 255);
        if (i0 >= s - 1) {
            i0 = s - 1;
            f = 0;
        }
        idx[k] = i0;
        frac[k] = (uint8_t)f;
    }
}

static int scale_plane(const uint8_t *src, ptrdiff_t sstride, int sw, int sh, uint8_t *dst,
                       ptrdiff_t dstride, int pw, int ph, int x, int y, int w, int h) {
    if (w <= 0 || h <= 0) return CP_COMPOSE_OK;
    int vx = x, vy = y;
    int vw = clip_span(&vx, w, 0, pw), vh = clip_span(&vy, h, 0, ph);
    if (vw <= 0 || vh <= 0) return CP_COMPOSE_OK;
    int *xi = malloc(sizeof(int) * (size_t)vw);
    uint8_t *xf = malloc((size_t)vw);
    if (!xi || !xf) {
        free(xi);
        free(xf);
        return CP_COMPOSE_ENOMEM;
    }
    map_span(sw, w, vx - x, vw, xi, xf);
    for (int r = 0; r < vh; r++) {
        int yi;
        uint8_t yf;
        map_span(sh, h, vy - y + r, 1, &yi, &yf);
        const uint8_t *r0 = src + (ptrdiff_t)yi * sstride;
        const uint8_t *r1 = src + (ptrdiff_t)imin(yi + 1, sh - 1) * sstride;
        uint8_t *out = dst + (ptrdiff_t)(vy + r) * dstride + vx;
        int wy1 = yf, wy0 = 256 - yf;
        for (int c = 0; c < vw; c++) {
            int i0 = xi[c], i1 = imin(i0 + 1, sw - 1);
            int wx1 = xf[c], wx0 = 256 - wx1;
            int top = r0[i0] * wx0 + r0[i1] * wx1;
            int bot = r1[i0] * wx0 + r1[i1] * wx1;
            out[c] = (uint8_t)((top * wy0 + bot * wy1 + 32768) >> 16);
        }
    }
    free(xi);
    free(xf);
    return CP_COMPOSE_OK;
}

int cp_compose_scale(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                     ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                     int src_width, int src_height, const cp_image *dst, int x, int y,
                     int width, int height) {
    if (!image_ok(dst) || !src_y || !src_u || !src_v || src_width < 1 || src_height < 1 ||
        src_width > MAX_DIM || src_height > MAX_DIM || !rect_ok(x, y, width, height) ||
        width > 4 * MAX_DIM || height > 4 * MAX_DIM)
        return CP_COMPOSE_EINVAL;
    if (width <= 0 || height <= 0) return CP_COMPOSE_OK;
    int rc = scale_plane(src_y, src_y_stride, src_width, src_height, dst->y, dst->y_stride,
                         dst->width, dst->height, x, y, width, height);
    if (rc) return rc;
    int cx, cy, cw, ch;
    int scw = (src_width + 1) / 2, sch = (src_height + 1) / 2;
    int pw = (dst->width + 1) / 2, ph = (dst->height + 1) / 2;
    chroma_rect(x, y, width, height, &cx, &cy, &cw, &ch);
    rc = scale_plane(src_u, src_u_stride, scw, sch, dst->u, dst->u_stride, pw, ph, cx, cy, cw, ch);
    if (rc) return rc;
    return scale_plane(src_v, src_v_stride, scw, sch, dst->v, dst->v_stride, pw, ph, cx, cy, cw,
                       ch);
}

/* ---- text -------------------------------------------------------------------------------- */
int cp_compose_text_width(const char *text, int scale) {
    if (!text || scale < 1) return 0;
    long n = 0;
    while (text[n] && n < 4096) n++;
    if (n == 0) return 0;
    long w = (n * CP_FONT_ADVANCE - (CP_FONT_ADVANCE - CP_FONT_WIDTH)) * (long)scale;
    return w > 4 * MAX_DIM ? 4 * MAX_DIM : (int)w;
}

int cp_compose_text(const cp_image *dst, int x, int y, const char *text, int scale, int cy,
                    int cu, int cv, int clip_x, int clip_y, int clip_w, int clip_h) {
    if (!image_ok(dst) || !text || scale < 1 || scale > 256 || !rect_ok(x, y, 0, 0) ||
        !rect_ok(clip_x, clip_y, clip_w, clip_h))
        return CP_COMPOSE_EINVAL;
    /* the clip rectangle, intersected with the canvas */
    int cw = clip_span(&clip_x, clip_w, 0, dst->width);
    int chh = clip_span(&clip_y, clip_h, 0, dst->height);
    if (cw <= 0 || chh <= 0) return CP_COMPOSE_OK;
    int pw = (dst->width + 1) / 2, ph = (dst->height + 1) / 2;
    uint8_t Y = clamp_u8(cy), U = clamp_u8(cu), V = clamp_u8(cv);
    long pen = x;
    for (int i = 0; text[i] && i < 4096; i++, pen += (long)CP_FONT_ADVANCE * scale) {
        if (pen >= clip_x + cw) break;
        if (pen + (long)CP_FONT_WIDTH * scale <= clip_x) continue;
        uint8_t rows[CP_FONT_HEIGHT];
        cp_compose_glyph((unsigned char)text[i], rows);
        for (int r = 0; r < CP_FONT_HEIGHT; r++) {
            for (int c = 0; c < CP_FONT_WIDTH; c++) {
                if (!(rows[r] & (0x10 >> c))) continue;
                int px = (int)pen + c * scale, py = y + r * scale;
                int w = scale, h = scale;
                /* clip the font pixel to the clip rectangle */
                int lo = imax(px, clip_x), hi = imin(px + w, clip_x + cw);
                int top = imax(py, clip_y), bot = imin(py + h, clip_y + chh);
                if (lo >= hi || top >= bot) continue;
                fill_plane(dst->y, dst->y_stride, dst->width, dst->height, lo, top, hi - lo,
                           bot - top, Y);
                int ccx, ccy, ccw, cch;
                chroma_rect(lo, top, hi - lo, bot - top, &ccx, &ccy, &ccw, &cch);
                fill_plane(dst->u, dst->u_stride, pw, ph, ccx, ccy, ccw, cch, U);
                fill_plane(dst->v, dst->v_stride, pw, ph, ccx, ccy, ccw, cch, V);
            }
        }
    }
    return CP_COMPOSE_OK;
}

/* ---- layouts ----------------------------------------------------------------------------- */
static int tile_label_scale(const cp_compose_style *st, int tile_h) {
    if (st->label_scale > 0) return st->label_scale;
    return imax(1, imin(4, tile_h / 100));
}

/* The rectangle a picture of sw x sh occupies in a tile of w x h when fitted whole. */
static void contain_rect(int sw, int sh, int x, int y, int w, int h, int *ox, int *oy, int *ow,
                         int *oh) {
    long long a = (long long)sw * h, b = (long long)sh * w;
    int iw = w, ih = h;
    if (a > b) { /* picture wider than the tile: full width, bars top and bottom */
        ih = (int)(((long long)sh * w + sw / 2) / sw);
        if (ih > 1) ih &= ~1;
        ih = imax(1, ih);
    } else if (a < b) {
        iw = (int)(((long long)sw * h + sh / 2) / sh);
        if (iw > 1) iw &= ~1;
        iw = imax(1, iw);
    }
    *ow = iw;
    *oh = ih;
    *ox = x + (((w - iw) / 2) & ~1);
    *oy = y + (((h - ih) / 2) & ~1);
}

static int draw_picture(const cp_image *cv, const cp_compose_tile *t, int fit) {
    const uint8_t *py = t->y, *pu = t->u, *pv = t->v;
    int sw = t->src_width, sh = t->src_height;
    int x = t->x, y = t->y_pos, w = t->width, h = t->height;
    if (fit == CP_FIT_CONTAIN) {
        contain_rect(sw, sh, t->x, t->y_pos, t->width, t->height, &x, &y, &w, &h);
    } else if (fit == CP_FIT_COVER) {
        long long a = (long long)sw * h, b = (long long)sh * w;
        int cw = sw, ch = sh;
        if (a > b) { /* picture wider: crop its sides */
            cw = imax(1, (int)(((long long)sh * w + h / 2) / h));
        } else if (a < b) {
            ch = imax(1, (int)(((long long)sw * h + w / 2) / w));
        }
        int sx = ((sw - cw) / 2) & ~1, sy = ((sh - ch) / 2) & ~1;
        py += (ptrdiff_t)sy * t->y_stride + sx;
        pu += (ptrdiff_t)(sy / 2) * t->u_stride + sx / 2;
        pv += (ptrdiff_t)(sy / 2) * t->v_stride + sx / 2;
        sw = cw;
        sh = ch;
    }
    return cp_compose_scale(py, t->y_stride, pu, t->u_stride, pv, t->v_stride, sw, sh, cv, x, y,
                            w, h);
}

static void draw_border(const cp_image *cv, const cp_compose_tile *t, const uint8_t *col,
                        int b) {
    int x = t->x, y = t->y_pos, w = t->width, h = t->height;
    b = imin(b, imin((w + 1) / 2, (h + 1) / 2));
    if (b <= 0) return;
    cp_compose_fill(cv, x, y, w, b, col[0], col[1], col[2]);
    cp_compose_fill(cv, x, y + h - b, w, b, col[0], col[1], col[2]);
    cp_compose_fill(cv, x, y, b, h, col[0], col[1], col[2]);
    cp_compose_fill(cv, x + w - b, y, b, h, col[0], col[1], col[2]);
}

int cp_compose(const cp_image *canvas, const cp_compose_tile *tiles, int n_tiles,
               const cp_compose_style *style) {
    if (!image_ok(canvas) || !style || n_tiles < 0 || (n_tiles > 0 && !tiles) ||
        style->fit < CP_FIT_CONTAIN || style->fit > CP_FIT_STRETCH || style->border_px < 0 ||
        style->label_scale < 0 || style->label_scale > 256)
        return CP_COMPOSE_EINVAL;
    for (int i = 0; i < n_tiles; i++) {
        const cp_compose_tile *t = &tiles[i];
        if (t->y && (!t->u || !t->v || t->src_width < 1 || t->src_height < 1 ||
                     t->src_width > MAX_DIM || t->src_height > MAX_DIM))
            return CP_COMPOSE_EINVAL;
        if (!rect_ok(t->x, t->y_pos, t->width, t->height) || t->width > 4 * MAX_DIM ||
            t->height > 4 * MAX_DIM)
            return CP_COMPOSE_EINVAL;
    }
    const uint8_t *bg = style->background;
    cp_compose_fill(canvas, 0, 0, canvas->width, canvas->height, bg[0], bg[1], bg[2]);
    for (int i = 0; i < n_tiles; i++) {
        const cp_compose_tile *t = &tiles[i];
        int x = t->x, y = t->y_pos, w = t->width, h = t->height;
        if (w <= 0 || h <= 0) continue;
        int scale = tile_label_scale(style, h);
        int has_label = t->label && t->label[0];
        if (t->y) {
            int rc = draw_picture(canvas, t, style->fit);
            if (rc) return rc;
        } else {
            const uint8_t *ph = style->placeholder;
            cp_compose_fill(canvas, x, y, w, h, ph[0], ph[1], ph[2]);
            /* the label (or "no video") centred, twice the label size where it fits */
            const char *txt = has_label ? t->label : "no video";
            int s2 = scale * 2;
            while (s2 > 1 && cp_compose_text_width(txt, s2) > w - 2 * style->border_px - 4) s2--;
            int tw = cp_compose_text_width(txt, s2), th = CP_FONT_HEIGHT * s2;
            cp_compose_text(canvas, x + (w - tw) / 2, y + (h - th) / 2, txt, s2,
                            style->text[0], style->text[1], style->text[2], x, y, w, h);
            has_label = 0;
        }
        const uint8_t *bc = t->highlight ? style->highlight : style->border;
        draw_border(canvas, t, bc, style->border_px);
        if (has_label) {
            int pad = scale * 2, margin = style->border_px + scale * 2;
            int bw = cp_compose_text_width(t->label, scale) + 2 * pad;
            int bh = CP_FONT_HEIGHT * scale + 2 * pad;
            int bx = x + margin, by = y + h - margin - bh;
            /* the box: clipped to the tile inside its border */
            int ix = x + style->border_px, iy = y + style->border_px;
            int iw = w - 2 * style->border_px, ih = h - 2 * style->border_px;
            int sx = imax(bx, ix), sy = imax(by, iy);
            int ex = imin(bx + bw, ix + iw), ey = imin(by + bh, iy + ih);
            if (ex > sx && ey > sy) cp_compose_shade(canvas, sx, sy, ex - sx, ey - sy, 96);
            cp_compose_text(canvas, bx + pad, by + pad, t->label, scale, style->text[0],
                            style->text[1], style->text[2], ix, iy, iw, ih);
        }
    }
    return CP_COMPOSE_OK;
}
