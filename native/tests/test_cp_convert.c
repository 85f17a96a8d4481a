/* cp_convert under the sanitizers: every entry point on odd sizes, sizes around the 1024-pixel
 * chunk, negative strides and tightly sized buffers, on the SIMD and the baseline builds. */
#include "callpipe/cp_convert.h"
#include "check.h"
#include <string.h>

int main(void) {
    const int sizes[] = {1, 2, 3, 4, 5, 7, 16, 31, 33, 63, 1023, 1024, 1025, 2049};
    const int ns = (int)(sizeof sizes / sizeof *sizes);
    unsigned seed = 1;
    for (int simd = 0; simd <= 1; simd++) {
        cp_convert_set_simd(simd);
        for (int a = 0; a < ns; a++) {
            for (int b = 0; b < ns; b++) {
                int w = sizes[a], h = sizes[b] > 40 ? 3 : sizes[b];
                int cw = (w + 1) / 2, ch = (h + 1) / 2;
                unsigned char *y = random_bytes((size_t)w * h, &seed);
                unsigned char *u = random_bytes((size_t)cw * ch, &seed);
                unsigned char *v = random_bytes((size_t)cw * ch, &seed);
                for (int f = 0; f <= 4; f++) {
                    int bpp = f < 2 ? 3 : 4;
                    unsigned char *src = random_bytes((size_t)w * h * bpp, &seed);
                    CHECK(cp_rgb_to_i420(src, w * bpp, f, w, h, y, w, u, cw, v, cw, f & 1, f > 2) == 0,
                          "rgb->i420 %dx%d fmt %d", w, h, f);
                    CHECK(cp_rgb_to_i420(src + (size_t)(h - 1) * w * bpp, -(ptrdiff_t)w * bpp, f, w, h,
                                         y, w, u, cw, v, cw, 0, 0) == 0,
                          "bottom-up rgb->i420 %dx%d fmt %d", w, h, f);
                    if (f < 4)
                        CHECK(cp_i420_to_rgb(y, w, u, cw, v, cw, w, h, src, w * bpp, f, f & 1, f > 1) == 0,
                              "i420->rgb %dx%d fmt %d", w, h, f);
                    free(src);
                }
                unsigned char *uv = random_bytes((size_t)2 * cw * ch, &seed);
                CHECK(cp_nv12_to_i420(y, w, uv, 2 * cw, 1, w, h, y, w, u, cw, v, cw) == 0, "nv21");
                free(uv);
                unsigned char *p = random_bytes((size_t)4 * cw * h, &seed);
                CHECK(cp_packed422_to_i420(p, 4 * cw, CP_PIX_UYVY, w, h, y, w, u, cw, v, cw) == 0, "uyvy");
                free(p);
                int dw = (w + 1) / 2, dh = (h + 1) / 2, dcw = (dw + 1) / 2, dch = (dh + 1) / 2;
                unsigned char *dy = random_bytes((size_t)dw * dh, &seed);
                unsigned char *du = random_bytes((size_t)dcw * dch, &seed);
                unsigned char *dv = random_bytes((size_t)dcw * dch, &seed);
                CHECK(cp_i420_box_half(y, w, u, cw, v, cw, w, h, dy, dw, du, dcw, dv, dcw) == 0, "box");
                CHECK(cp_i420_scale_bilinear(y, w, u, cw, v, cw, w, h, dy, dw, du, dcw, dv, dcw, dw, dh) == 0,
                      "bilinear half");
                free(dy); free(du); free(dv);
                int W = sizes[(a + 3) % ns], H = sizes[(b + 5) % ns] % 50 + 1;
                int Wc = (W + 1) / 2, Hc = (H + 1) / 2;
                dy = random_bytes((size_t)W * H, &seed);
                du = random_bytes((size_t)Wc * Hc, &seed);
                dv = random_bytes((size_t)Wc * Hc, &seed);
                CHECK(cp_i420_scale_bilinear(y, w, u, cw, v, cw, w, h, dy, W, du, Wc, dv, Wc, W, H) == 0,
                      "bilinear %dx%d -> %dx%d", w, h, W, H);
                free(dy); free(du); free(dv); free(y); free(u); free(v);
            }
        }
    }
    /* The hand-written AVX2 RGB -> I420 kernel against the baseline build: bit-identical on
     * random pictures (plus saturated ones, for the clamps) of every format, matrix and range,
     * widths around its 32-pixel step, odd heights, padded and negative strides; source
     * buffers sized exactly, so ASan sees any read past a row's end. */
    if (cp_convert_set_simd(CP_SIMD_AVX2) == CP_SIMD_AVX2) {
        const int ws[] = {1, 2, 31, 32, 33, 34, 63, 64, 65, 95, 97, 130, 1279, 1280, 1921};
        const int nw = (int)(sizeof ws / sizeof *ws);
        int compared = 0;
        for (int a = 0; a < nw; a++) {
            for (int h = 1; h <= 5; h++) {
                for (int f = 0; f <= 4; f++) {
                    const int w = ws[a], cw = (w + 1) / 2, ch = (h + 1) / 2;
                    const int bpp = f < 2 ? 3 : 4, pad = (a + h) % 3 * 7;
                    const ptrdiff_t ss = (ptrdiff_t)w * bpp + pad;
                    const size_t sn = (size_t)ss * (size_t)(h - 1) + (size_t)w * bpp;
                    unsigned char *src = random_bytes(sn, &seed);
                    if (h == 2) /* saturated channels drive chroma to both clamps */
                        for (size_t i = 0; i < sn; i++)
                            src[i] = src[i] & 1 ? 255 : 0;
                    const int flip = h % 2 == 1 && a % 2 == 1; /* bottom-up source */
                    const unsigned char *s0 = flip ? src + (size_t)ss * (size_t)(h - 1) : src;
                    const ptrdiff_t sst = flip ? -ss : ss;
                    unsigned char *out[2][3];
                    for (int simd = 0; simd <= 1; simd++) {
                        out[simd][0] = random_bytes((size_t)w * h, &seed);
                        out[simd][1] = random_bytes((size_t)cw * ch, &seed);
                        out[simd][2] = random_bytes((size_t)cw * ch, &seed);
                    }
                    for (int cs = 0; cs < 4; cs++) {
                        for (int simd = 0; simd <= 1; simd++) {
                            cp_convert_set_simd(simd ? CP_SIMD_AVX2 : CP_SIMD_BASELINE);
                            CHECK(cp_rgb_to_i420(s0, sst, f, w, h, out[simd][0], w, out[simd][1],
                                                 cw, out[simd][2], cw, cs & 1, cs >> 1) == 0,
                                  "rgb->i420 %dx%d fmt %d", w, h, f);
                        }
                        CHECK(memcmp(out[0][0], out[1][0], (size_t)w * h) == 0 &&
                                  memcmp(out[0][1], out[1][1], (size_t)cw * ch) == 0 &&
                                  memcmp(out[0][2], out[1][2], (size_t)cw * ch) == 0,
                              "AVX2 and baseline differ: %dx%d fmt %d colour %d stride %td", w,
                              h, f, cs, sst);
                        compared++;
                    }
                    for (int simd = 0; simd <= 1; simd++)
                        for (int i = 0; i < 3; i++)
                            free(out[simd][i]);
                    free(src);
                }
            }
        }
        CHECK(compared == nw * 5 * 5 * 4, "compared %d pictures", compared);
        cp_convert_set_simd(CP_SIMD_AUTO);
    } else {
        printf("test_cp_convert: CPU without AVX2, AVX2 kernel not compared\n");
    }

    /* a grey picture converts to the expected BT.601 limited-range luma */
    unsigned char grey[4 * 4 * 3], y[16], u[4], v[4];
    memset(grey, 128, sizeof grey);
    CHECK(cp_rgb_to_i420(grey, 12, 0, 4, 4, y, 4, u, 2, v, 2, 0, 0) == 0, "grey");
    CHECK(y[0] >= 125 && y[0] <= 127 && u[0] == 128 && v[0] == 128, "grey -> y %d u %d v %d", y[0], u[0], v[0]);
    CHECK(cp_rgb_to_i420(NULL, 0, 0, 1, 1, NULL, 0, NULL, 0, NULL, 0, 0, 0) == CP_CONVERT_EINVAL, "NULL args");
    return check_done("test_cp_convert");
}
