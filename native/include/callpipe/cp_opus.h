/* callpipe Opus core: per-frame C helpers over the system libopus.
 *
 * One C call per encoded or decoded frame.  opus_encoder_ctl / opus_decoder_ctl are variadic and
 * driven by macros, so every request callpipe needs is wrapped here in a real function that cffi
 * can call.  Functions return libopus error codes (OPUS_OK == 0, negative on failure; the values
 * come from <opus_defines.h>, exposed to Python through native/cffi/opus.h) unless noted.
 *
 * This header is also the cffi cdef (see native/cffi/pkgconf.py: read_cdef): keep it to plain
 * prototypes, opaque structs and enums.  Preprocessor lines are dropped from the cdef.
 */
#ifndef CALLPIPE_CP_OPUS_H
#define CALLPIPE_CP_OPUS_H

#include <stdint.h>

/* Opaque encoder / decoder handles (a libopus state plus the facts needed to check arguments). */
typedef struct cp_opus_enc cp_opus_enc;
typedef struct cp_opus_dec cp_opus_dec;

enum cp_opus_limits {
    /* Bytes of output buffer that always hold one encoded packet (libopus recommends 4000). */
    CP_OPUS_MAX_PACKET_BYTES = 4000,
    /* Longest packet libopus decodes: 120 ms at 48 kHz, in samples per channel. */
    CP_OPUS_MAX_FRAME_SAMPLES_48K = 5760
};

/* ---- encoder --------------------------------------------------------------------------------
 * sample_rate: 8000, 12000, 16000, 24000 or 48000 Hz.  channels: 1 or 2.
 * application: OPUS_APPLICATION_VOIP, OPUS_APPLICATION_AUDIO or
 * OPUS_APPLICATION_RESTRICTED_LOWDELAY.  On success *out holds a new encoder (free it with
 * cp_opus_enc_free); on failure *out is NULL and a libopus error code is returned. */
int cp_opus_enc_new(cp_opus_enc **out, int32_t sample_rate, int channels, int application);
void cp_opus_enc_free(cp_opus_enc *enc);

/* Encode one frame of interleaved int16 PCM.  frame_size is in samples per channel and must be
 * 2.5, 5, 10, 20, 40 or 60 ms at the encoder's rate; pcm_len is the number of int16 values in
 * pcm and must equal frame_size * channels.  Returns the packet length in bytes (> 0) written to
 * out (max_bytes long), or a negative libopus error code. */
int32_t cp_opus_enc_encode(cp_opus_enc *enc, const int16_t *pcm, int32_t pcm_len, int frame_size,
                           unsigned char *out, int32_t max_bytes);

/* Encoder controls (each wraps one OPUS_SET_x / OPUS_GET_x request). */
int cp_opus_enc_set_bitrate(cp_opus_enc *enc, int32_t bits_per_second);
int cp_opus_enc_get_bitrate(cp_opus_enc *enc, int32_t *bits_per_second);
int cp_opus_enc_set_complexity(cp_opus_enc *enc, int32_t complexity);
int cp_opus_enc_get_complexity(cp_opus_enc *enc, int32_t *complexity);
int cp_opus_enc_set_inband_fec(cp_opus_enc *enc, int32_t on);
int cp_opus_enc_get_inband_fec(cp_opus_enc *enc, int32_t *on);
int cp_opus_enc_set_packet_loss_perc(cp_opus_enc *enc, int32_t percent);
int cp_opus_enc_get_packet_loss_perc(cp_opus_enc *enc, int32_t *percent);
int cp_opus_enc_set_dtx(cp_opus_enc *enc, int32_t on);
int cp_opus_enc_get_dtx(cp_opus_enc *enc, int32_t *on);
int cp_opus_enc_set_vbr(cp_opus_enc *enc, int32_t on);
int cp_opus_enc_get_vbr(cp_opus_enc *enc, int32_t *on);
int cp_opus_enc_set_vbr_constraint(cp_opus_enc *enc, int32_t on);
int cp_opus_enc_get_vbr_constraint(cp_opus_enc *enc, int32_t *on);
int cp_opus_enc_get_lookahead(cp_opus_enc *enc, int32_t *samples);
int cp_opus_enc_get_final_range(cp_opus_enc *enc, uint32_t *range);
int cp_opus_enc_reset(cp_opus_enc *enc);

/* ---- decoder --------------------------------------------------------------------------------
 * sample_rate: 8000, 12000, 16000, 24000 or 48000 Hz (output rate).  channels: 1 or 2. */
int cp_opus_dec_new(cp_opus_dec **out, int32_t sample_rate, int channels);
void cp_opus_dec_free(cp_opus_dec *dec);

/* Decode into pcm (interleaved int16, room for max_samples samples per channel).
 *  - data == NULL: packet loss concealment of exactly max_samples samples per channel
 *    (a multiple of 2.5 ms).
 *  - decode_fec != 0: recover the frame lost before this packet from its in-band FEC data,
 *    exactly max_samples samples per channel (the lost frame's duration); libopus conceals
 *    instead when the packet carries no FEC data.
 *  - otherwise: decode the packet.  When the packet holds more than max_samples samples per
 *    channel nothing is decoded and that sample count is returned (> max_samples), so that the
 *    caller can retry with a larger buffer.
 * Returns samples per channel decoded, or a negative libopus error code (the decoder stays
 * usable after an error). */
int cp_opus_dec_decode(cp_opus_dec *dec, const unsigned char *data, int32_t len, int16_t *pcm,
                       int max_samples, int decode_fec);

int cp_opus_dec_get_last_packet_duration(cp_opus_dec *dec, int32_t *samples);
int cp_opus_dec_get_final_range(cp_opus_dec *dec, uint32_t *range);
int cp_opus_dec_reset(cp_opus_dec *dec);

#endif /* CALLPIPE_CP_OPUS_H */
