/* Replay decoding for the audio jitter buffer: see callpipe/cp_jitter_replay.h.
 *
 * The context holds the source signal as whole frames and one read position, `cursor` (samples
 * per channel into the signal, always < frames * frame_samples), the point right after the last
 * audio it returned.
 *
 * Where the frame index lives: bytes 1..4 after the Opus TOC.  In an Opus packet with TOC code 3
 * byte 1 is the frame count the buffer reads the duration from, so there the index goes to bytes
 * 2..5 instead (the real encoder's 20 ms packets are code 0; a trace may hold others).
 *
 * Concealment (payload NULL) continues the source audio from `cursor`: for a lost packet right
 * after a decoded one that is exactly the lost frame's own audio, later ones follow on in time.
 * Why: the replay models the timing of the buffer, and what the buffer does with the audio is
 * look at it when it time-stretches (the pitch correlation and the RMS of the sync buffer,
 * which can hold concealed audio) and count silent concealment.  The source's continuation has
 * the signal's own pitch and level, which is what a good PLC aims for, and it keeps the replay
 * aligned with the source's time line as a replacement audio file is (FakeDecodeFromFile reads
 * its file in timestamp order; in WebRTC's simulator NetEq conceals with its own expand, not the
 * fake decoder, which this buffer's design -- decoder PLC -- does not allow).  It does not model
 * how a codec's PLC fades towards silence over a long loss, so silent concealment is
 * under-counted and stretches during a long concealment see voice where Opus gives a fading
 * one; nor does replay tell what the concealment sounds like (for that, decode with Opus).
 *
 * FEC (fec != 0) returns the `want` samples of source audio that end where this packet's frame
 * begins: the previous frame when want == frame_samples, which is what the in-band FEC of the
 * packet carries (at a lower quality, and only when the encoder put it there; replay always has
 * it, libopus falls back to PLC when it is absent -- the buffer counts both as FEC).
 *
 * A payload too short for an index (DTX, 1..2 bytes: sent during the sender's silence) decodes to
 * silence, as FakeDecodeFromFile does with comfort noise payloads, and so does every concealment
 * after it until a packet with an index is decoded: the buffer asks the decoder for comfort noise
 * the same way as for concealment (no payload), and the sender is silent there.  libopus gives
 * low-level comfort noise, below the buffer's silence_rms either way.
 */
#include "callpipe/cp_jitter_replay.h"
#include "callpipe/cp_jitter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cp_jb_replay {
    int16_t *pcm;          /* frames * frame_samples * channels, interleaved */
    int64_t frames;        /* whole frames held (>= 1) */
    int64_t total;         /* frames * frame_samples: samples per channel */
    int64_t cursor;        /* samples per channel, 0..total-1: after the last audio returned */
    int cng;               /* the last packet decoded was DTX: concealment is comfort noise */
    int32_t channels, sample_rate, frame_samples;
};

int cp_jb_replay_new(cp_jb_replay **out, const int16_t *pcm, int64_t samples, int32_t channels,
                     int32_t sample_rate, int32_t frame_samples) {
    if (!out) return CP_JB_EINVAL;
    *out = NULL;
    if (!pcm || channels < 1 || channels > CP_JB_MAX_CHANNELS || sample_rate < 8000 ||
        sample_rate > 48000 || sample_rate % 400 || frame_samples < 1 ||
        frame_samples > CP_JB_MAX_PACKET_MS * (sample_rate / 1000) || samples < frame_samples)
        return CP_JB_EINVAL;
    int64_t frames = samples / frame_samples;
    int64_t total = frames * frame_samples;
    /* frame indices (uint32) must reach every frame, and the copy's size must fit a size_t */
    if (frames > (int64_t)UINT32_MAX ||
        (uint64_t)total > SIZE_MAX / ((size_t)channels * sizeof(int16_t)))
        return CP_JB_EINVAL;
    size_t bytes = (size_t)total * (size_t)channels * sizeof(int16_t);
    cp_jb_replay *r = calloc(1, sizeof *r);
    if (!r) return CP_JB_ENOMEM;
    r->pcm = malloc(bytes);
    if (!r->pcm) {
        free(r);
        return CP_JB_ENOMEM;
    }
    memcpy(r->pcm, pcm, bytes);
    r->frames = frames;
    r->total = total;
    r->cursor = 0;
    r->channels = channels;
    r->sample_rate = sample_rate;
    r->frame_samples = frame_samples;
    *out = r;
    return CP_JB_OK;
}

void cp_jb_replay_free(cp_jb_replay *r) {
    if (!r) return;
    free(r->pcm);
    free(r);
}

int64_t cp_jb_replay_frames(const cp_jb_replay *r) {
    return r ? r->frames : CP_JB_EINVAL;
}

/* Offset of the index in a payload (after the TOC, and the frame count byte of code 3). */
static int32_t index_offset(const unsigned char *payload, int32_t len) {
    if (!payload || len < 1) return -1;
    int32_t off = (payload[0] & 3) == 3 ? 2 : 1;
    return len >= off + 4 ? off : -1;
}

int cp_jb_replay_stamp(unsigned char *payload, int32_t len, uint32_t index) {
    int32_t off = index_offset(payload, len);
    if (off < 0) return CP_JB_EINVAL;
    for (int i = 0; i < 4; i++) payload[off + i] = (unsigned char)(index >> (8 * i));
    return CP_JB_OK;
}

int64_t cp_jb_replay_index(const unsigned char *payload, int32_t len) {
    int32_t off = index_offset(payload, len);
    if (off < 0) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)payload[off + i] << (8 * i);
    return (int64_t)v;
}

/* Copy n samples per channel from position `from` of the signal (wrapping at its end) into pcm;
 * returns the position after them. */
static int64_t copy_from(const cp_jb_replay *r, int64_t from, int32_t n, int16_t *pcm) {
    int32_t ch = r->channels;
    while (n > 0) {
        int64_t run = r->total - from;
        if (run > n) run = n;
        memcpy(pcm, r->pcm + (size_t)from * (size_t)ch, (size_t)run * (size_t)ch * sizeof(int16_t));
        pcm += run * ch;
        n -= (int32_t)run;
        from += run;
        if (from == r->total) from = 0;
    }
    return from;
}

int32_t cp_jb_replay_decode(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                            int32_t want, int16_t *pcm, int32_t cap) {
    cp_jb_replay *r = ctx;
    if (!r || !pcm || cap <= 0) return -1;
    if (!payload) { /* concealment: the source audio goes on (silence after DTX) */
        if (want <= 0 || want > cap) return -1;
        if (r->cng) {
            memset(pcm, 0, (size_t)want * (size_t)r->channels * sizeof(int16_t));
            return want;
        }
        r->cursor = copy_from(r, r->cursor, want, pcm);
        return want;
    }
    if (len <= 0) return -1;
    int64_t index = cp_jb_replay_index(payload, len);
    if (index < 0) { /* no index (DTX): silence */
        int32_t n = want;
        if (!fec) {
            n = cp_jb_opus_packet_samples(payload, len, r->sample_rate);
            if (n <= 0) n = r->frame_samples;
        }
        if (n <= 0 || n > cap) return -1;
        memset(pcm, 0, (size_t)n * (size_t)r->channels * sizeof(int16_t));
        if (!fec) r->cng = 1;
        return n;
    }
    int64_t start = (index % r->frames) * r->frame_samples;
    if (fec) { /* the audio just before this packet's frame */
        if (want <= 0 || want > cap) return -1;
        int64_t from = (start - want) % r->total;
        if (from < 0) from += r->total;
        r->cursor = copy_from(r, from, want, pcm);
        r->cng = 0;
        return want;
    }
    if (r->frame_samples > cap) return -1;
    r->cursor = copy_from(r, start, r->frame_samples, pcm);
    r->cng = 0;
    return r->frame_samples;
}
