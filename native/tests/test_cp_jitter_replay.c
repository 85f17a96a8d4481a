/* cp_jitter_replay under the sanitizers: the frame index stamp, decoding copies the right source
 * frame, FEC gives the frame before, concealment continues the source, DTX and short payloads
 * give silence, bad arguments fail cleanly; through the buffer, a stream with a lost packet
 * plays back the source exactly (FEC), and random calls neither crash nor leak. */
#include "callpipe/cp_jitter.h"
#include "callpipe/cp_jitter_replay.h"
#include "check.h"
#include <string.h>

enum { FS = 48000, F = 960, TICK = 480, FRAMES = 50 };

static int16_t src[FRAMES * F * 2];

/* A signal with no repeats: sample i of channel c. */
static int16_t sig(int64_t i, int c) {
    uint32_t x = (uint32_t)i * 2654435761u + (uint32_t)c * 40503u;
    x ^= x >> 13;
    return (int16_t)(x & 0x7FFF) - 16384;
}

static void fill(int channels) {
    for (int64_t i = 0; i < (int64_t)FRAMES * F; i++)
        for (int c = 0; c < channels; c++) src[i * channels + c] = sig(i, c);
}

/* 1 when pcm (n samples per channel) equals the source from position `from` (wrapping). */
static int same(const int16_t *pcm, int32_t n, int64_t from, int channels) {
    for (int32_t i = 0; i < n; i++) {
        int64_t j = (from + i) % ((int64_t)FRAMES * F);
        for (int c = 0; c < channels; c++)
            if (pcm[i * channels + c] != src[j * channels + c]) return 0;
    }
    return 1;
}

static int all_zero(const int16_t *pcm, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (pcm[i]) return 0;
    return 1;
}

static void packet(unsigned char *p, int32_t len, uint32_t index) {
    memset(p, 0xA5, (size_t)len);
    p[0] = (unsigned char)(9 << 3); /* SILK WB 20 ms, code 0 */
    CHECK(cp_jb_replay_stamp(p, len, index) == CP_JB_OK, "stamp %u", index);
}

static void test_new_args(void) {
    fill(1);
    cp_jb_replay *r = (cp_jb_replay *)1;
    CHECK(cp_jb_replay_new(NULL, src, F, 1, FS, F) == CP_JB_EINVAL, "NULL out");
    CHECK(cp_jb_replay_new(&r, NULL, F, 1, FS, F) == CP_JB_EINVAL && r == NULL, "NULL pcm");
    CHECK(cp_jb_replay_new(&r, src, F - 1, 1, FS, F) == CP_JB_EINVAL, "less than a frame");
    CHECK(cp_jb_replay_new(&r, src, F, 0, FS, F) == CP_JB_EINVAL, "0 channels");
    CHECK(cp_jb_replay_new(&r, src, F, 3, FS, F) == CP_JB_EINVAL, "3 channels");
    CHECK(cp_jb_replay_new(&r, src, F, 1, 44100, F) == CP_JB_EINVAL, "44.1 kHz");
    CHECK(cp_jb_replay_new(&r, src, F, 1, 96000, F) == CP_JB_EINVAL, "96 kHz");
    CHECK(cp_jb_replay_new(&r, src, F, 1, FS, 0) == CP_JB_EINVAL, "0-sample frames");
    CHECK(cp_jb_replay_new(&r, src, 10 * F, 1, FS, 121 * 48) == CP_JB_EINVAL, "121 ms frames");
    CHECK(cp_jb_replay_new(&r, src, 3 * F + 5, 1, FS, F) == CP_JB_OK && r, "3 frames + 5");
    CHECK(cp_jb_replay_frames(r) == 3, "whole frames only: %lld", (long long)cp_jb_replay_frames(r));
    cp_jb_replay_free(r);
    cp_jb_replay_free(NULL);
    CHECK(cp_jb_replay_frames(NULL) < 0, "frames of NULL");
}

static void test_stamp(void) {
    unsigned char p[8] = {9 << 3, 0, 0, 0, 0, 7, 7, 7};
    CHECK(cp_jb_replay_stamp(p, 8, 0x12345678u) == CP_JB_OK, "stamp");
    CHECK(p[0] == (9 << 3) && p[1] == 0x78 && p[2] == 0x56 && p[3] == 0x34 && p[4] == 0x12 &&
              p[5] == 7,
          "little-endian in bytes 1..4, TOC and the rest kept");
    CHECK(cp_jb_replay_index(p, 8) == 0x12345678, "index read back");
    CHECK(cp_jb_opus_packet_samples(p, 8, FS) == F, "TOC still says 20 ms");
    CHECK(cp_jb_replay_index(p, 4) == -1 && cp_jb_replay_index(NULL, 8) == -1, "too short / NULL");
    CHECK(cp_jb_replay_stamp(p, 4, 1) == CP_JB_EINVAL && cp_jb_replay_stamp(NULL, 9, 1) < 0,
          "stamp too short / NULL");
    /* code 3: byte 1 is the frame count, kept; the index follows it */
    unsigned char q[8] = {(9 << 3) | 3, 2, 0, 0, 0, 0, 0, 0};
    CHECK(cp_jb_replay_stamp(q, 5, 1) == CP_JB_EINVAL, "code 3 needs 6 bytes");
    CHECK(cp_jb_replay_stamp(q, 8, 0xFFFFFFFFu) == CP_JB_OK && q[1] == 2, "code 3 stamp");
    CHECK(cp_jb_opus_packet_samples(q, 8, FS) == 2 * F, "code 3 duration kept");
    CHECK(cp_jb_replay_index(q, 8) == 0xFFFFFFFFu, "code 3 index");
}

static void test_decode(int channels) {
    fill(channels);
    cp_jb_replay *r = NULL;
    CHECK(cp_jb_replay_new(&r, src, (int64_t)FRAMES * F, channels, FS, F) == CP_JB_OK, "new");
    int16_t pcm[3 * F * 2];
    unsigned char p[80];

    packet(p, 80, 7);
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, 3 * F) == F, "decode frame 7");
    CHECK(same(pcm, F, 7 * F, channels), "frame 7 is the source's frame 7 (%d ch)", channels);
    /* concealment goes on after frame 7: frame 8, then 2.5 ms more */
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, F, pcm, 3 * F) == F, "conceal 20 ms");
    CHECK(same(pcm, F, 8 * F, channels), "concealment continues with frame 8");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, 120, pcm, 3 * F) == 120, "conceal 2.5 ms");
    CHECK(same(pcm, 120, 9 * F, channels), "then frame 9");

    /* FEC of packet 11: frame 10; then concealment continues from 11 */
    packet(p, 80, 11);
    CHECK(cp_jb_replay_decode(r, p, 80, 1, F, pcm, F) == F, "fec");
    CHECK(same(pcm, F, 10 * F, channels), "FEC gives the frame before");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, 240, pcm, 3 * F) == 240, "conceal after FEC");
    CHECK(same(pcm, 240, 11 * F, channels), "concealment after FEC starts at the packet's frame");
    CHECK(cp_jb_replay_decode(r, p, 80, 1, 2 * F, pcm, 3 * F) == 2 * F, "fec of 40 ms");
    CHECK(same(pcm, 2 * F, 9 * F, channels), "40 ms of FEC end where the frame begins");

    /* indices wrap around the signal; FEC of frame 0 is the last frame */
    packet(p, 80, FRAMES + 3);
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, F) == F && same(pcm, F, 3 * F, channels),
          "index modulo the signal");
    packet(p, 80, 0xFFFFFFFFu);
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, F) == F &&
              same(pcm, F, (int64_t)(0xFFFFFFFFu % FRAMES) * F, channels),
          "largest index");
    packet(p, 80, 0);
    CHECK(cp_jb_replay_decode(r, p, 80, 1, F, pcm, F) == F &&
              same(pcm, F, (int64_t)(FRAMES - 1) * F, channels),
          "FEC of frame 0 wraps");
    packet(p, 80, FRAMES - 1);
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, F) == F, "last frame");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, 2 * F, pcm, 3 * F) == 2 * F &&
              same(pcm, 2 * F, 0, channels),
          "concealment wraps to the start");

    /* DTX and short payloads: silence of the TOC's duration (decode) or of `want` (FEC) */
    unsigned char dtx[2] = {(9 << 3), 0};
    for (size_t i = 0; i < sizeof pcm / sizeof pcm[0]; i++) pcm[i] = 1;
    CHECK(cp_jb_replay_decode(r, dtx, 1, 0, 0, pcm, 3 * F) == F && all_zero(pcm, F * channels),
          "1-byte DTX: 20 ms of silence");
    unsigned char dtx60[2] = {(11 << 3), 0}; /* SILK WB 60 ms */
    CHECK(cp_jb_replay_decode(r, dtx60, 2, 0, 0, pcm, 3 * F) == 3 * F, "DTX of 60 ms");
    unsigned char bad[1] = {(9 << 3) | 3}; /* code 3 without its count byte */
    CHECK(cp_jb_replay_decode(r, bad, 1, 0, 0, pcm, 3 * F) == F, "unreadable TOC: one frame");
    CHECK(cp_jb_replay_decode(r, dtx, 2, 1, 480, pcm, 3 * F) == 480 && all_zero(pcm, 480 * channels),
          "short FEC payload: `want` samples of silence");
    /* after DTX, concealment is comfort noise (silence) until a packet with an index */
    for (size_t i = 0; i < sizeof pcm / sizeof pcm[0]; i++) pcm[i] = 1;
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, F, pcm, 3 * F) == F && all_zero(pcm, F * channels),
          "comfort noise after DTX");
    packet(p, 80, 20);
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, F) == F && same(pcm, F, 20 * F, channels),
          "speech again");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, F, pcm, 3 * F) == F && same(pcm, F, 21 * F, channels),
          "concealment continues the source again");

    /* bad arguments */
    packet(p, 80, 1);
    CHECK(cp_jb_replay_decode(NULL, p, 80, 0, 0, pcm, F) == -1, "NULL ctx");
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, NULL, F) == -1, "NULL pcm");
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, F - 1) == -1, "cap below a frame");
    CHECK(cp_jb_replay_decode(r, p, 80, 0, 0, pcm, 0) == -1, "cap 0");
    CHECK(cp_jb_replay_decode(r, p, 0, 0, 0, pcm, F) == -1, "len 0");
    CHECK(cp_jb_replay_decode(r, p, -5, 0, 0, pcm, F) == -1, "len < 0");
    CHECK(cp_jb_replay_decode(r, p, 80, 1, 0, pcm, F) == -1, "FEC want 0");
    CHECK(cp_jb_replay_decode(r, p, 80, 1, F + 1, pcm, F) == -1, "FEC want > cap");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, 0, pcm, F) == -1, "conceal 0");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, -1, pcm, F) == -1, "conceal < 0");
    CHECK(cp_jb_replay_decode(r, NULL, 0, 0, F + 1, pcm, F) == -1, "conceal > cap");
    CHECK(cp_jb_replay_decode(r, dtx60, 2, 0, 0, pcm, F) == -1, "DTX longer than cap");
    cp_jb_replay_free(r);
}

/* Through the buffer: 2 s of packets every 20 ms with a fixed delay, packet 30 lost, no time
 * stretching, pulled while packets flow.  FEC rebuilds frame 30 from packet 31, so the output is the source exactly, after
 * the buffer's constant delay. */
static void test_through_buffer(void) {
    fill(1);
    cp_jb_replay *r = NULL;
    CHECK(cp_jb_replay_new(&r, src, (int64_t)FRAMES * F, 1, FS, F) == CP_JB_OK, "new");
    cp_jb_config c;
    cp_jb_config_default(&c);
    c.allow_time_stretching = 0;
    cp_jb *jb = NULL;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_OK, "cp_jb_new");
    static int16_t out[300 * TICK];
    int ops[9] = {0};
    unsigned char p[60];
    int sent = 0, k = 0;
    for (double t = 0; k < 190; t += 10, k++) { /* stops before the stream ends */
        while (sent < 100 && sent * 20.0 + 30.0 <= t) {
            if (sent != 30) {
                packet(p, 60, (uint32_t)sent);
                CHECK(cp_jb_insert(jb, (uint16_t)sent, (uint32_t)(sent * F), p, 60, 0, 0,
                                   sent * 20.0 + 30.0, sent) >= 0, "insert %d", sent);
            }
            sent++;
        }
        int op = cp_jb_pull(jb, t, cp_jb_replay_decode, r, out + k * TICK, TICK);
        CHECK(op >= 0 && op <= 8, "pull %d", op);
        if (op >= 0 && op <= 8) ops[op]++;
    }
    CHECK(ops[CP_JB_OP_FEC] == 1, "one FEC (%d)", ops[CP_JB_OP_FEC]);
    CHECK(ops[CP_JB_OP_EXPAND] == 0, "no concealment (%d)", ops[CP_JB_OP_EXPAND]);
    int start = -1; /* where the source's first sample landed */
    for (int i = 0; i < 300 * TICK && start < 0; i++)
        if (out[i] == src[0] && out[i + 1] == src[1] && out[i + 2] == src[2]) start = i;
    CHECK(start >= 0, "the source's start is in the output");
    if (start >= 0) {
        int n = 190 * TICK - start;
        n = n / F * F;
        CHECK(n >= 60 * F && same(out + start, n, 0, 1),
              "output == source over %d samples from %d", n, start);
    }
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(st.fec_recovered_frames == 1 && st.decode_errors == 0, "stats: fec %lld errors %lld",
          (long long)st.fec_recovered_frames, (long long)st.decode_errors);
    cp_jb_free(jb);
    cp_jb_replay_free(r);
}

/* Random payloads, lengths, flags and sizes: results in range, no crash, no leak. */
static void test_random(void) {
    fill(2);
    cp_jb_replay *r = NULL;
    CHECK(cp_jb_replay_new(&r, src, 7 * F + 3, 2, FS, F) == CP_JB_OK, "new");
    unsigned seed = 12345;
    static int16_t pcm[6000 * 2];
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        unsigned char *p = random_bytes(40, &seed);
        seed = seed * 1103515245u + 12345u;
        int32_t len = (int32_t)(seed >> 16) % 42 - 1;
        seed = seed * 1103515245u + 12345u;
        int32_t want = (int32_t)(seed >> 16) % 7000 - 100;
        seed = seed * 1103515245u + 12345u;
        int32_t cap = (int32_t)(seed >> 16) % 6001;
        int fec = (seed >> 8) & 1, null = ((seed >> 9) & 7) == 0;
        int32_t n = cp_jb_replay_decode(r, null ? NULL : p, len > 40 ? 40 : len, fec, want, pcm,
                                        cap);
        if (n != -1 && (n < 1 || n > cap)) bad++;
        free(p);
    }
    CHECK(bad == 0, "%d results out of range", bad);
    cp_jb_replay_free(r);
}

int main(void) {
    test_new_args();
    test_stamp();
    test_decode(1);
    test_decode(2);
    test_through_buffer();
    test_random();
    return check_done("test_cp_jitter_replay");
}
