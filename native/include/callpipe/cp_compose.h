/* cp_compose.h - compose several I420 pictures into one I420 canvas (plain C11).
 *
 * The building blocks of a call preview: rectangle fills, bilinear scaling of a picture into a
 * rectangle of the canvas, a built-in 5x7 bitmap font for labels, and cp_compose(), which draws
 * a whole layout (tiles with pictures or placeholders, borders, labels) in one call.
 *
 * Pictures are I420: a luma plane of width x height and two chroma planes of ceil(width/2) x
 * ceil(height/2), each given by a pointer to its first row and a row stride in bytes (any value,
 * negative allowed).  Rectangles are in luma pixels; a rectangle's chroma is the chroma samples
 * from floor(x/2) to ceil((x+w)/2), so even x / y / w / h give exact chroma edges.  Everything
 * drawn is clipped to the canvas (and to the tile, for what belongs to a tile): rectangles may
 * lie partly or wholly outside.
 *
 * Return values: CP_COMPOSE_OK or a negative cp_compose_status.  The functions keep no pointers
 * after returning and are safe to call from several threads on different canvases.
 *
 * Kept in cffi's parsable C subset (plain prototypes, structs, enums for constants).
 */
#ifndef CALLPIPE_CP_COMPOSE_H
#define CALLPIPE_CP_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CP_COMPOSE_OK = 0,
    CP_COMPOSE_EINVAL = -1,  /* NULL pointer, bad size, bad fit mode */
    CP_COMPOSE_ENOMEM = -2   /* scratch allocation failed */
} cp_compose_status;

/* How a picture fills its tile. */
typedef enum {
    CP_FIT_CONTAIN = 0,  /* whole picture, aspect kept, bars in the background colour */
    CP_FIT_COVER = 1,    /* tile filled, aspect kept, the picture's overflow cropped */
    CP_FIT_STRETCH = 2   /* tile filled, aspect ignored */
} cp_fit;

/* Font metrics, in font pixels (multiply by the label scale for canvas pixels). */
typedef enum {
    CP_FONT_WIDTH = 5,    /* glyph cell width */
    CP_FONT_HEIGHT = 7,   /* glyph cell height */
    CP_FONT_ADVANCE = 6   /* horizontal distance from one character to the next */
} cp_font_metrics;

/* An I420 picture (writable when used as a destination). */
typedef struct {
    uint8_t *y;
    uint8_t *u;
    uint8_t *v;
    ptrdiff_t y_stride;
    ptrdiff_t u_stride;
    ptrdiff_t v_stride;
    int width;
    int height;
} cp_image;

/* One tile of a layout. */
typedef struct {
    const uint8_t *y;        /* source picture planes; y == NULL draws a placeholder */
    const uint8_t *u;
    const uint8_t *v;
    ptrdiff_t y_stride;
    ptrdiff_t u_stride;
    ptrdiff_t v_stride;
    int src_width;           /* source size in pixels */
    int src_height;
    int x;                   /* tile rectangle on the canvas, pixels */
    int y_pos;
    int width;
    int height;
    const char *label;       /* NUL-terminated ASCII label or NULL; other bytes draw as '?' */
    int highlight;           /* non-zero: border in the highlight colour (active speaker) */
} cp_compose_tile;

/* Colours are (Y, U, V) triples. */
typedef struct {
    uint8_t background[3];   /* canvas behind and between tiles, and contain-fit bars */
    uint8_t placeholder[3];  /* a tile without a picture */
    uint8_t border[3];       /* tile frame */
    uint8_t highlight[3];    /* tile frame of a highlighted tile */
    uint8_t text[3];         /* label text */
    int border_px;           /* frame thickness inside each tile, pixels (0: none) */
    int label_scale;         /* font pixel size in canvas pixels, 0: from the tile height */
    int fit;                 /* cp_fit */
} cp_compose_style;

/* Fill a rectangle with one colour. */
int cp_compose_fill(const cp_image *dst, int x, int y, int width, int height, int cy, int cu,
                    int cv);

/* Darken a rectangle towards black (what a label box does): each luma sample keeps
 * keep_256/256 of its distance above 16, each chroma sample that much of its distance from
 * 128 (keep_256 in 0..256). */
int cp_compose_shade(const cp_image *dst, int x, int y, int width, int height, int keep_256);

/* Bilinear-scale the src_width x src_height picture at src into the rectangle (x, y, width,
 * height) of dst (pixel-centre aligned, edges clamped, 8-bit weights; a constant picture stays
 * exactly constant).  Only the part inside dst is written. */
int cp_compose_scale(const uint8_t *src_y, ptrdiff_t src_y_stride, const uint8_t *src_u,
                     ptrdiff_t src_u_stride, const uint8_t *src_v, ptrdiff_t src_v_stride,
                     int src_width, int src_height, const cp_image *dst, int x, int y,
                     int width, int height);

/* Width of text in canvas pixels at a font scale (no trailing gap; 0 for ""). */
int cp_compose_text_width(const char *text, int scale);

/* Draw text (luma only, chroma set to the colour under each glyph pixel) with its top-left
 * corner at (x, y), each font pixel a scale x scale square; clipped to the rectangle
 * (clip_x, clip_y, clip_w, clip_h) and to the canvas. */
int cp_compose_text(const cp_image *dst, int x, int y, const char *text, int scale, int cy,
                    int cu, int cv, int clip_x, int clip_y, int clip_w, int clip_h);

/* The font: 7 rows of 5 bits (bit 4 = leftmost pixel) for the character c (32..126; anything
 * else gives '?').  Writes rows[0..6]. */
void cp_compose_glyph(int c, uint8_t *rows);

/* Draw a whole layout: background, then every tile (picture or placeholder, border, label
 * in a shaded box at the bottom left). */
int cp_compose(const cp_image *canvas, const cp_compose_tile *tiles, int n_tiles,
               const cp_compose_style *style);

#endif /* CALLPIPE_CP_COMPOSE_H */
