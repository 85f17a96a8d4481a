/* cp_vpx under the sanitizers: encoder set-up with 1..3 temporal layers, bitrate changes and
 * forced keyframes on a padded picture; decoder round trip; decode_ref (libvpx's own picture) equal to
 * the copied picture; every bit of a keyframe and an inter
 * frame flipped and every truncation decoded (errors allowed, crashes and leaks not). */
#include "callpipe/cp_vpx.h"
#include "check.h"
#include <string.h>

enum { W = 97, H = 61, CW = 49, CH = 31, YS = 112, CS = 64, NFRAMES = 8 };

int main(void) {
    unsigned char *y = malloc((size_t)YS * H), *u = malloc((size_t)CS * CH), *v = malloc((size_t)CS * CH);
    unsigned char *frames[NFRAMES];
    size_t sizes[NFRAMES];
    int nf = 0;
    for (int layers = 1; layers <= 3; layers++) {
        cp_vp8_enc_params p;
        cp_vp8_enc_params_default(&p);
        p.width = W;
        p.height = H;
        p.bitrate_kbps = 300;
        p.temporal_layers = layers;
        p.layer_rate_pct[0] = layers == 3 ? 40 : 60;
        p.layer_rate_pct[1] = layers == 3 ? 60 : 100;
        cp_vp8_enc *e = cp_vp8_enc_new();
        int rc = cp_vp8_enc_init(e, &p);
        CHECK(rc == CP_VPX_OK, "init with %d layers: %s", layers, cp_vp8_enc_last_error(e));
        for (int i = 0; i < NFRAMES && rc == CP_VPX_OK; i++) {
            for (int r = 0; r < H; r++)
                for (int c = 0; c < W; c++) y[r * YS + c] = (unsigned char)(r + c + 3 * i);
            memset(u, 100 + i, (size_t)CS * CH);
            memset(v, 140, (size_t)CS * CH);
            cp_vp8_packet pk[CP_VPX_MAX_PACKETS];
            int n = 0;
            rc = cp_vp8_enc_encode(e, y, u, v, YS, CS, CS, i * 3000, i == 5, pk, CP_VPX_MAX_PACKETS, &n);
            CHECK(rc == CP_VPX_OK && n == 1, "encode %d (%d layers): rc %d n %d", i, layers, rc, n);
            if (n == 1) {
                CHECK(pk[0].keyframe == (i == 0 || i == 5), "frame %d keyframe flag %d", i, pk[0].keyframe);
                CHECK(pk[0].temporal_id >= 0 && pk[0].temporal_id < layers, "temporal id %d", pk[0].temporal_id);
            }
            if (i == 3) CHECK(cp_vp8_enc_set_bitrate(e, 100) == CP_VPX_OK, "set_bitrate");
            if (layers == 1 && n == 1 && nf < NFRAMES) {
                frames[nf] = malloc(pk[0].size);
                memcpy(frames[nf], pk[0].data, pk[0].size);
                sizes[nf++] = pk[0].size;
            }
        }
        cp_vp8_enc_free(e);
    }
    cp_vp8_enc *bad = cp_vp8_enc_new();
    cp_vp8_enc_params bp;
    cp_vp8_enc_params_default(&bp);
    bp.width = 0;
    CHECK(cp_vp8_enc_init(bad, &bp) == CP_VPX_ERR_ARG, "width 0 must be refused");
    cp_vp8_enc_free(bad);

    cp_vp8_dec *d = cp_vp8_dec_new();
    CHECK(cp_vp8_dec_init(d, 2) == CP_VPX_OK, "decoder init");
    size_t cap = (size_t)W * H + 2 * CW * CH;
    unsigned char *out = malloc(cap);
    cp_vp8_picture pic;
    int got = 0;
    for (int f = 0; f < nf; f++) {
        int rc = cp_vp8_dec_decode(d, frames[f], sizes[f], out, cap, &pic, &got);
        CHECK(rc == CP_VPX_OK && got && pic.width == W && pic.height == H, "clean decode %d: rc %d", f, rc);
    }
    /* decode_ref: libvpx's own picture, the same pixels the copy gets */
    cp_vp8_dec *r = cp_vp8_dec_new();
    CHECK(cp_vp8_dec_init(r, 1) == CP_VPX_OK, "decoder init (ref)");
    for (int f = 0; f < nf; f++) {
        cp_vp8_picture rp;
        int rgot = 0;
        int rc = cp_vp8_dec_decode_ref(r, frames[f], sizes[f], &rp, &rgot);
        CHECK(rc == CP_VPX_OK && rgot && rp.width == W && rp.height == H, "ref decode %d: rc %d", f, rc);
        CHECK(rp.keyframe == (f == 0 || f == 5), "ref decode %d: keyframe flag %d", f, rp.keyframe);
        CHECK(rp.strides[0] >= W && rp.strides[1] >= CW && rp.strides[2] >= CW, "strides %d %d %d",
              rp.strides[0], rp.strides[1], rp.strides[2]);
        CHECK(cp_vp8_dec_decode(d, frames[f], sizes[f], out, cap, &pic, &got) == CP_VPX_OK && got,
              "copy decode %d", f);
        int diff = 0;
        for (int row = 0; row < H; row++)
            diff |= memcmp(rp.planes[0] + (size_t)row * rp.strides[0], out + (size_t)row * W, W);
        for (int row = 0; row < CH; row++) {
            diff |= memcmp(rp.planes[1] + (size_t)row * rp.strides[1], out + (size_t)W * H + (size_t)row * CW, CW);
            diff |= memcmp(rp.planes[2] + (size_t)row * rp.strides[2],
                           out + (size_t)W * H + (size_t)CW * CH + (size_t)row * CW, CW);
        }
        CHECK(diff == 0, "frame %d: decode_ref planes differ from the copied picture", f);
        unsigned char small[16];
        CHECK(cp_vp8_dec_copy(r, small, sizeof small) == CP_VPX_ERR_SPACE, "copy into 16 bytes");
    }
    CHECK(cp_vp8_dec_decode_ref(r, frames[0], 0, &pic, &got) == CP_VPX_ERR_ARG && !got, "empty input");
    cp_vp8_dec_free(r);

    int errors = 0;
    for (int f = 0; f < 2 && f < nf; f++) { /* the keyframe and the first inter frame */
        for (size_t i = 0; i < sizes[f]; i++) {
            for (int m = 1; m < 256; m <<= 1) {
                cp_vp8_dec_decode(d, frames[0], sizes[0], out, cap, &pic, &got);
                unsigned char *b = malloc(sizes[f]);
                memcpy(b, frames[f], sizes[f]);
                b[i] ^= (unsigned char)m;
                errors += cp_vp8_dec_decode(d, b, sizes[f], out, cap, &pic, &got) != CP_VPX_OK;
                free(b);
            }
            errors += cp_vp8_dec_decode(d, frames[f], i, NULL, 0, &pic, &got) != CP_VPX_OK;
        }
    }
    CHECK(errors > 0, "bit flips and truncations must produce some decode errors");
    /* after all that damage a keyframe still decodes */
    CHECK(cp_vp8_dec_decode(d, frames[0], sizes[0], out, cap, &pic, &got) == CP_VPX_OK && got,
          "keyframe after fuzzing");
    for (int f = 0; f < nf; f++) free(frames[f]);
    free(out);
    cp_vp8_dec_free(d);
    free(y); free(u); free(v);
    return check_done("test_cp_vpx");
}
