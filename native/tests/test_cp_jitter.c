/* cp_jitter under the sanitizers: timelines with injected time (steady, loss, duplicates, late,
 * reorder, overflow), the delay estimate, time stretching of a tone, the Opus TOC reader, decoder
 * callback failures, the built-in libopus decoder against plain libopus calls, and random calls
 * (errors allowed, crashes and leaks not). */
#include "callpipe/cp_jitter.h"
#include "check.h"
#include <math.h>
#include <opus.h>
#include <string.h>

enum { FS = 48000, PKT = 960, TICK = 480 };

static cp_jb *make(void (*tweak)(cp_jb_config *)) {
    cp_jb_config c;
    cp_jb_config_default(&c);
    if (tweak) tweak(&c);
    cp_jb *jb = NULL;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_OK && jb, "cp_jb_new");
    return jb;
}

/* A 20 ms-packet stream sent every 20 ms; arrival = send + delay(i) (< 0 = lost).  Pulls every
 * 10 ms until `ms`; returns the operation counts. */
typedef double (*delay_fn)(int i);
static int inserted[100000];
static void run(cp_jb *jb, delay_fn delay, int packets, double ms, int ops[9]) {
    int16_t out[TICK];
    unsigned char payload[60];
    memset(payload, 0, sizeof payload);
    payload[0] = (unsigned char)(9 << 3); /* SILK WB 20 ms (config 9), code 0 */
    int next = 0;
    for (double t = 0; t <= ms; t += 10) {
        for (;;) { /* insert everything that arrived by t, in arrival order */
            int best = -1;
            double best_at = 1e18;
            for (int i = next; i < packets && i < next + 64; i++) {
                double d = delay(i);
                if (d < 0 || inserted[i]) continue;
                double at = i * 20.0 + d;
                if (at <= t && at < best_at) {
                    best_at = at;
                    best = i;
                }
            }
            if (best < 0) break;
            int rc = cp_jb_insert(jb, (uint16_t)(1000 + best), (uint32_t)(best * PKT), payload,
                                  sizeof payload, 0, 0, best_at, best);
            CHECK(rc >= 0, "insert %d: %d", best, rc);
            inserted[best] = 1;
            while (next < packets && (inserted[next] || delay(next) < 0)) next++;
        }
        if (next >= packets && cp_jb_idle(jb)) break; /* everything played: stop */
        int op = cp_jb_pull(jb, t, NULL, NULL, out, TICK);
        CHECK(op >= 0 && op <= CP_JB_OP_CNG, "pull at %g: %d", t, op);
        if (op >= 0 && op <= 8) ops[op]++;
    }
}

static double steady(int i) { (void)i; return 50.0; }
static double lossy(int i) { return i % 10 == 5 ? -1.0 : 50.0; }
static double one_late(int i) { return i == 100 ? 400.0 : 30.0; }
static double reorder(int i) { return i % 7 == 3 ? 45.0 : 30.0; }
static double spiky(int i) { return (i % 250 >= 100 && i % 250 < 110) ? 30.0 + (110 - i % 250) * 20.0 : 30.0; }

static void reset_inserted(void) { memset(inserted, 0, sizeof inserted); }

static void test_steady(void) {
    reset_inserted();
    cp_jb *jb = make(NULL);
    int ops[9] = {0};
    run(jb, steady, 1000, 21000, ops);
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    cp_jb_state s;
    cp_jb_get_state(jb, &s);
    CHECK(st.packets_received == 1000 && st.packets_lost == 0, "received %lld lost %lld",
          (long long)st.packets_received, (long long)st.packets_lost);
    CHECK(st.packets_discarded == 0, "discarded %lld", (long long)st.packets_discarded);
    CHECK(st.concealed_samples == 0, "concealed %lld", (long long)st.concealed_samples);
    CHECK(st.packets_played == 1000, "played %lld", (long long)st.packets_played);
    CHECK(s.target_delay_ms == 20.0, "no jitter: target one bucket, got %g", s.target_delay_ms);
    CHECK(st.removed_samples_for_acceleration > 0 && ops[CP_JB_OP_ACCELERATE] > 0,
          "target dropped from 80 ms: accelerate (%lld removed)", (long long)st.removed_samples_for_acceleration);
    CHECK(st.jitter_buffer_emitted_count == 1000LL * PKT, "emitted %lld", (long long)st.jitter_buffer_emitted_count);
    double mean_wait = st.jitter_buffer_delay_s / st.jitter_buffer_emitted_count * 1000;
    CHECK(mean_wait > 0 && mean_wait < 80, "mean jitterBufferDelay %g ms", mean_wait);
    cp_jb_playout rec[1200];
    int32_t n = cp_jb_take_playouts(jb, rec, 1200);
    CHECK(n == 1000, "playouts %d", n);
    int ordered = 1;
    for (int i = 1; i < n; i++) ordered &= rec[i].id == rec[i - 1].id + 1 && rec[i].playout_ms > rec[i - 1].playout_ms;
    CHECK(ordered, "playouts in order");
    CHECK(rec[999].playout_ms - rec[999].arrival_ms < 40.0, "settled near the target: %g ms",
          rec[999].playout_ms - rec[999].arrival_ms);
    CHECK(cp_jb_take_playouts(jb, rec, 10) == 0, "drained");
    cp_jb_free(jb);
}

static void test_loss(void) {
    reset_inserted();
    cp_jb *jb = make(NULL);
    int ops[9] = {0};
    run(jb, lossy, 1000, 20000, ops);
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(st.packets_lost == 100 - 1 || st.packets_lost == 100, "lost %lld", (long long)st.packets_lost);
    CHECK(st.concealment_events >= 99, "events %lld", (long long)st.concealment_events);
    CHECK(st.concealed_samples >= 99 * PKT, "concealed %lld", (long long)st.concealed_samples);
    /* the stand-in decoder conceals with silence */
    CHECK(st.silent_concealed_samples == st.concealed_samples, "silent %lld", (long long)st.silent_concealed_samples);
    CHECK(st.fec_recovered_frames == 0, "no decoder, no FEC: %lld", (long long)st.fec_recovered_frames);
    cp_jb_free(jb);
}

static void no_fec(cp_jb_config *c) { c->use_fec = 0; }
static void test_loss_no_fec(void) {
    reset_inserted();
    cp_jb *jb = make(no_fec);
    int ops[9] = {0};
    run(jb, lossy, 500, 10000, ops);
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(ops[CP_JB_OP_EXPAND] >= 49 && ops[CP_JB_OP_FEC] == 0, "expand %d fec %d", ops[CP_JB_OP_EXPAND], ops[CP_JB_OP_FEC]);
    /* at most the lost audio; less when the buffer sits above target + 50 ms and skips ahead */
    CHECK(st.concealed_samples <= 50 * PKT && st.concealed_samples >= 40 * PKT, "concealed %lld",
          (long long)st.concealed_samples);
    cp_jb_free(jb);
}

static void test_late_and_reorder(void) {
    reset_inserted();
    cp_jb *jb = make(NULL);
    int ops[9] = {0};
    run(jb, one_late, 300, 7000, ops);
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(st.packets_discarded == 1, "the late packet is discarded: %lld", (long long)st.packets_discarded);
    CHECK(st.packets_lost == 0, "late is not lost: %lld", (long long)st.packets_lost);
    cp_jb_free(jb);

    reset_inserted();
    jb = make(NULL);
    memset(ops, 0, sizeof ops);
    run(jb, reorder, 1000, 21000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.packets_discarded == 0 && st.concealed_samples == 0,
          "15 ms reordering absorbed: discarded %lld concealed %lld", (long long)st.packets_discarded,
          (long long)st.concealed_samples);
    CHECK(st.packets_played == 1000, "played %lld", (long long)st.packets_played);
    cp_jb_free(jb);
}

/* Late packets: a 300 ms spike whose packets arrive together (the late ones discarded, the
 * timeline kept; NetEq's mode plays them all), and a 150 ms route change (the timeline moves
 * after late_resync_packets late arrivals in a row). */
static double burst(int i) { return (i >= 200 && i < 215) ? 200 * 20.0 + 340 - i * 20.0 : 40.0; }
static double shift(int i) { return i >= 200 ? 190.0 : 40.0; }
static void neteq_mode(cp_jb_config *c) { c->discard_late_packets = 0; }
static void no_merge(cp_jb_config *c) { c->late_merge_ms = 0.0; }
static void never_resync(cp_jb_config *c) {
    c->late_resync_packets = 10000;
    c->late_merge_ms = 0.0;
}
static void test_late_policies(void) {
    int ops[9] = {0};
    cp_jb_stats st;
    reset_inserted();
    cp_jb *jb = make(NULL);
    run(jb, burst, 400, 12000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.packets_late >= 12 && st.packets_late <= 15 && st.packets_discarded == st.packets_late &&
              st.late_resyncs == 0 && st.packets_played + st.packets_late == 400,
          "spike: late %lld resyncs %lld played %lld", (long long)st.packets_late,
          (long long)st.late_resyncs, (long long)st.packets_played);
    cp_jb_free(jb);

    reset_inserted();
    jb = make(neteq_mode);
    run(jb, burst, 400, 12000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.packets_discarded == 0 && st.packets_played == 400, "NetEq mode: discarded %lld",
          (long long)st.packets_discarded);
    cp_jb_free(jb);

    /* default: the first packet on the new route is the one being concealed for, and it comes
     * within late_merge_ms: merged, nothing late */
    reset_inserted();
    jb = make(NULL);
    run(jb, shift, 500, 12000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.late_resyncs == 0 && st.packets_late == 0 && st.packets_played == 500,
          "route change merged: resyncs %lld late %lld played %lld", (long long)st.late_resyncs,
          (long long)st.packets_late, (long long)st.packets_played);
    cp_jb_free(jb);

    reset_inserted();
    jb = make(no_merge);
    run(jb, shift, 500, 12000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.late_resyncs == 1 && st.packets_late == 2 && st.packets_played == 498,
          "route change: resyncs %lld late %lld", (long long)st.late_resyncs, (long long)st.packets_late);
    cp_jb_free(jb);

    reset_inserted();
    jb = make(never_resync);
    run(jb, shift, 500, 12000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.late_resyncs == 0 && st.packets_late >= 250, "no resync: late %lld",
          (long long)st.packets_late);
    cp_jb_free(jb);
}

static void test_spikes_raise_target(void) {
    reset_inserted();
    cp_jb *jb = make(NULL);
    int ops[9] = {0};
    run(jb, spiky, 2000, 41000, ops);
    cp_jb_state s;
    cp_jb_get_state(jb, &s);
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(s.target_delay_ms >= 100, "200 ms spikes every 5 s: target %g", s.target_delay_ms);
    CHECK(st.packets_received == 2000, "received");
    cp_jb_free(jb);
}

/* A route change: 40 ms, then 190 ms for good from packet 200 (4 s).  The step is a level shift,
 * not jitter: with level_shift_ms (default 20) the histogram updates of the window it was seen
 * in are measured again against the new floor once the old floor leaves the window, and the
 * target comes back down; with 0 (NetEq) the step stays in the histogram.  200 ms spikes that
 * drain within the window (spiky) never move the floor: no level shift. */
static void no_level_shift(cp_jb_config *c) { c->level_shift_ms = 0.0; }
static double jitter_silence_shift(int i) {
    if (i < 200) return i >= 100 && i % 4 == 0 ? 100.0 : 40.0; /* jitter in the last 2 s */
    return i < 450 ? -1.0 : 150.0;
}
static void test_level_shift(void) {
    int ops[9] = {0};
    cp_jb_state s;
    cp_jb_stats st;
    double target[2];
    int64_t shifts[2];
    for (int k = 0; k < 2; k++) {
        reset_inserted();
        cp_jb *jb = make(k ? no_level_shift : NULL);
        run(jb, shift, 550, 11000, ops); /* the state 7 s after the route change */
        cp_jb_get_state(jb, &s);
        cp_jb_get_stats(jb, &st);
        target[k] = s.target_delay_ms;
        shifts[k] = st.level_shifts;
        CHECK(st.packets_late == 0 && st.packets_played >= 535, "route change %d: played %lld, late %lld",
              k, (long long)st.packets_played, (long long)st.packets_late);
        cp_jb_free(jb);
    }
    fprintf(stderr, "level shift: target %g ms (shifts %lld), NetEq %g ms (shifts %lld)\n", target[0],
            (long long)shifts[0], target[1], (long long)shifts[1]);
    CHECK(shifts[0] == 1 && shifts[1] == 0, "level shifts counted: %lld / %lld", (long long)shifts[0],
          (long long)shifts[1]);
    CHECK(target[0] <= 40.0, "after the route change the target is back down: %g ms", target[0]);
    CHECK(target[1] >= 140.0, "NetEq keeps the 150 ms step as jitter: %g ms", target[1]);

    reset_inserted();
    cp_jb *jb = make(NULL);
    run(jb, spiky, 2000, 41000, ops);
    cp_jb_get_stats(jb, &st);
    CHECK(st.level_shifts == 0, "spikes are not level shifts: %lld", (long long)st.level_shifts);
    cp_jb_free(jb);

    /* 40 ms, jitter (40/100 ms) for 2 s, then 5 s without packets, then a slower path: the
     * floor rises at once, but every delay measured before the silence was measured on the old
     * path against its own floor: nothing is re-measured, so the target right after the first
     * packet on the new path is NetEq's */
    double after[2];
    for (int k = 0; k < 2; k++) {
        reset_inserted();
        jb = make(k ? no_level_shift : NULL);
        run(jb, jitter_silence_shift, 451, 450 * 20.0 + 150, ops);
        cp_jb_get_state(jb, &s);
        cp_jb_get_stats(jb, &st);
        after[k] = s.target_delay_ms;
        shifts[k] = st.level_shifts;
        if (k == 0) cp_jb_free(jb);
    }
    CHECK(shifts[0] == 1 && shifts[1] == 0, "shift after the silence: %lld / %lld",
          (long long)shifts[0], (long long)shifts[1]);
    CHECK(after[0] == after[1] && after[1] >= 60.0, "after the silence: target %g ms, NetEq %g ms",
          after[0], after[1]);
    cp_jb_free(jb);
}

static void test_duplicates_and_overflow(void) {
    cp_jb *jb = make(NULL);
    unsigned char p[40] = {9 << 3};
    CHECK(cp_jb_insert(jb, 5, 960 * 5, p, 40, 0, 0, 0, 1) == CP_JB_INSERTED, "first");
    CHECK(cp_jb_insert(jb, 5, 960 * 5, p, 40, 0, 0, 1, 2) == CP_JB_DUPLICATE, "same seq");
    CHECK(cp_jb_insert(jb, 6, 960 * 5, p, 40, 0, 0, 1, 3) == CP_JB_DUPLICATE, "same timestamp");
    int flushed = 0;
    for (int i = 7; i < 7 + 250; i++) {
        int rc = cp_jb_insert(jb, (uint16_t)i, (uint32_t)(960 * i), p, 40, 0, 0, 2, i);
        flushed += rc == CP_JB_FLUSHED;
    }
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(flushed == 1 && st.packet_buffer_flushes == 1, "one flush: %d", flushed);
    CHECK(st.packets_discarded == 200 && st.packets_duplicated == 2, "discarded %lld dup %lld",
          (long long)st.packets_discarded, (long long)st.packets_duplicated);
    /* and it recovers: the remaining packets play */
    int16_t out[TICK];
    int normal = 0;
    for (int k = 0; k < 200; k++) normal += cp_jb_pull(jb, 10.0 * k, NULL, NULL, out, TICK) == CP_JB_OP_NORMAL;
    CHECK(normal > 50, "plays after the flush: %d", normal);
    /* wraparound of sequence numbers and timestamps */
    cp_jb *w = make(NULL);
    for (int i = 0; i < 200; i++) {
        uint16_t seq = (uint16_t)(65500 + i);
        uint32_t ts = (uint32_t)(4294960000u + 960u * (uint32_t)i);
        CHECK(cp_jb_insert(w, seq, ts, p, 40, 0, 0, i * 20.0 + 30, i) == CP_JB_INSERTED, "wrap %d", i);
        cp_jb_pull(w, i * 20.0 + 30, NULL, NULL, out, TICK);
        cp_jb_pull(w, i * 20.0 + 40, NULL, NULL, out, TICK);
    }
    cp_jb_get_stats(w, &st);
    CHECK(st.packets_lost == 0 && st.packets_discarded == 0, "wrap: lost %lld discarded %lld",
          (long long)st.packets_lost, (long long)st.packets_discarded);
    cp_jb_free(w);
    cp_jb_free(jb);
}

static double dominant_hz(const int16_t *x, int n) {
    /* brute-force DFT peak between 100 and 1000 Hz in 1 Hz steps */
    double best = 0, best_f = 0;
    for (int f = 100; f <= 1000; f++) {
        double re = 0, im = 0;
        for (int i = 0; i < n; i++) {
            re += x[i] * cos(2 * 3.141592653589793 * f * i / FS);
            im += x[i] * sin(2 * 3.141592653589793 * f * i / FS);
        }
        double p = re * re + im * im;
        if (p > best) best = p, best_f = f;
    }
    return best_f;
}

static void test_time_stretch(void) {
    enum { N = 4800 };
    static int16_t in[N], out[N + 1000];
    for (int i = 0; i < N; i++) in[i] = (int16_t)(10000 * sin(2 * 3.141592653589793 * 300 * i / FS));
    int32_t changed = 0;
    double corr = 0;
    int32_t n = cp_jb_time_stretch(in, N, 1, FS, 0, 0.9, 0, out, N + 1000, &changed, &corr);
    CHECK(changed >= 120 && changed <= 720 && n == N - changed, "accelerate: %d removed, %d out", changed, n);
    CHECK(corr > 0.99, "tone correlation %g", corr);
    CHECK(fabs(dominant_hz(out, n) - 300) <= 1, "pitch kept: %g", dominant_hz(out, n));
    n = cp_jb_time_stretch(in, N, 1, FS, 1, 0.9, 0, out, N + 1000, &changed, &corr);
    CHECK(changed >= 120 && n == N + changed, "expand: %d inserted", changed);
    CHECK(fabs(dominant_hz(out, n) - 300) <= 1, "pitch kept: %g", dominant_hz(out, n));
    /* loud noise has no pitch: nothing is done */
    unsigned seed = 3;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = (int16_t)((int)(seed >> 16 & 0x7fff) - 16384);
    }
    n = cp_jb_time_stretch(in, N, 1, FS, 0, 0.9, 300, out, N + 1000, &changed, &corr);
    CHECK(n == N && changed == 0 && memcmp(in, out, sizeof(int16_t) * N) == 0, "noise untouched");
    /* but quiet noise is stretched (low energy) */
    for (int i = 0; i < N; i++) in[i] /= 256;
    n = cp_jb_time_stretch(in, N, 1, FS, 0, 0.9, 300, out, N + 1000, &changed, &corr);
    CHECK(changed > 0 && n == N - changed, "quiet noise stretched");
    /* stereo at 16 kHz */
    static int16_t st[1600 * 2], so[2000 * 2];
    for (int i = 0; i < 1600; i++) st[2 * i] = st[2 * i + 1] = (int16_t)(9000 * sin(2 * 3.14159265 * 250 * i / 16000.0));
    n = cp_jb_time_stretch(st, 1600, 2, 16000, 0, 0.9, 0, so, 2000, &changed, &corr);
    CHECK(changed > 0 && n == 1600 - changed, "stereo 16 kHz accelerate");
    /* bad arguments */
    CHECK(cp_jb_time_stretch(in, 100, 1, FS, 0, 0.9, 0, out, N, &changed, &corr) == CP_JB_EINVAL, "too short");
    CHECK(cp_jb_time_stretch(in, N, 1, 44100, 0, 0.9, 0, out, N + 1000, &changed, &corr) == CP_JB_EINVAL, "rate");
    CHECK(cp_jb_time_stretch(in, N, 3, FS, 0, 0.9, 0, out, N + 1000, &changed, &corr) == CP_JB_EINVAL, "channels");
    CHECK(cp_jb_time_stretch(in, N, 1, FS, 0, 0.9, 0, out, N, &changed, &corr) == CP_JB_EINVAL, "out too small");
}

static void test_toc(void) {
    unsigned char p[3];
    p[0] = (unsigned char)(1 << 3); /* SILK NB 20 ms */
    CHECK(cp_jb_opus_packet_samples(p, 1, FS) == 960, "silk 20");
    p[0] = (unsigned char)((3 << 3) | 1); /* SILK 60 ms, 2 frames */
    CHECK(cp_jb_opus_packet_samples(p, 1, FS) == 5760, "silk 2x60");
    p[0] = (unsigned char)(16 << 3); /* CELT 2.5 ms */
    CHECK(cp_jb_opus_packet_samples(p, 1, 16000) == 40, "celt 2.5 at 16k");
    p[0] = (unsigned char)((31 << 3) | 3);
    p[1] = 6; /* 6 x 20 ms */
    CHECK(cp_jb_opus_packet_samples(p, 2, FS) == 5760, "code 3");
    p[1] = 7;
    CHECK(cp_jb_opus_packet_samples(p, 2, FS) == -1, "over 120 ms");
    CHECK(cp_jb_opus_packet_samples(p, 1, FS) == -1, "code 3 without count");
    CHECK(cp_jb_opus_packet_samples(p, 0, FS) == -1, "empty");
}

static int32_t failing(void *ctx, const unsigned char *payload, int32_t len, int32_t fec, int32_t want,
                       int16_t *pcm, int32_t cap) {
    (void)len; (void)fec;
    int *mode = ctx;
    if (payload && *mode == 0) return -1; /* every packet refused: concealed */
    if (*mode == 2) return -2;
    int32_t n = want > 0 ? want : (cap < 960 ? cap : 960);
    memset(pcm, 0, sizeof(int16_t) * (size_t)n);
    return n;
}

static void test_decoder_failures(void) {
    cp_jb *jb = make(NULL);
    unsigned char p[40] = {9 << 3};
    int16_t out[TICK];
    int mode = 0;
    for (int i = 0; i < 50; i++) {
        cp_jb_insert(jb, (uint16_t)i, (uint32_t)(960 * i), p, 40, 0, 0, i * 20.0, i);
        cp_jb_pull(jb, i * 20.0, failing, &mode, out, TICK);
        cp_jb_pull(jb, i * 20.0 + 10, failing, &mode, out, TICK);
    }
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(st.decode_errors > 40 && st.concealed_samples > 0, "decode errors %lld", (long long)st.decode_errors);
    mode = 2;
    cp_jb_insert(jb, 50, 960 * 50, p, 40, 0, 0, 1000.0, 50);
    int rc = 0;
    for (int k = 0; k < 4 && rc != CP_JB_EFATAL; k++) rc = cp_jb_pull(jb, 1000.0 + 10 * k, failing, &mode, out, TICK);
    CHECK(rc == CP_JB_EFATAL, "fatal callback stops the pull: %d", rc);
    mode = 1;
    CHECK(cp_jb_pull(jb, 1100.0, failing, &mode, out, TICK) >= 0, "usable afterwards");
    cp_jb_free(jb);
}

static void test_config_and_args(void) {
    cp_jb_config c;
    cp_jb_config_default(&c);
    CHECK(cp_jb_config_check(&c) == CP_JB_OK, "defaults valid");
    CHECK(c.quantile == 0.95 && c.forget_factor == 0.983 && c.start_delay_ms == 80 &&
          c.max_packets_in_buffer == 200 && c.history_ms == 2000, "NetEq defaults");
    cp_jb *jb = NULL;
    c.quantile = 1.5;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL && jb == NULL, "bad quantile");
    cp_jb_config_default(&c);
    c.sample_rate = 44100;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL, "bad rate");
    cp_jb_config_default(&c);
    c.tick_ms = 7;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL, "bad tick");
    cp_jb_config_default(&c);
    CHECK(c.discard_late_packets == 1 && c.late_resync_packets == 3 && c.late_merge_ms == 120.0,
          "late-packet defaults");
    c.late_resync_packets = 0;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL, "late_resync_packets 0");
    cp_jb_config_default(&c);
    c.late_merge_ms = -1.0;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL, "late_merge_ms < 0");
    cp_jb_config_default(&c);
    c.forget_factor = NAN;
    CHECK(cp_jb_new(&jb, &c) == CP_JB_EINVAL, "NaN");
    CHECK(cp_jb_new(&jb, NULL) == CP_JB_OK && jb, "NULL config = defaults");
    int16_t out[TICK];
    CHECK(cp_jb_pull(jb, 0, NULL, NULL, out, TICK - 1) == CP_JB_EINVAL, "wrong out size");
    CHECK(cp_jb_pull(jb, NAN, NULL, NULL, out, TICK) == CP_JB_EINVAL, "NaN time");
    CHECK(cp_jb_insert(jb, 0, 0, NULL, 5, 0, 0, 0, 0) == CP_JB_EINVAL, "NULL payload");
    CHECK(cp_jb_insert(jb, 0, 0, (unsigned char *)out, -1, 0, 0, 0, 0) == CP_JB_EINVAL, "negative length");
    CHECK(cp_jb_insert(jb, 0, 0, (unsigned char *)out, 4, 99999, 0, 0, 0) == CP_JB_EINVAL, "duration");
    CHECK(cp_jb_pull(jb, 0, NULL, NULL, out, TICK) == CP_JB_OP_IDLE, "idle before packets");
    cp_jb_free(jb);
    cp_jb_free(NULL);
}

static void test_random_calls(void) {
    unsigned seed = 99;
    cp_jb *jb = make(NULL);
    int16_t out[TICK];
    double t = 0;
    for (int i = 0; i < 20000; i++) {
        int32_t len = (int32_t)(1 + (seed % 300));
        unsigned char *g = random_bytes((size_t)len, &seed);
        uint16_t seq = (uint16_t)(seed >> 3);
        uint32_t ts = seed * 7u;
        if (seed % 3) {
            seq = (uint16_t)i;
            ts = (uint32_t)(i * 960);
        }
        cp_jb_insert(jb, seq, ts, g, len, (int32_t)(seed % 2 ? 0 : seed % 6000), (int32_t)(seed & 1), t, i);
        free(g);
        if (seed % 2) cp_jb_pull(jb, t, NULL, NULL, out, TICK);
        t += (seed % 40) - 5;
    }
    cp_jb_playout rec[64];
    while (cp_jb_take_playouts(jb, rec, 64) > 0) {
    }
    cp_jb_free(jb);
}

/* 100 real Opus packets (VoIP, 24 kbps, in-band FEC) of a harmonic voice-like signal. */
enum { NPKT = 100 };
static unsigned char opus_pk[NPKT][400];
static int32_t opus_len[NPKT];
static void encode_packets(void) {
    int err = 0;
    OpusEncoder *enc = opus_encoder_create(FS, 1, OPUS_APPLICATION_VOIP, &err);
    CHECK(enc && err == OPUS_OK, "encoder: %d", err);
    if (!enc) return;
    CHECK(opus_encoder_ctl(enc, OPUS_SET_BITRATE(24000)) == OPUS_OK, "bitrate");
    CHECK(opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1)) == OPUS_OK, "fec");
    CHECK(opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(20)) == OPUS_OK, "loss");
    int16_t pcm[PKT];
    double ph = 0;
    for (int i = 0; i < NPKT; i++) {
        for (int k = 0; k < PKT; k++) {
            double f0 = 140.0 + 40.0 * sin(2 * M_PI * (i * PKT + k) / (FS * 1.3));
            ph += 2 * M_PI * f0 / FS;
            double x = 0;
            for (int h = 1; h <= 8; h++) x += sin(h * ph) / h;
            pcm[k] = (int16_t)(5000.0 * x * (0.6 + 0.4 * sin(2 * M_PI * 4.0 * (i * PKT + k) / FS)));
        }
        opus_len[i] = opus_encode(enc, pcm, PKT, opus_pk[i], sizeof opus_pk[i]);
        CHECK(opus_len[i] > 2, "encode %d: %d", i, (int)opus_len[i]);
    }
    opus_encoder_destroy(enc);
}

/* cp_jb_opus_decode gives exactly what plain libopus calls give: decode, PLC and FEC. */
static void test_opus_decoder_matches_libopus(void) {
    cp_jb_opus *d = NULL;
    CHECK(cp_jb_opus_new(&d, FS, 1) == CP_JB_OK && d, "cp_jb_opus_new");
    int err = 0;
    OpusDecoder *ref = opus_decoder_create(FS, 1, &err);
    CHECK(ref && err == OPUS_OK, "reference decoder");
    if (!d || !ref) return;
    int16_t a[5760], b[5760];
    int same = 1, loud = 0;
    for (int i = 0; i < NPKT; i++) {
        int32_t na, nb;
        if (i % 7 == 3) { /* lost: PLC, 20 ms */
            na = cp_jb_opus_decode(d, NULL, 0, 0, PKT, a, PKT);
            nb = opus_decode(ref, NULL, 0, b, PKT, 0);
        } else if (i % 7 == 4) { /* the one before was lost: rebuild it from FEC, then decode */
            na = cp_jb_opus_decode(d, opus_pk[i], opus_len[i], 1, PKT, a, PKT);
            nb = opus_decode(ref, opus_pk[i], opus_len[i], b, PKT, 1);
            same &= na == nb && na == PKT && !memcmp(a, b, sizeof(int16_t) * PKT);
            na = cp_jb_opus_decode(d, opus_pk[i], opus_len[i], 0, 0, a, 5760);
            nb = opus_decode(ref, opus_pk[i], opus_len[i], b, 5760, 0);
        } else {
            na = cp_jb_opus_decode(d, opus_pk[i], opus_len[i], 0, 0, a, 5760);
            nb = opus_decode(ref, opus_pk[i], opus_len[i], b, 5760, 0);
        }
        same &= na == nb && na == PKT && !memcmp(a, b, sizeof(int16_t) * PKT);
        for (int k = 0; k < PKT && na == PKT; k++) loud |= abs(a[k]) > 1000;
    }
    CHECK(same && loud, "decode / PLC / FEC identical to libopus (same %d, loud %d)", same, loud);
    CHECK(cp_jb_opus_failures(d, NULL, NULL, NULL) == 0, "no failures yet");
    /* failures: recorded, -1 returned, the decoder stays usable */
    unsigned char junk[3] = {0xFF, 0xFF, 0xFF};
    CHECK(cp_jb_opus_decode(d, junk, 3, 0, 0, a, 5760) == -1, "garbage refused");
    int32_t code = 0, kind = -1, len = 0;
    CHECK(cp_jb_opus_failures(d, &code, &kind, &len) == 1 && code < 0 &&
              kind == CP_JB_OPUS_DECODE && len == 3, "failure recorded: %d %d %d", code, kind, len);
    CHECK(cp_jb_opus_strerror(code) && strlen(cp_jb_opus_strerror(code)) > 0, "message");
    CHECK(cp_jb_opus_decode(d, opus_pk[0], opus_len[0], 0, 0, a, 100) == -1, "cap too small");
    CHECK(cp_jb_opus_decode(d, NULL, 0, 0, 100, a, 960) == -1, "PLC not a multiple of 2.5 ms");
    CHECK(cp_jb_opus_decode(d, opus_pk[0], opus_len[0], 1, 960, a, 480) == -1, "FEC beyond cap");
    cp_jb_opus_failures(d, &code, &kind, &len);
    CHECK(kind == CP_JB_OPUS_FEC && code == OPUS_BAD_ARG, "FEC failure kind %d code %d", kind, code);
    CHECK(cp_jb_opus_decode(NULL, NULL, 0, 0, 960, a, 960) == -1, "NULL context");
    CHECK(cp_jb_opus_decode(d, opus_pk[1], opus_len[1], 0, 0, a, 5760) == PKT, "usable afterwards");
    cp_jb_opus *bad = NULL;
    CHECK(cp_jb_opus_new(&bad, 44100, 1) == CP_JB_EINVAL && !bad, "44.1 kHz refused");
    CHECK(cp_jb_opus_new(&bad, FS, 3) == CP_JB_EINVAL && !bad, "3 channels refused");
    CHECK(cp_jb_opus_new(NULL, FS, 1) == CP_JB_EINVAL, "NULL out");
    cp_jb_opus_free(NULL);
    opus_decoder_destroy(ref);
    cp_jb_opus_free(d);
}

/* The buffer driving the built-in decoder: real audio out, FEC rebuilds the lost frames. */
static void test_buffer_with_opus(void) {
    cp_jb *jb = make(NULL);
    cp_jb_opus *d = NULL;
    CHECK(cp_jb_opus_new(&d, FS, 1) == CP_JB_OK, "decoder");
    int16_t out[TICK];
    int ops[9] = {0};
    double energy = 0;
    for (int k = 0; k < 2 * NPKT + 20; k++) {
        int i = k / 2;
        if (k % 2 == 0 && i < NPKT && i % 9 != 4)
            CHECK(cp_jb_insert(jb, (uint16_t)i, (uint32_t)(i * PKT), opus_pk[i], opus_len[i], 0, 0,
                               k * 10.0, i) >= 0, "insert");
        int op = cp_jb_pull(jb, k * 10.0 + 40, cp_jb_opus_decode, d, out, TICK);
        CHECK(op >= 0 && op <= CP_JB_OP_CNG, "pull %d", op);
        if (op >= 0 && op <= 8) ops[op]++;
        for (int s = 0; s < TICK; s++) energy += (double)out[s] * out[s];
    }
    cp_jb_stats st;
    cp_jb_get_stats(jb, &st);
    CHECK(st.fec_recovered_frames >= 10 && ops[CP_JB_OP_FEC] >= 10, "FEC used: %lld",
          (long long)st.fec_recovered_frames);
    CHECK(st.decode_errors == 0 && cp_jb_opus_failures(d, NULL, NULL, NULL) == 0, "no errors");
    CHECK(sqrt(energy / (TICK * (2.0 * NPKT + 20))) > 500, "real audio out");
    cp_jb_opus_free(d);
    cp_jb_free(jb);
}

int main(void) {
    encode_packets();
    test_opus_decoder_matches_libopus();
    test_buffer_with_opus();
    test_config_and_args();
    test_toc();
    test_time_stretch();
    test_steady();
    test_loss();
    test_loss_no_fec();
    test_late_and_reorder();
    test_spikes_raise_target();
    test_late_policies();
    test_level_shift();
    test_duplicates_and_overflow();
    test_decoder_failures();
    test_random_calls();
    return check_done("test_cp_jitter");
}
