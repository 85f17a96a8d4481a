/* callpipe Opus core: see callpipe/cp_opus.h. */
#include "callpipe/cp_opus.h"

#include <opus.h>
#include <stdlib.h>

struct cp_opus_enc {
    OpusEncoder *st;
    int32_t sample_rate;
    int channels;
};

struct cp_opus_dec {
    OpusDecoder *st;
    int32_t sample_rate;
    int channels;
};

static int valid_rate(int32_t rate)
{
    return rate == 8000 || rate == 12000 || rate == 16000 || rate == 24000 || rate == 48000;
}

/* 2.5, 5, 10, 20, 40 or 60 ms at `rate`. */
static int valid_frame_size(int32_t rate, int frame_size)
{
    const int unit = (int)(rate / 400); /* samples in 2.5 ms */
    static const int mult[] = {1, 2, 4, 8, 16, 24};
    for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++) {
        if (frame_size == unit * mult[i]) {
            return 1;
        }
    }
    return 0;
}

/* ---- encoder ------------------------------------------------------------------------------ */

int cp_opus_enc_new(cp_opus_enc **out, int32_t sample_rate, int channels, int application)
{
    if (out == NULL) {
        return OPUS_BAD_ARG;
    }
    *out = NULL;
    if (!valid_rate(sample_rate) || (channels != 1 && channels != 2)) {
        return OPUS_BAD_ARG;
    }
    cp_opus_enc *enc = malloc(sizeof *enc);
    if (enc == NULL) {
        return OPUS_ALLOC_FAIL;
    }
    int err = OPUS_OK;
    enc->st = opus_encoder_create(sample_rate, channels, application, &err);
    if (enc->st == NULL || err != OPUS_OK) {
        if (enc->st != NULL) {
            opus_encoder_destroy(enc->st);
        }
        free(enc);
        return err != OPUS_OK ? err : OPUS_ALLOC_FAIL;
    }
    enc->sample_rate = sample_rate;
    enc->channels = channels;
    *out = enc;
    return OPUS_OK;
}

void cp_opus_enc_free(cp_opus_enc *enc)
{
    if (enc != NULL) {
        opus_encoder_destroy(enc->st);
        free(enc);
    }
}

int32_t cp_opus_enc_encode(cp_opus_enc *enc, const int16_t *pcm, int32_t pcm_len, int frame_size,
                           unsigned char *out, int32_t max_bytes)
{
    if (enc == NULL || pcm == NULL || out == NULL || max_bytes <= 0) {
        return OPUS_BAD_ARG;
    }
    if (!valid_frame_size(enc->sample_rate, frame_size) ||
        (int64_t)frame_size * enc->channels != (int64_t)pcm_len) {
        return OPUS_BAD_ARG;
    }
    return opus_encode(enc->st, pcm, frame_size, out, max_bytes);
}

#define CP_ENC_SETTER(name, REQUEST)                                                             \
    int cp_opus_enc_set_##name(cp_opus_enc *enc, int32_t value)                                 \
    {                                                                                          \
        if (enc == NULL) {                                                                     \
            return OPUS_BAD_ARG;                                                               \
        }                                                                                      \
        return opus_encoder_ctl(enc->st, REQUEST(value));                                      \
    }

/* The GET requests type-check for an opus_int32 pointer (__opus_check_int_ptr). */
#define CP_ENC_GETTER(name, REQUEST)                                                             \
    int cp_opus_enc_get_##name(cp_opus_enc *enc, int32_t *value)                                \
    {                                                                                          \
        if (enc == NULL || value == NULL) {                                                    \
            return OPUS_BAD_ARG;                                                               \
        }                                                                                      \
        opus_int32 v = 0;                                                                      \
        int err = opus_encoder_ctl(enc->st, REQUEST(&v));                                      \
        *value = v;                                                                            \
        return err;                                                                            \
    }

CP_ENC_SETTER(bitrate, OPUS_SET_BITRATE)
CP_ENC_GETTER(bitrate, OPUS_GET_BITRATE)
CP_ENC_SETTER(complexity, OPUS_SET_COMPLEXITY)
CP_ENC_GETTER(complexity, OPUS_GET_COMPLEXITY)
CP_ENC_SETTER(inband_fec, OPUS_SET_INBAND_FEC)
CP_ENC_GETTER(inband_fec, OPUS_GET_INBAND_FEC)
CP_ENC_SETTER(packet_loss_perc, OPUS_SET_PACKET_LOSS_PERC)
CP_ENC_GETTER(packet_loss_perc, OPUS_GET_PACKET_LOSS_PERC)
CP_ENC_SETTER(dtx, OPUS_SET_DTX)
CP_ENC_GETTER(dtx, OPUS_GET_DTX)
CP_ENC_SETTER(vbr, OPUS_SET_VBR)
CP_ENC_GETTER(vbr, OPUS_GET_VBR)
CP_ENC_SETTER(vbr_constraint, OPUS_SET_VBR_CONSTRAINT)
CP_ENC_GETTER(vbr_constraint, OPUS_GET_VBR_CONSTRAINT)
CP_ENC_GETTER(lookahead, OPUS_GET_LOOKAHEAD)

int cp_opus_enc_get_final_range(cp_opus_enc *enc, uint32_t *range)
{
    if (enc == NULL || range == NULL) {
        return OPUS_BAD_ARG;
    }
    opus_uint32 v = 0;
    int err = opus_encoder_ctl(enc->st, OPUS_GET_FINAL_RANGE(&v));
    *range = v;
    return err;
}

int cp_opus_enc_reset(cp_opus_enc *enc)
{
    if (enc == NULL) {
        return OPUS_BAD_ARG;
    }
    return opus_encoder_ctl(enc->st, OPUS_RESET_STATE);
}

/* ---- decoder ------------------------------------------------------------------------------ */

int cp_opus_dec_new(cp_opus_dec **out, int32_t sample_rate, int channels)
{
    if (out == NULL) {
        return OPUS_BAD_ARG;
    }
    *out = NULL;
    if (!valid_rate(sample_rate) || (channels != 1 && channels != 2)) {
        return OPUS_BAD_ARG;
    }
    cp_opus_dec *dec = malloc(sizeof *dec);
    if (dec == NULL) {
        return OPUS_ALLOC_FAIL;
    }
    int err = OPUS_OK;
    dec->st = opus_decoder_create(sample_rate, channels, &err);
    if (dec->st == NULL || err != OPUS_OK) {
        if (dec->st != NULL) {
            opus_decoder_destroy(dec->st);
        }
        free(dec);
        return err != OPUS_OK ? err : OPUS_ALLOC_FAIL;
    }
    dec->sample_rate = sample_rate;
    dec->channels = channels;
    *out = dec;
    return OPUS_OK;
}

void cp_opus_dec_free(cp_opus_dec *dec)
{
    if (dec != NULL) {
        opus_decoder_destroy(dec->st);
        free(dec);
    }
}

int cp_opus_dec_decode(cp_opus_dec *dec, const unsigned char *data, int32_t len, int16_t *pcm,
                       int max_samples, int decode_fec)
{
    if (dec == NULL || pcm == NULL || max_samples <= 0 || len < 0) {
        return OPUS_BAD_ARG;
    }
    if (data == NULL || decode_fec) {
        /* Concealment or FEC: the output is exactly max_samples, a multiple of 2.5 ms. */
        if (max_samples % (dec->sample_rate / 400) != 0) {
            return OPUS_BAD_ARG;
        }
        if (data == NULL) {
            len = 0;
        }
        return opus_decode(dec->st, data, len, pcm, max_samples, decode_fec ? 1 : 0);
    }
    if (len == 0) {
        return OPUS_INVALID_PACKET; /* an empty packet is a loss, not data: use data == NULL */
    }
    const int n = opus_decoder_get_nb_samples(dec->st, data, len);
    if (n < 0) {
        return n;
    }
    if (n > max_samples) {
        return n;
    }
    return opus_decode(dec->st, data, len, pcm, max_samples, 0);
}

int cp_opus_dec_get_last_packet_duration(cp_opus_dec *dec, int32_t *samples)
{
    if (dec == NULL || samples == NULL) {
        return OPUS_BAD_ARG;
    }
    opus_int32 v = 0;
    int err = opus_decoder_ctl(dec->st, OPUS_GET_LAST_PACKET_DURATION(&v));
    *samples = v;
    return err;
}

int cp_opus_dec_get_final_range(cp_opus_dec *dec, uint32_t *range)
{
    if (dec == NULL || range == NULL) {
        return OPUS_BAD_ARG;
    }
    opus_uint32 v = 0;
    int err = opus_decoder_ctl(dec->st, OPUS_GET_FINAL_RANGE(&v));
    *range = v;
    return err;
}

int cp_opus_dec_reset(cp_opus_dec *dec)
{
    if (dec == NULL) {
        return OPUS_BAD_ARG;
    }
    return opus_decoder_ctl(dec->st, OPUS_RESET_STATE);
}
