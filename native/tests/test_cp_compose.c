/* cp_compose under the sanitizers: exact fills and scaling of constant pictures, the font,
 * clipping of text and of rectangles partly or wholly off the canvas, whole layouts with
 * pictures and placeholders on odd canvas sizes, negative strides, argument checks, and a
 * random-layout fuzz loop (ASan catches any write outside the planes). */
#include "callpipe/cp_compose.h"
#include "check.h"
#include <string.h>

typedef struct {
    cp_image im;
    uint8_t *buf;
} canvas;

/* A canvas with tightly sized planes (no slack for overruns to hide in). */
static canvas new_canvas(int w, int h) {
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    canvas c;
    c.buf = malloc((size_t)w * h + 2 * (size_t)cw * ch);
    if (!c.buf) abort();
    c.im.y = c.buf;
    c.im.u = c.buf + (size_t)w * h;
    c.im.v = c.im.u + (size_t)cw * ch;
    c.im.y_stride = w;
    c.im.u_stride = cw;
    c.im.v_stride = cw;
    c.im.width = w;
    c.im.height = h;
    return c;
}

static int px(const cp_image *im, int plane, int x, int y) {
    const uint8_t *p = plane == 0 ? im->y : plane == 1 ? im->u : im->v;
    ptrdiff_t s = plane == 0 ? im->y_stride : plane == 1 ? im->u_stride : im->v_stride;
    return p[(ptrdiff_t)y * s + x];
}

static int count_luma(const cp_image *im, int x, int y, int w, int h, int value) {
    int n = 0;
    for (int r = y; r < y + h; r++)
        for (int c = x; c < x + w; c++) n += px(im, 0, c, r) == value;
    return n;
}

static void test_font(void) {
    uint8_t rows[7], other[7];
    int blank = 0;
    for (int c = 32; c < 127; c++) {
        cp_compose_glyph(c, rows);
        int bits = 0;
        for (int r = 0; r < 7; r++) {
            CHECK(rows[r] < 32, "glyph %d row %d = %#x wider than 5 pixels", c, r, rows[r]);
            bits += rows[r] != 0;
        }
        blank += bits == 0;
        for (int d = 32; d < c; d++) {
            cp_compose_glyph(d, other);
            CHECK(memcmp(rows, other, 7) != 0, "glyphs %c and %c are identical", c, d);
        }
    }
    CHECK(blank == 1, "only the space is blank, got %d blank glyphs", blank);
    cp_compose_glyph(200, rows);
    cp_compose_glyph('?', other);
    CHECK(memcmp(rows, other, 7) == 0, "non-ASCII draws as '?'");
    CHECK(cp_compose_text_width("", 3) == 0, "empty text width");
    CHECK(cp_compose_text_width("A", 1) == 5, "one glyph is 5 wide");
    CHECK(cp_compose_text_width("AB", 2) == 22, "two glyphs at scale 2: %d",
          cp_compose_text_width("AB", 2));
}

static void test_fill_and_shade(void) {
    canvas c = new_canvas(7, 5); /* odd: chroma 4 x 3 */
    CHECK(cp_compose_fill(&c.im, 0, 0, 7, 5, 10, 20, 30) == 0, "fill all");
    CHECK(px(&c.im, 0, 6, 4) == 10 && px(&c.im, 1, 3, 2) == 20 && px(&c.im, 2, 3, 2) == 30,
          "whole odd canvas filled");
    CHECK(cp_compose_fill(&c.im, 2, 2, 2, 2, 200, 90, 240) == 0, "fill rect");
    CHECK(count_luma(&c.im, 0, 0, 7, 5, 200) == 4, "exactly the 2x2 luma rect");
    CHECK(px(&c.im, 1, 1, 1) == 90 && px(&c.im, 2, 1, 1) == 240 && px(&c.im, 1, 0, 0) == 20,
          "exactly its one chroma sample");
    /* partly and wholly outside: clipped, no crash (ASan watches) */
    CHECK(cp_compose_fill(&c.im, -3, -3, 5, 5, 1, 1, 1) == 0, "top-left overhang");
    CHECK(px(&c.im, 0, 0, 0) == 1 && px(&c.im, 0, 1, 1) == 1 && px(&c.im, 0, 2, 2) == 200,
          "overhang clipped");
    CHECK(cp_compose_fill(&c.im, 5, 3, 100, 100, 2, 2, 2) == 0, "bottom-right overhang");
    CHECK(px(&c.im, 0, 6, 4) == 2 && px(&c.im, 1, 3, 2) == 2, "odd edge chroma covered");
    CHECK(cp_compose_fill(&c.im, 50, 50, 4, 4, 3, 3, 3) == 0, "off canvas");
    CHECK(cp_compose_fill(&c.im, 0, 0, 0, 9, 3, 3, 3) == 0 && px(&c.im, 0, 0, 0) == 1,
          "empty rect draws nothing");
    /* shade: luma keeps keep/256 of its distance above 16, chroma of its distance from 128 */
    cp_compose_fill(&c.im, 0, 0, 7, 5, 216, 228, 28);
    CHECK(cp_compose_shade(&c.im, 0, 0, 4, 4, 64) == 0, "shade");
    CHECK(px(&c.im, 0, 0, 0) == 66 && px(&c.im, 1, 0, 0) == 153 && px(&c.im, 2, 0, 0) == 103,
          "shaded values %d %d %d", px(&c.im, 0, 0, 0), px(&c.im, 1, 0, 0), px(&c.im, 2, 0, 0));
    CHECK(px(&c.im, 0, 4, 4) == 216, "outside the shade untouched");
    CHECK(cp_compose_shade(&c.im, 0, 0, 4, 4, 300) == CP_COMPOSE_EINVAL, "bad keep");
    free(c.buf);
}

static void test_scale(void) {
    /* a constant picture scales to exactly that constant, at any size ratio */
    canvas src = new_canvas(33, 17);
    cp_compose_fill(&src.im, 0, 0, 33, 17, 81, 90, 240);
    canvas dst = new_canvas(101, 61);
    int sizes[][2] = {{1, 1}, {2, 2}, {33, 17}, {66, 34}, {16, 8}, {101, 61}, {7, 59}};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        cp_compose_fill(&dst.im, 0, 0, 101, 61, 0, 0, 0);
        CHECK(cp_compose_scale(src.im.y, src.im.y_stride, src.im.u, src.im.u_stride, src.im.v,
                               src.im.v_stride, 33, 17, &dst.im, 0, 0, w, h) == 0,
              "scale to %dx%d", w, h);
        CHECK(count_luma(&dst.im, 0, 0, w, h, 81) == w * h, "constant luma at %dx%d", w, h);
        CHECK(count_luma(&dst.im, 0, 0, 101, 61, 81) == w * h, "nothing outside at %dx%d", w, h);
        CHECK(px(&dst.im, 1, (w - 1) / 2, (h - 1) / 2) == 90 &&
                  px(&dst.im, 2, (w - 1) / 2, (h - 1) / 2) == 240,
              "constant chroma at %dx%d", w, h);
    }
    /* a horizontal ramp upscaled 2x keeps its ends and stays monotonic */
    canvas ramp = new_canvas(4, 2);
    for (int x = 0; x < 4; x++) ramp.im.y[x] = ramp.im.y[4 + x] = (uint8_t)(x * 60);
    memset(ramp.im.u, 128, 2);
    memset(ramp.im.v, 128, 2);
    CHECK(cp_compose_scale(ramp.im.y, 4, ramp.im.u, 2, ramp.im.v, 2, 4, 2, &dst.im, 0, 0, 8, 4)
              == 0, "ramp");
    CHECK(px(&dst.im, 0, 0, 0) == 0 && px(&dst.im, 0, 7, 0) == 180, "ramp ends %d %d",
          px(&dst.im, 0, 0, 0), px(&dst.im, 0, 7, 0));
    for (int x = 1; x < 8; x++) CHECK(px(&dst.im, 0, x, 1) >= px(&dst.im, 0, x - 1, 1), "mono");
    CHECK(px(&dst.im, 0, 1, 0) == 15 && px(&dst.im, 0, 2, 0) == 45, "ramp interior %d %d",
          px(&dst.im, 0, 1, 0), px(&dst.im, 0, 2, 0));
    /* a bottom-up source (negative strides) gives the flipped picture */
    canvas rows2 = new_canvas(2, 2);
    rows2.im.y[0] = rows2.im.y[1] = 10;
    rows2.im.y[2] = rows2.im.y[3] = 200;
    rows2.im.u[0] = rows2.im.v[0] = 128;
    CHECK(cp_compose_scale(rows2.im.y + 2, -2, rows2.im.u, -1, rows2.im.v, -1, 2, 2, &dst.im, 0,
                           0, 2, 2) == 0, "negative stride");
    CHECK(px(&dst.im, 0, 0, 0) == 200 && px(&dst.im, 0, 0, 1) == 10, "flipped");
    /* partly / wholly off-canvas destinations are clipped */
    CHECK(cp_compose_scale(src.im.y, 33, src.im.u, 17, src.im.v, 17, 33, 17, &dst.im, -50, -20,
                           120, 90) == 0, "overhang everywhere");
    CHECK(cp_compose_scale(src.im.y, 33, src.im.u, 17, src.im.v, 17, 33, 17, &dst.im, 500, 0,
                           20, 20) == 0, "off canvas");
    CHECK(cp_compose_scale(NULL, 33, src.im.u, 17, src.im.v, 17, 33, 17, &dst.im, 0, 0, 2, 2)
              == CP_COMPOSE_EINVAL, "NULL source");
    CHECK(cp_compose_scale(src.im.y, 33, src.im.u, 17, src.im.v, 17, 0, 17, &dst.im, 0, 0, 2, 2)
              == CP_COMPOSE_EINVAL, "zero source width");
    free(src.buf);
    free(dst.buf);
    free(ramp.buf);
    free(rows2.buf);
}

static void test_text(void) {
    canvas c = new_canvas(40, 20);
    cp_compose_fill(&c.im, 0, 0, 40, 20, 16, 128, 128);
    CHECK(cp_compose_text(&c.im, 1, 1, "!", 1, 235, 128, 128, 0, 0, 40, 20) == 0, "draw !");
    /* '!' is column 2 of its cell, rows 0-4 and 6 */
    CHECK(count_luma(&c.im, 0, 0, 40, 20, 235) == 6, "6 pixels for '!'");
    CHECK(px(&c.im, 0, 3, 1) == 235 && px(&c.im, 0, 3, 6) == 16 &&
              px(&c.im, 0, 3, 7) == 235,
          "shape of '!'");
    cp_compose_fill(&c.im, 0, 0, 40, 20, 16, 128, 128);
    CHECK(cp_compose_text(&c.im, 0, 0, "##", 2, 200, 100, 150, 0, 0, 40, 20) == 0, "scale 2");
    CHECK(count_luma(&c.im, 0, 0, 40, 20, 200) == 2 * 20 * 4, "two '#' (20 dots each) at 4 pixels per dot: %d",
          count_luma(&c.im, 0, 0, 40, 20, 200));
    CHECK(px(&c.im, 1, 1, 2) == 100 && px(&c.im, 2, 1, 2) == 150, "text chroma");
    /* clipping: only inside the clip rectangle */
    cp_compose_fill(&c.im, 0, 0, 40, 20, 16, 128, 128);
    CHECK(cp_compose_text(&c.im, -7, -3, "MMMMMMMMMMMMMM", 3, 235, 128, 128, 4, 2, 10, 5) == 0,
          "clipped text");
    CHECK(count_luma(&c.im, 0, 0, 40, 20, 235) == count_luma(&c.im, 4, 2, 10, 5, 235),
          "nothing outside the clip rect");
    CHECK(count_luma(&c.im, 4, 2, 10, 5, 235) > 0, "something inside");
    CHECK(cp_compose_text(&c.im, 0, 0, "x", 0, 1, 1, 1, 0, 0, 9, 9) == CP_COMPOSE_EINVAL,
          "scale 0");
    CHECK(cp_compose_text(&c.im, 0, 0, NULL, 1, 1, 1, 1, 0, 0, 9, 9) == CP_COMPOSE_EINVAL,
          "NULL text");
    free(c.buf);
}

static cp_compose_style style_default(void) {
    cp_compose_style st;
    memset(&st, 0, sizeof st);
    st.background[0] = 16;
    st.background[1] = st.background[2] = 128;
    st.placeholder[0] = 60;
    st.placeholder[1] = st.placeholder[2] = 128;
    st.border[0] = 100;
    st.border[1] = st.border[2] = 128;
    st.highlight[0] = 170;
    st.highlight[1] = 44;
    st.highlight[2] = 21;
    st.text[0] = 235;
    st.text[1] = st.text[2] = 128;
    st.border_px = 2;
    st.fit = CP_FIT_STRETCH;
    return st;
}

static void test_layout(void) {
    canvas cv = new_canvas(121, 67); /* odd canvas */
    canvas a = new_canvas(32, 18), b = new_canvas(18, 32);
    cp_compose_fill(&a.im, 0, 0, 32, 18, 81, 90, 240);  /* red */
    cp_compose_fill(&b.im, 0, 0, 18, 32, 145, 54, 34);  /* green */
    cp_compose_tile t[3];
    memset(t, 0, sizeof t);
    t[0] = (cp_compose_tile){a.im.y, a.im.u, a.im.v, 32, 16, 16, 32, 18, 0, 0, 60, 32,
                             "Alice", 0};
    t[1] = (cp_compose_tile){b.im.y, b.im.u, b.im.v, 18, 9, 9, 18, 32, 60, 0, 60, 32, NULL, 1};
    t[2] = (cp_compose_tile){NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 32, 60, 34, "Carol", 0};
    cp_compose_style st = style_default();
    CHECK(cp_compose(&cv.im, t, 3, &st) == 0, "compose");
    CHECK(px(&cv.im, 0, 30, 10) == 81 && px(&cv.im, 1, 15, 5) == 90 && px(&cv.im, 2, 15, 5) == 240,
          "tile 0 is red inside");
    CHECK(px(&cv.im, 0, 90, 16) == 145 && px(&cv.im, 1, 45, 8) == 54, "tile 1 is green");
    CHECK(px(&cv.im, 0, 0, 0) == 100 && px(&cv.im, 0, 59, 31) == 100, "tile 0 border");
    CHECK(px(&cv.im, 0, 60, 0) == 170 && px(&cv.im, 1, 30, 0) == 44, "tile 1 highlighted");
    CHECK(px(&cv.im, 0, 5, 40) == 60, "placeholder fill");
    CHECK(count_luma(&cv.im, 2, 34, 56, 30, 235) > 20, "placeholder shows its label");
    CHECK(px(&cv.im, 0, 100, 50) == 16 && px(&cv.im, 0, 120, 66) == 16, "background elsewhere");
    /* the label of tile 0: text pixels inside a shaded box at its bottom left */
    CHECK(count_luma(&cv.im, 2, 2, 56, 28, 235) > 20, "label text drawn");
    CHECK(px(&cv.im, 0, 4, 27) < 81, "label box shaded");
    /* contain: the tall picture is centred with background bars */
    st.fit = CP_FIT_CONTAIN;
    st.border_px = 0;
    CHECK(cp_compose(&cv.im, t + 1, 1, &st) == 0, "contain");
    CHECK(px(&cv.im, 0, 62, 16) == 16 && px(&cv.im, 0, 90, 16) == 145, "bars then picture");
    st.fit = CP_FIT_COVER;
    CHECK(cp_compose(&cv.im, t + 1, 1, &st) == 0, "cover");
    CHECK(count_luma(&cv.im, 60, 0, 60, 32, 145) == 60 * 32, "cover fills the tile");
    /* argument checks */
    st.fit = 7;
    CHECK(cp_compose(&cv.im, t, 3, &st) == CP_COMPOSE_EINVAL, "bad fit");
    st.fit = CP_FIT_CONTAIN;
    t[0].u = NULL;
    CHECK(cp_compose(&cv.im, t, 3, &st) == CP_COMPOSE_EINVAL, "missing chroma plane");
    CHECK(cp_compose(&cv.im, NULL, 2, &st) == CP_COMPOSE_EINVAL, "NULL tiles");
    CHECK(cp_compose(&cv.im, NULL, 0, &st) == 0, "no tiles: background only");
    free(cv.buf);
    free(a.buf);
    free(b.buf);
}

static void fuzz(void) {
    unsigned seed = 7;
    for (int iter = 0; iter < 300; iter++) {
        unsigned char *r = random_bytes(64, &seed);
        int w = 1 + r[0] % 90, h = 1 + r[1] % 70;
        canvas cv = new_canvas(w, h);
        int sw = 1 + r[2] % 40, sh = 1 + r[3] % 40;
        canvas src = new_canvas(sw, sh);
        unsigned char *noise = random_bytes((size_t)sw * sh, &seed);
        memcpy(src.im.y, noise, (size_t)sw * sh);
        free(noise);
        memset(src.im.u, 77, (size_t)((sw + 1) / 2) * ((sh + 1) / 2));
        memset(src.im.v, 99, (size_t)((sw + 1) / 2) * ((sh + 1) / 2));
        cp_compose_tile t[4];
        for (int i = 0; i < 4; i++) {
            int pic = r[4 + i] & 1;
            t[i] = (cp_compose_tile){pic ? src.im.y : NULL, src.im.u, src.im.v, sw, (sw + 1) / 2,
                                     (sw + 1) / 2, sw, sh, (int)(r[8 + i] % 140) - 30,
                                     (int)(r[12 + i] % 120) - 30, (int)(r[16 + i] % 120),
                                     (int)(r[20 + i] % 100), (r[24 + i] & 1) ? "label ~!" : NULL,
                                     r[28 + i] & 1};
        }
        cp_compose_style st = style_default();
        st.fit = r[32] % 3;
        st.border_px = r[33] % 5;
        st.label_scale = r[34] % 4;
        CHECK(cp_compose(&cv.im, t, 4, &st) == 0, "fuzz %d", iter);
        free(r);
        free(cv.buf);
        free(src.buf);
    }
}

int main(void) {
    test_font();
    test_fill_and_shade();
    test_scale();
    test_text();
    test_layout();
    fuzz();
    return check_done("test_cp_compose");
}
