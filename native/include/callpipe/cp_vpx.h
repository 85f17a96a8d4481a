/* cp_vpx: VP8 encoder/decoder helpers over the system libvpx, one C call per frame.
 *
 * Python (callpipe.codecs.vp8) binds this header with cffi in API mode, so every call below
 * runs with the GIL released.  The header stays in cffi's parsable subset: plain prototypes,
 * structs, opaque handles and enums for constants (no macros, no inline functions).
 *
 * Error model: functions return 0 (CP_VPX_OK) on success or a negative CP_VPX_E* code.  The
 * text of the last error of a handle (libvpx's own message and detail when libvpx failed) is
 * read with cp_vp8_enc_last_error / cp_vp8_dec_last_error.
 */
#ifndef CALLPIPE_CP_VPX_H
#define CALLPIPE_CP_VPX_H

#include <stddef.h>
#include <stdint.h>

enum {
    CP_VPX_OK = 0,
    CP_VPX_ERR_LIBVPX = -1,  /* libvpx returned an error; see *_last_error */
    CP_VPX_ERR_ARG = -2,     /* bad argument (sizes, strides, ranges) */
    CP_VPX_ERR_NOMEM = -3,   /* allocation failed */
    CP_VPX_ERR_CORRUPT = -4, /* decoder: frame decoded but flagged corrupted */
    CP_VPX_ERR_SPACE = -5,   /* decoder: output buffer too small; see out->width/height */
    CP_VPX_MAX_LAYERS = 3,   /* temporal layers supported (1..3) */
    CP_VPX_MAX_PACKETS = 4   /* encoder: most frame packets reported by one encode call */
};

/* Encoder settings.  Fill with cp_vp8_enc_params_default(), then change what you need. */
typedef struct cp_vp8_enc_params {
    int width;                /* pixels, 1..16383 */
    int height;               /* pixels, 1..16383 */
    int bitrate_kbps;         /* target bitrate, kbit/s (all layers together) */
    int fps;                  /* nominal frame rate, frames/s (1..1000) */
    int threads;              /* encoder threads (1..64) */
    int cpu_used;             /* VP8E_SET_CPUUSED, -16..16 (negative = real-time speed) */
    int temporal_layers;      /* 1..3 */
    int noise_sensitivity;    /* VP8E_SET_NOISE_SENSITIVITY, 0 (off)..6 */
    int keyframe_interval;    /* frames between forced keyframes; 0 = only on request */
    int min_quantizer;        /* 0..63 */
    int max_quantizer;        /* min_quantizer..63 */
    int undershoot_pct;       /* rc_undershoot_pct, percent */
    int overshoot_pct;        /* rc_overshoot_pct, percent */
    int buf_initial_ms;       /* rc_buf_initial_sz, ms */
    int buf_optimal_ms;       /* rc_buf_optimal_sz, ms */
    int buf_size_ms;          /* rc_buf_sz, ms */
    int drop_frame_thresh;    /* rc_dropframe_thresh, percent of buffer; 0 = never drop */
    int static_threshold;     /* VP8E_SET_STATIC_THRESHOLD */
    int token_partitions;     /* VP8E_SET_TOKEN_PARTITIONS: log2 of the partition count, 0..3 */
    int max_intra_pct;        /* VP8E_SET_MAX_INTRA_BITRATE_PCT; 0 = no limit */
    int error_resilient;      /* 1 = VPX_ERROR_RESILIENT_DEFAULT, 0 = off */
    int screen_content;       /* VP8E_SET_SCREEN_CONTENT_MODE, 0..2 */
    int layer_rate_pct[3];    /* cumulative share of bitrate_kbps per temporal layer, percent */
} cp_vp8_enc_params;

/* One encoded frame reported by cp_vp8_enc_encode.  `data` points into the encoder's own
 * buffer and stays valid until the next encode call or cp_vp8_enc_free. */
typedef struct cp_vp8_packet {
    const uint8_t *data;
    size_t size;          /* bytes */
    int64_t pts;          /* the pts given to cp_vp8_enc_encode, 90 kHz */
    int keyframe;         /* 1 when a keyframe */
    int temporal_id;      /* temporal layer of the frame, 0..temporal_layers-1 */
    int droppable;        /* 1 when no later frame references this one */
} cp_vp8_packet;

/* Running counters of an encoder. */
typedef struct cp_vp8_enc_stats {
    int64_t frames_in;       /* encode calls with a picture */
    int64_t frames_out;      /* frames emitted */
    int64_t frames_dropped;  /* pictures the rate control dropped */
    int64_t keyframes;       /* keyframes emitted */
    int64_t bytes_out;       /* bytes emitted */
    int last_quantizer;      /* quantizer of the last frame, 0..63 */
    int bitrate_kbps;        /* current target, kbit/s */
} cp_vp8_enc_stats;

typedef struct cp_vp8_enc cp_vp8_enc;
typedef struct cp_vp8_dec cp_vp8_dec;

/* Picture returned by the decoder.  cp_vp8_dec_decode copies it (tightly packed I420) into the
 * caller's buffer; `planes`/`strides` point into libvpx's own frame buffer (the picture libvpx
 * shows), valid until the next decode call on the decoder or cp_vp8_dec_free, whichever comes
 * first, and only while the picture size stays the same (a keyframe of another size makes
 * libvpx reallocate its buffers). */
typedef struct cp_vp8_picture {
    int width;                /* pixels */
    int height;               /* pixels */
    int keyframe;             /* 1 when the decoded frame was a keyframe */
    const uint8_t *planes[3]; /* Y, U, V inside libvpx's frame buffer (read only) */
    int strides[3];           /* row stride of each plane, bytes */
} cp_vp8_picture;

const char *cp_vpx_version_str(void);
const char *cp_vpx_build_config(void);

void cp_vp8_enc_params_default(cp_vp8_enc_params *p);
cp_vp8_enc *cp_vp8_enc_new(void);
int cp_vp8_enc_init(cp_vp8_enc *e, const cp_vp8_enc_params *p);
/* Encode one picture given as three planes with their row strides (bytes).  Wraps the planes
 * zero-copy, encodes, and collects up to max_packets frame packets into `out`.  `force_key`
 * asks for a keyframe.  *n_out receives the packet count (0 when rate control dropped it). */
int cp_vp8_enc_encode(cp_vp8_enc *e, const uint8_t *y, const uint8_t *u, const uint8_t *v,
                      int y_stride, int u_stride, int v_stride, int64_t pts, int force_key,
                      cp_vp8_packet *out, int max_packets, int *n_out);
int cp_vp8_enc_set_bitrate(cp_vp8_enc *e, int bitrate_kbps);
void cp_vp8_enc_request_keyframe(cp_vp8_enc *e);
void cp_vp8_enc_get_stats(const cp_vp8_enc *e, cp_vp8_enc_stats *s);
const char *cp_vp8_enc_last_error(const cp_vp8_enc *e);
void cp_vp8_enc_free(cp_vp8_enc *e);

cp_vp8_dec *cp_vp8_dec_new(void);
int cp_vp8_dec_init(cp_vp8_dec *d, int threads);
/* Decode one compressed frame.  On success *got is 1 when a picture is ready (0 for a frame
 * that is not shown).  When a picture is ready and `out_cap` bytes are enough for it, it is
 * copied (tightly packed I420) into `out`; when they are not, CP_VPX_ERR_SPACE is returned with
 * pic->width/height set, and cp_vp8_dec_copy can fetch the picture into a larger buffer. */
int cp_vp8_dec_decode(cp_vp8_dec *d, const uint8_t *data, size_t size, uint8_t *out,
                      size_t out_cap, cp_vp8_picture *pic, int *got);
/* Decode one compressed frame without copying the picture: on success with *got == 1, `pic`
 * (size, keyframe flag, plane pointers and strides) describes libvpx's own picture (see
 * cp_vp8_picture for how long it stays valid); cp_vp8_dec_copy can still copy it out. */
int cp_vp8_dec_decode_ref(cp_vp8_dec *d, const uint8_t *data, size_t size, cp_vp8_picture *pic,
                          int *got);
int cp_vp8_dec_copy(cp_vp8_dec *d, uint8_t *out, size_t out_cap);
const char *cp_vp8_dec_last_error(const cp_vp8_dec *d);
void cp_vp8_dec_free(cp_vp8_dec *d);

#endif /* CALLPIPE_CP_VPX_H */
