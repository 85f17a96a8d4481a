/* Replay "decoding" for the audio jitter buffer: packets carry a frame index, decoding returns the
 * original audio of that frame (the source PCM the packets were encoded from) instead of running
 * the codec -- what WebRTC's NetEq simulator does with a replacement audio file
 * (FakeDecodeFromFile), so that a simulation keeps real packet sizes and timing and realistic
 * audio for the buffer's time stretching, without the cost of decoding.
 *
 * The payload of a replay packet is the real Opus packet with bytes 1..4 overwritten by the frame
 * index (little-endian uint32, cp_jb_replay_stamp); byte 0, the Opus TOC, stays, so the buffer
 * reads the right duration, and the length stays the real one.  Packets shorter than 5 bytes
 * (Opus DTX: 1..2 bytes) cannot carry an index and decode to silence.
 *
 * cp_jb_replay_decode is a cp_jb_decode_fn (callpipe/cp_jitter.h) whose context is a
 * cp_jb_replay.  Functions return 0 (CP_JB_OK) or a non-negative result on success, a negative
 * value on bad arguments; nothing crashes on garbage.  Not thread-safe: one context per stream.
 */
#ifndef CALLPIPE_CP_JITTER_REPLAY_H
#define CALLPIPE_CP_JITTER_REPLAY_H

#include <stdint.h>

typedef struct cp_jb_replay cp_jb_replay;

/* Shortest payload that carries a frame index (the TOC byte + 4 index bytes). */
enum cp_jb_replay_limits {
    CP_JB_REPLAY_MIN_LEN = 5
};

/* A replay decoder over a copy of `samples` samples per channel of interleaved int16 PCM (the
 * source signal), `channels` 1 or 2, at sample_rate Hz (8000..48000), cut into frames of
 * frame_samples samples per channel (960 for 20 ms at 48 kHz; 1..120 ms).  Only whole frames
 * are kept (at least one).  Returns 0, -1 (CP_JB_EINVAL: an argument out of range) or -2
 * (CP_JB_ENOMEM). */
int cp_jb_replay_new(cp_jb_replay **out, const int16_t *pcm, int64_t samples, int32_t channels,
                     int32_t sample_rate, int32_t frame_samples);
void cp_jb_replay_free(cp_jb_replay *r);

/* Frames of source audio held (frame indices are taken modulo this). */
int64_t cp_jb_replay_frames(const cp_jb_replay *r);

/* Write `index` into bytes 1..4 of payload (little-endian); the payload must hold at least
 * CP_JB_REPLAY_MIN_LEN bytes.  Returns 0 or -1. */
int cp_jb_replay_stamp(unsigned char *payload, int32_t len, uint32_t index);

/* The frame index stamped in a payload, or -1 when it is shorter than CP_JB_REPLAY_MIN_LEN. */
int64_t cp_jb_replay_index(const unsigned char *payload, int32_t len);

/* A cp_jb_decode_fn (ctx: a cp_jb_replay).
 * - decode (payload, fec == 0): the frame_samples samples of source frame index % frames;
 * - fec != 0: `want` samples of the source audio just before that frame (want == frame_samples:
 *   exactly the previous frame, the one the in-band FEC of this packet rebuilds);
 * - payload NULL (concealment): `want` samples of the source audio continuing after the last
 *   audio returned (see cp_jitter_replay.c for why);
 * - a payload shorter than CP_JB_REPLAY_MIN_LEN (DTX): silence, the packet's Opus TOC duration
 *   (frame_samples when the TOC is unreadable) when decoding, `want` samples for FEC; after a
 *   decoded DTX packet concealment gives silence (comfort noise) until a packet with an index.
 * Returns the samples per channel written, or -1 (bad arguments, or more than cap samples). */
int32_t cp_jb_replay_decode(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                            int32_t want, int16_t *pcm, int32_t cap);

#endif /* CALLPIPE_CP_JITTER_REPLAY_H */
