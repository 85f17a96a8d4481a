/* cp_vpx: VP8 encoder/decoder helpers over the system libvpx (see cp_vpx.h). */
#include "callpipe/cp_vpx.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vpx_encoder.h>

#define CP_VIDEO_CLOCK_HZ 90000
#define CP_ERRLEN 320

/* ---------------------------------------------------------------------------------------- */
/* library facts                                                                            */

const char *cp_vpx_version_str(void) { return vpx_codec_version_str(); }

const char *cp_vpx_build_config(void) { return vpx_codec_build_config(); }

/* Copy libvpx's message (error + detail) of `ctx` into `dst`, prefixed by `what`. */
static void set_vpx_error(char *dst, const char *what, vpx_codec_ctx_t *ctx) {
    const char *msg = vpx_codec_error(ctx);
    const char *detail = vpx_codec_error_detail(ctx);
    if (!msg) msg = "unknown error";
    if (!what) what = "";
    const char *sep = *what ? ": " : "";
    if (detail && *detail)
        snprintf(dst, CP_ERRLEN, "%s%s%s (%s)", what, sep, msg, detail);
    else
        snprintf(dst, CP_ERRLEN, "%s%s%s", what, sep, msg);
}

static void set_vpx_error_code(char *dst, const char *what, vpx_codec_err_t rc) {
    snprintf(dst, CP_ERRLEN, "%s: %s", what, vpx_codec_err_to_string(rc));
}

/* ---------------------------------------------------------------------------------------- */
/* encoder                                                                                  */

struct cp_vp8_enc {
    vpx_codec_ctx_t ctx;
    vpx_codec_enc_cfg_t cfg;
    cp_vp8_enc_params p;
    int ctx_ok;
    /* temporal pattern: layer id and libvpx frame flags of each position of the period */
    int periodicity;
    int pattern_pos;
    int layer_id[4];
    vpx_enc_frame_flags_t layer_flags[4];
    /* keyframe scheduling (done here so keyframes always start a pattern, in layer 0) */
    int key_pending;
    int64_t frames_since_key;
    /* internal monotonic timestamps handed to libvpx */
    int have_pts;
    int64_t last_user_pts;
    int64_t last_internal_pts;
    unsigned long duration;
    /* packet copies */
    uint8_t *buf;
    size_t cap;
    cp_vp8_enc_stats stats;
    char err[CP_ERRLEN];
};

void cp_vp8_enc_params_default(cp_vp8_enc_params *p) {
    memset(p, 0, sizeof(*p));
    p->width = 640;
    p->height = 480;
    p->bitrate_kbps = 800;
    p->fps = 30;
    p->threads = 1;
    p->cpu_used = -6;
    p->temporal_layers = 1;
    p->noise_sensitivity = 0;
    p->keyframe_interval = 3000;
    p->min_quantizer = 2;
    p->max_quantizer = 56;
    p->undershoot_pct = 100;
    p->overshoot_pct = 15;
    p->buf_initial_ms = 500;
    p->buf_optimal_ms = 600;
    p->buf_size_ms = 1000;
    p->drop_frame_thresh = 30;
    p->static_threshold = 1;
    p->token_partitions = 0;
    p->max_intra_pct = -1; /* computed from buf_optimal_ms and fps, like WebRTC */
    p->error_resilient = 1;
    p->screen_content = 0;
    p->layer_rate_pct[0] = 100;
    p->layer_rate_pct[1] = 100;
    p->layer_rate_pct[2] = 100;
}

cp_vp8_enc *cp_vp8_enc_new(void) {
    cp_vp8_enc *e = calloc(1, sizeof(*e));
    return e;
}

const char *cp_vp8_enc_last_error(const cp_vp8_enc *e) { return e ? e->err : "no encoder"; }

static int enc_fail(cp_vp8_enc *e, int code, const char *msg) {
    snprintf(e->err, CP_ERRLEN, "%s", msg);
    return code;
}

/* Reference/update pattern of the temporal layers.  Buffers: LAST carries layer 0, GOLDEN
 * layer 1, ALTREF layer 2.  A frame only references buffers written by its own or a lower
 * layer, so any prefix of layers decodes on its own; frames above layer 0 never update the
 * entropy context, so a decoder without them keeps the same probabilities. */
static void setup_pattern(cp_vp8_enc *e) {
    const vpx_enc_frame_flags_t tl0 =
        VP8_EFLAG_NO_REF_GF | VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_GF | VP8_EFLAG_NO_UPD_ARF;
    switch (e->p.temporal_layers) {
    case 2:
        /* 0 1 0 1 ...: TL1 references LAST and GOLDEN, refreshes GOLDEN. */
        e->periodicity = 2;
        e->layer_id[0] = 0;
        e->layer_id[1] = 1;
        e->layer_flags[0] = tl0;
        e->layer_flags[1] = VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_LAST |
                            VP8_EFLAG_NO_UPD_ARF | VP8_EFLAG_NO_UPD_ENTROPY;
        break;
    case 3:
        /* 0 2 1 2 ...: TL1 references LAST+GOLDEN, refreshes GOLDEN; the first TL2 frame
         * references LAST+GOLDEN and refreshes ALTREF; the second references all three and
         * refreshes nothing (droppable). */
        e->periodicity = 4;
        e->layer_id[0] = 0;
        e->layer_id[1] = 2;
        e->layer_id[2] = 1;
        e->layer_id[3] = 2;
        e->layer_flags[0] = tl0;
        e->layer_flags[1] = VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_LAST | VP8_EFLAG_NO_UPD_GF |
                            VP8_EFLAG_NO_UPD_ENTROPY;
        e->layer_flags[2] = VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_LAST |
                            VP8_EFLAG_NO_UPD_ARF | VP8_EFLAG_NO_UPD_ENTROPY;
        e->layer_flags[3] = VP8_EFLAG_NO_UPD_LAST | VP8_EFLAG_NO_UPD_GF | VP8_EFLAG_NO_UPD_ARF |
                            VP8_EFLAG_NO_UPD_ENTROPY;
        break;
    default:
        e->periodicity = 1;
        e->layer_id[0] = 0;
        e->layer_flags[0] = 0; /* one layer: libvpx picks references itself */
        break;
    }
}

static void apply_rates(cp_vp8_enc *e, int kbps) {
    e->cfg.rc_target_bitrate = (unsigned int)kbps;
    if (e->p.temporal_layers > 1) {
        for (int i = 0; i < e->p.temporal_layers; i++) {
            long r = (long)kbps * e->p.layer_rate_pct[i] / 100;
            e->cfg.ts_target_bitrate[i] = (unsigned int)(r > 0 ? r : 1);
        }
    }
    e->stats.bitrate_kbps = kbps;
}

static int check_params(cp_vp8_enc *e, const cp_vp8_enc_params *p) {
    if (p->width < 1 || p->width > 16383 || p->height < 1 || p->height > 16383)
        return enc_fail(e, CP_VPX_ERR_ARG, "frame size out of range (1..16383 pixels)");
    if (p->bitrate_kbps < 1 || p->bitrate_kbps > 1000000)
        return enc_fail(e, CP_VPX_ERR_ARG, "bitrate out of range (1..1000000 kbps)");
    if (p->fps < 1 || p->fps > 1000)
        return enc_fail(e, CP_VPX_ERR_ARG, "fps out of range (1..1000)");
    if (p->threads < 1 || p->threads > 64)
        return enc_fail(e, CP_VPX_ERR_ARG, "threads out of range (1..64)");
    if (p->cpu_used < -16 || p->cpu_used > 16)
        return enc_fail(e, CP_VPX_ERR_ARG, "cpu_used out of range (-16..16)");
    if (p->temporal_layers < 1 || p->temporal_layers > CP_VPX_MAX_LAYERS)
        return enc_fail(e, CP_VPX_ERR_ARG, "temporal_layers out of range (1..3)");
    if (p->noise_sensitivity < 0 || p->noise_sensitivity > 6)
        return enc_fail(e, CP_VPX_ERR_ARG, "noise_sensitivity out of range (0..6)");
    if (p->keyframe_interval < 0)
        return enc_fail(e, CP_VPX_ERR_ARG, "keyframe_interval must be >= 0 frames");
    if (p->min_quantizer < 0 || p->max_quantizer > 63 || p->min_quantizer > p->max_quantizer)
        return enc_fail(e, CP_VPX_ERR_ARG, "quantizers must satisfy 0 <= min <= max <= 63");
    if (p->undershoot_pct < 0 || p->undershoot_pct > 1000 || p->overshoot_pct < 0 ||
        p->overshoot_pct > 1000)
        return enc_fail(e, CP_VPX_ERR_ARG, "under/overshoot out of range (0..1000 %)");
    if (p->buf_initial_ms < 0 || p->buf_optimal_ms < 0 || p->buf_size_ms < 1 ||
        p->buf_size_ms > 60000)
        return enc_fail(e, CP_VPX_ERR_ARG, "rate-control buffer sizes out of range (ms)");
    if (p->drop_frame_thresh < 0 || p->drop_frame_thresh > 100)
        return enc_fail(e, CP_VPX_ERR_ARG, "drop_frame_thresh out of range (0..100 %)");
    if (p->static_threshold < 0)
        return enc_fail(e, CP_VPX_ERR_ARG, "static_threshold must be >= 0");
    if (p->token_partitions < 0 || p->token_partitions > 3)
        return enc_fail(e, CP_VPX_ERR_ARG, "token_partitions out of range (0..3, log2)");
    if (p->screen_content < 0 || p->screen_content > 2)
        return enc_fail(e, CP_VPX_ERR_ARG, "screen_content out of range (0..2)");
    if (p->temporal_layers > 1) {
        int prev = 0;
        for (int i = 0; i < p->temporal_layers; i++) {
            if (p->layer_rate_pct[i] <= prev || p->layer_rate_pct[i] > 100)
                return enc_fail(e, CP_VPX_ERR_ARG,
                                "layer_rate_pct must increase and end at most at 100 %");
            prev = p->layer_rate_pct[i];
        }
        if (p->layer_rate_pct[p->temporal_layers - 1] != 100)
            return enc_fail(e, CP_VPX_ERR_ARG, "layer_rate_pct of the top layer must be 100 %");
    }
    return CP_VPX_OK;
}

#define ENC_CTRL(id, val)                                                                  \
    do {                                                                                   \
        vpx_codec_err_t rc_ = vpx_codec_control(&e->ctx, id, val);                         \
        if (rc_ != VPX_CODEC_OK) {                                                         \
            set_vpx_error(e->err, "vpx_codec_control(" #id ")", &e->ctx);                  \
            return CP_VPX_ERR_LIBVPX;                                                      \
        }                                                                                  \
    } while (0)

int cp_vp8_enc_init(cp_vp8_enc *e, const cp_vp8_enc_params *p) {
    if (!e || !p) return CP_VPX_ERR_ARG;
    if (e->ctx_ok) return enc_fail(e, CP_VPX_ERR_ARG, "encoder already initialised");
    int rc = check_params(e, p);
    if (rc) return rc;
    e->p = *p;

    vpx_codec_err_t vrc = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &e->cfg, 0);
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error_code(e->err, "vpx_codec_enc_config_default", vrc);
        return CP_VPX_ERR_LIBVPX;
    }
    vpx_codec_enc_cfg_t *c = &e->cfg;
    c->g_w = (unsigned int)p->width;
    c->g_h = (unsigned int)p->height;
    c->g_threads = (unsigned int)p->threads;
    c->g_timebase.num = 1;
    c->g_timebase.den = CP_VIDEO_CLOCK_HZ;
    c->g_pass = VPX_RC_ONE_PASS;
    c->g_lag_in_frames = 0;
    c->g_error_resilient = p->error_resilient ? VPX_ERROR_RESILIENT_DEFAULT : 0;
    c->rc_end_usage = VPX_CBR;
    c->rc_resize_allowed = 0;
    c->rc_dropframe_thresh = (unsigned int)p->drop_frame_thresh;
    c->rc_min_quantizer = (unsigned int)p->min_quantizer;
    c->rc_max_quantizer = (unsigned int)p->max_quantizer;
    c->rc_undershoot_pct = (unsigned int)p->undershoot_pct;
    c->rc_overshoot_pct = (unsigned int)p->overshoot_pct;
    c->rc_buf_initial_sz = (unsigned int)p->buf_initial_ms;
    c->rc_buf_optimal_sz = (unsigned int)p->buf_optimal_ms;
    c->rc_buf_sz = (unsigned int)p->buf_size_ms;
    /* Keyframes are scheduled here (see cp_vp8_enc_encode), never by libvpx on its own: an
     * automatic keyframe could land on an upper temporal layer. */
    c->kf_mode = VPX_KF_DISABLED;
    c->kf_min_dist = 0;
    c->kf_max_dist = 0;

    setup_pattern(e);
    if (p->temporal_layers > 1) {
        c->ts_number_layers = (unsigned int)p->temporal_layers;
        c->ts_periodicity = (unsigned int)e->periodicity;
        for (int i = 0; i < e->periodicity; i++) c->ts_layer_id[i] = (unsigned int)e->layer_id[i];
        for (int i = 0; i < p->temporal_layers; i++)
            c->ts_rate_decimator[i] = 1u << (p->temporal_layers - 1 - i);
    } else {
        c->ts_number_layers = 1;
        c->ts_periodicity = 0;
    }
    apply_rates(e, p->bitrate_kbps);

    vrc = vpx_codec_enc_init(&e->ctx, vpx_codec_vp8_cx(), c, 0);
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error(e->err, "vpx_codec_enc_init", &e->ctx);
        vpx_codec_destroy(&e->ctx); /* harmless on a failed init; frees any partial state */
        memset(&e->ctx, 0, sizeof(e->ctx));
        return CP_VPX_ERR_LIBVPX;
    }
    e->ctx_ok = 1;

    int max_intra = p->max_intra_pct;
    if (max_intra < 0) {
        /* WebRTC: optimal buffer (ms) * 0.5 * fps / 10, at least 300 % of a mean frame. */
        long v = (long)p->buf_optimal_ms * p->fps / 20;
        max_intra = (int)(v < 300 ? 300 : (v > 100000 ? 100000 : v));
    }
    ENC_CTRL(VP8E_SET_CPUUSED, p->cpu_used);
    ENC_CTRL(VP8E_SET_NOISE_SENSITIVITY, (unsigned int)p->noise_sensitivity);
    ENC_CTRL(VP8E_SET_STATIC_THRESHOLD, (unsigned int)p->static_threshold);
    ENC_CTRL(VP8E_SET_TOKEN_PARTITIONS, p->token_partitions);
    ENC_CTRL(VP8E_SET_MAX_INTRA_BITRATE_PCT, (unsigned int)max_intra);
    ENC_CTRL(VP8E_SET_SCREEN_CONTENT_MODE, (unsigned int)p->screen_content);

    e->duration = (unsigned long)(CP_VIDEO_CLOCK_HZ / p->fps);
    if (e->duration == 0) e->duration = 1;
    e->key_pending = 1;
    e->pattern_pos = 0;
    e->err[0] = '\0';
    return CP_VPX_OK;
}

int cp_vp8_enc_set_bitrate(cp_vp8_enc *e, int bitrate_kbps) {
    if (!e) return CP_VPX_ERR_ARG;
    if (!e->ctx_ok) return enc_fail(e, CP_VPX_ERR_ARG, "encoder not initialised");
    if (bitrate_kbps < 1 || bitrate_kbps > 1000000)
        return enc_fail(e, CP_VPX_ERR_ARG, "bitrate out of range (1..1000000 kbps)");
    vpx_codec_enc_cfg_t saved = e->cfg;
    int saved_kbps = e->stats.bitrate_kbps;
    apply_rates(e, bitrate_kbps);
    vpx_codec_err_t vrc = vpx_codec_enc_config_set(&e->ctx, &e->cfg);
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error(e->err, NULL, &e->ctx);
        e->cfg = saved;
        e->stats.bitrate_kbps = saved_kbps;
        return CP_VPX_ERR_LIBVPX;
    }
    return CP_VPX_OK;
}

void cp_vp8_enc_request_keyframe(cp_vp8_enc *e) {
    if (e) e->key_pending = 1;
}

void cp_vp8_enc_get_stats(const cp_vp8_enc *e, cp_vp8_enc_stats *s) {
    if (e && s) *s = e->stats;
}

static int ensure_cap(cp_vp8_enc *e, size_t need) {
    if (need <= e->cap) return 1;
    size_t ncap = e->cap ? e->cap : 65536;
    while (ncap < need) ncap *= 2;
    uint8_t *nb = realloc(e->buf, ncap);
    if (!nb) return 0;
    e->buf = nb;
    e->cap = ncap;
    return 1;
}

int cp_vp8_enc_encode(cp_vp8_enc *e, const uint8_t *y, const uint8_t *u, const uint8_t *v,
                      int y_stride, int u_stride, int v_stride, int64_t pts, int force_key,
                      cp_vp8_packet *out, int max_packets, int *n_out) {
    if (!e || !n_out || (!out && max_packets > 0)) return CP_VPX_ERR_ARG;
    *n_out = 0;
    if (!e->ctx_ok) return enc_fail(e, CP_VPX_ERR_ARG, "encoder not initialised");
    const int w = e->p.width, h = e->p.height, cw = (w + 1) / 2;
    if (!y || !u || !v) return enc_fail(e, CP_VPX_ERR_ARG, "missing plane pointer");
    if (y_stride < w || u_stride < cw || v_stride < cw)
        return enc_fail(e, CP_VPX_ERR_ARG, "plane stride smaller than the plane width");

    /* Wrap the caller's planes without copying. */
    vpx_image_t img;
    if (!vpx_img_wrap(&img, VPX_IMG_FMT_I420, (unsigned int)w, (unsigned int)h, 1,
                      (unsigned char *)(uintptr_t)y))
        return enc_fail(e, CP_VPX_ERR_ARG, "vpx_img_wrap refused the picture");
    img.planes[VPX_PLANE_Y] = (unsigned char *)(uintptr_t)y;
    img.planes[VPX_PLANE_U] = (unsigned char *)(uintptr_t)u;
    img.planes[VPX_PLANE_V] = (unsigned char *)(uintptr_t)v;
    img.stride[VPX_PLANE_Y] = y_stride;
    img.stride[VPX_PLANE_U] = u_stride;
    img.stride[VPX_PLANE_V] = v_stride;

    /* Keyframe decision and per-frame temporal-layer flags. */
    int want_key = force_key || e->key_pending ||
                   (e->p.keyframe_interval > 0 && e->frames_since_key >= e->p.keyframe_interval);
    if (want_key) e->pattern_pos = 0;
    const int pos = e->pattern_pos;
    const int layer = e->layer_id[pos];
    vpx_enc_frame_flags_t flags = want_key ? VPX_EFLAG_FORCE_KF : e->layer_flags[pos];
    if (e->p.temporal_layers > 1) ENC_CTRL(VP8E_SET_TEMPORAL_LAYER_ID, layer);

    /* libvpx wants increasing timestamps; keep our own clock that follows the caller's
     * deltas and steps one frame duration when the caller's pts does not increase. */
    int64_t ipts;
    if (!e->have_pts) {
        ipts = 0;
    } else {
        int64_t delta = pts - e->last_user_pts;
        if (delta <= 0 || delta > (int64_t)CP_VIDEO_CLOCK_HZ * 3600) delta = (int64_t)e->duration;
        ipts = e->last_internal_pts + delta;
    }

    vpx_codec_err_t vrc =
        vpx_codec_encode(&e->ctx, &img, ipts, e->duration, flags, VPX_DL_REALTIME);
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error(e->err, NULL, &e->ctx);
        return CP_VPX_ERR_LIBVPX;
    }
    e->have_pts = 1;
    e->last_user_pts = pts;
    e->last_internal_pts = ipts;
    e->stats.frames_in++;

    /* Collect the packets: copy them into our buffer (offsets first, pointers at the end,
     * since the buffer may move while it grows). */
    size_t used = 0, offs[CP_VPX_MAX_PACKETS];
    int n = 0, overflow = 0, got_key = 0;
    vpx_codec_iter_t iter = NULL;
    const vpx_codec_cx_pkt_t *pkt;
    while ((pkt = vpx_codec_get_cx_data(&e->ctx, &iter)) != NULL) {
        if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
        if (n >= max_packets || n >= CP_VPX_MAX_PACKETS) {
            overflow = 1;
            continue;
        }
        size_t sz = pkt->data.frame.sz;
        if (!ensure_cap(e, used + sz)) return enc_fail(e, CP_VPX_ERR_NOMEM, "out of memory");
        memcpy(e->buf + used, pkt->data.frame.buf, sz);
        offs[n] = used;
        used += sz;
        int key = (pkt->data.frame.flags & VPX_FRAME_IS_KEY) != 0;
        out[n].size = sz;
        out[n].pts = pts;
        out[n].keyframe = key;
        /* A keyframe refreshes every buffer: every receiver needs it, so it is layer 0. */
        out[n].temporal_id = key ? 0 : layer;
        out[n].droppable = (pkt->data.frame.flags & VPX_FRAME_IS_DROPPABLE) != 0;
        got_key |= key;
        e->stats.frames_out++;
        e->stats.bytes_out += (int64_t)sz;
        if (key) e->stats.keyframes++;
        n++;
    }
    for (int i = 0; i < n; i++) out[i].data = e->buf + offs[i];
    *n_out = n;

    if (n == 0) e->stats.frames_dropped++;
    if (got_key) {
        e->key_pending = 0;
        e->frames_since_key = 1;
        e->pattern_pos = e->periodicity > 1 ? 1 : 0;
    } else {
        /* A wanted keyframe that rate control dropped stays pending. */
        if (want_key) e->key_pending = 1;
        e->frames_since_key++;
        e->pattern_pos = (pos + 1) % e->periodicity;
    }
    int q = 0;
    if (vpx_codec_control(&e->ctx, VP8E_GET_LAST_QUANTIZER_64, &q) == VPX_CODEC_OK)
        e->stats.last_quantizer = q;
    if (overflow) return enc_fail(e, CP_VPX_ERR_SPACE, "more packets than the output holds");
    return CP_VPX_OK;
}

void cp_vp8_enc_free(cp_vp8_enc *e) {
    if (!e) return;
    if (e->ctx_ok) vpx_codec_destroy(&e->ctx);
    free(e->buf);
    free(e);
}

/* ---------------------------------------------------------------------------------------- */
/* decoder                                                                                  */

struct cp_vp8_dec {
    vpx_codec_ctx_t ctx;
    int ctx_ok;
    vpx_image_t *img; /* last picture, valid until the next decode */
    char err[CP_ERRLEN];
};

cp_vp8_dec *cp_vp8_dec_new(void) { return calloc(1, sizeof(cp_vp8_dec)); }

const char *cp_vp8_dec_last_error(const cp_vp8_dec *d) { return d ? d->err : "no decoder"; }

int cp_vp8_dec_init(cp_vp8_dec *d, int threads) {
    if (!d) return CP_VPX_ERR_ARG;
    if (d->ctx_ok) {
        snprintf(d->err, CP_ERRLEN, "decoder already initialised");
        return CP_VPX_ERR_ARG;
    }
    if (threads < 1 || threads > 64) {
        snprintf(d->err, CP_ERRLEN, "threads out of range (1..64)");
        return CP_VPX_ERR_ARG;
    }
    vpx_codec_dec_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.threads = (unsigned int)threads;
    vpx_codec_err_t vrc = vpx_codec_dec_init(&d->ctx, vpx_codec_vp8_dx(), &cfg, 0);
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error(d->err, "vpx_codec_dec_init", &d->ctx);
        vpx_codec_destroy(&d->ctx);
        memset(&d->ctx, 0, sizeof(d->ctx));
        return CP_VPX_ERR_LIBVPX;
    }
    d->ctx_ok = 1;
    return CP_VPX_OK;
}

static size_t picture_size(const vpx_image_t *img) {
    size_t w = img->d_w, h = img->d_h;
    size_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    return w * h + 2 * cw * ch;
}

static void copy_plane(uint8_t *dst, const uint8_t *src, int stride, size_t w, size_t h) {
    for (size_t r = 0; r < h; r++) memcpy(dst + r * w, src + (ptrdiff_t)r * stride, w);
}

int cp_vp8_dec_copy(cp_vp8_dec *d, uint8_t *out, size_t out_cap) {
    if (!d) return CP_VPX_ERR_ARG;
    const vpx_image_t *img = d->img;
    if (!img) {
        snprintf(d->err, CP_ERRLEN, "no decoded picture to copy");
        return CP_VPX_ERR_ARG;
    }
    if (!out || out_cap < picture_size(img)) {
        snprintf(d->err, CP_ERRLEN, "output buffer too small for %ux%u picture", img->d_w,
                 img->d_h);
        return CP_VPX_ERR_SPACE;
    }
    size_t w = img->d_w, h = img->d_h;
    size_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    copy_plane(out, img->planes[VPX_PLANE_Y], img->stride[VPX_PLANE_Y], w, h);
    copy_plane(out + w * h, img->planes[VPX_PLANE_U], img->stride[VPX_PLANE_U], cw, ch);
    copy_plane(out + w * h + cw * ch, img->planes[VPX_PLANE_V], img->stride[VPX_PLANE_V], cw,
               ch);
    return CP_VPX_OK;
}

int cp_vp8_dec_decode_ref(cp_vp8_dec *d, const uint8_t *data, size_t size, cp_vp8_picture *pic,
                          int *got) {
    if (!d || !pic || !got) return CP_VPX_ERR_ARG;
    *got = 0;
    memset(pic, 0, sizeof(*pic));
    d->img = NULL;
    if (!d->ctx_ok) {
        snprintf(d->err, CP_ERRLEN, "decoder not initialised");
        return CP_VPX_ERR_ARG;
    }
    if (!data || size == 0) {
        snprintf(d->err, CP_ERRLEN, "empty input (0 bytes)");
        return CP_VPX_ERR_ARG;
    }
    if (size > UINT_MAX) {
        snprintf(d->err, CP_ERRLEN, "frame too large (%zu bytes)", size);
        return CP_VPX_ERR_ARG;
    }
    vpx_codec_err_t vrc = vpx_codec_decode(&d->ctx, data, (unsigned int)size, NULL, 0);
    vpx_codec_iter_t iter = NULL;
    if (vrc != VPX_CODEC_OK) {
        set_vpx_error(d->err, NULL, &d->ctx);
        while (vpx_codec_get_frame(&d->ctx, &iter) != NULL) {
        }
        return CP_VPX_ERR_LIBVPX;
    }
    int corrupted = 0;
    if (vpx_codec_control(&d->ctx, VP8D_GET_FRAME_CORRUPTED, &corrupted) != VPX_CODEC_OK)
        corrupted = 0;
    vpx_image_t *img = vpx_codec_get_frame(&d->ctx, &iter);
    while (vpx_codec_get_frame(&d->ctx, &iter) != NULL) {
    }
    if (corrupted) {
        snprintf(d->err, CP_ERRLEN,
                 "frame decoded with errors (VP8D_GET_FRAME_CORRUPTED): a reference "
                 "picture is damaged, the next keyframe repairs it");
        return CP_VPX_ERR_CORRUPT;
    }
    if (!img) return CP_VPX_OK; /* a frame that is not shown */
    if (img->fmt != VPX_IMG_FMT_I420 || img->d_w == 0 || img->d_h == 0) {
        snprintf(d->err, CP_ERRLEN, "unexpected decoder output format %d (%ux%u)", (int)img->fmt,
                 img->d_w, img->d_h);
        return CP_VPX_ERR_LIBVPX;
    }
    d->img = img;
    *got = 1;
    pic->width = (int)img->d_w;
    pic->height = (int)img->d_h;
    pic->keyframe = (data[0] & 1) == 0; /* VP8 frame tag: bit 0 clear on keyframes */
    for (int i = 0; i < 3; i++) {
        pic->planes[i] = img->planes[i];
        pic->strides[i] = img->stride[i];
    }
    return CP_VPX_OK;
}

int cp_vp8_dec_decode(cp_vp8_dec *d, const uint8_t *data, size_t size, uint8_t *out,
                      size_t out_cap, cp_vp8_picture *pic, int *got) {
    int rc = cp_vp8_dec_decode_ref(d, data, size, pic, got);
    if (rc != CP_VPX_OK || !*got) return rc;
    if (out && out_cap >= picture_size(d->img)) return cp_vp8_dec_copy(d, out, out_cap);
    return CP_VPX_ERR_SPACE;
}

void cp_vp8_dec_free(cp_vp8_dec *d) {
    if (!d) return;
    if (d->ctx_ok) vpx_codec_destroy(&d->ctx);
    free(d);
}
