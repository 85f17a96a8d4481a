/* callpipe adaptive audio jitter buffer (NetEq-style), plain C, time injected.
 *
 * The caller inserts RTP packets with their arrival time (cp_jb_insert) and pulls exactly one tick
 * (10 ms by default) of PCM per call of the playout clock (cp_jb_pull).  The buffer never reads a
 * clock: every time is a `now_ms` argument (a double, milliseconds on the receiver's clock).
 *
 * Delay model (WebRTC NetEq, research/jitter_and_rtp.md section 1.2): the relative arrival delay of
 * each packet against the fastest packet of a history window, a delay histogram with exponential
 * forgetting fed with the largest delay of each resampling interval, the target delay as a
 * quantile of that histogram, an optional reorder cost optimizer, then the delay constraints.
 *
 * Decisions per pull (section 1.3): normal / accelerate / fast accelerate / preemptive expand
 * (slow down) / expand (concealment) / merge / FEC / comfort noise.  Time stretching is a
 * pitch-synchronous overlap-add (cp_jb_time_stretch) on the decoded PCM, so pitch is kept.
 *
 * Late packets (discard_late_packets, the default): a packet whose first sample's playout time
 * has passed -- its slot already decoded, or concealed while it was missing -- is discarded and
 * counted (packets_discarded, packets_late) and the timeline is kept, as under a playout
 * deadline -- except the very packet being concealed for, which is still merged (the timeline
 * stretching, as NetEq) if at most late_merge_ms (120 ms) was concealed for it; when
 * late_resync_packets late packets arrive in a row with none on time the delay
 * has grown for good, and the timeline moves to the newest of them (late_resyncs).  With
 * discard_late_packets = 0 the buffer does what NetEq does: concealment does not advance the
 * timeline, so the expected packet is played whenever it comes (the delay grows by the
 * concealment) and only packets behind decoded audio are late.
 *
 * Decoding goes through a cp_jb_decode_fn: with a packet to decode, with a packet whose in-band
 * FEC data should rebuild the frame before it, or with no packet to conceal (packet loss
 * concealment).  cp_jb_opus_decode is one, over libopus (a cp_jb_opus as its context), so that a
 * whole pull -- decoding, PLC and FEC included -- is one C call; the caller may pass its own.
 * A NULL decoder selects a built-in stand-in (a 200 Hz tone for every packet, silence for
 * concealment) that lets simulations run without a codec.
 *
 * All functions return CP_JB_OK (0) or a non-negative result on success, a negative cp_jb_status
 * on failure; a failed call leaves the buffer usable.  Not thread-safe: one buffer per stream,
 * one thread at a time.
 */
#ifndef CALLPIPE_CP_JITTER_H
#define CALLPIPE_CP_JITTER_H

#include <stdint.h>

typedef struct cp_jb cp_jb;

enum cp_jb_status {
    CP_JB_OK = 0,
    CP_JB_EINVAL = -1, /* an argument or configuration value is out of range */
    CP_JB_ENOMEM = -2, /* allocation failed */
    CP_JB_EFATAL = -3  /* the decoder callback asked to stop (the caller has the reason) */
};

/* cp_jb_insert results (>= 0). */
enum cp_jb_insert_result {
    CP_JB_INSERTED = 0,  /* stored for playout */
    CP_JB_DUPLICATE = 1, /* the same sequence number or timestamp was already received: dropped */
    CP_JB_LATE = 2,      /* its timestamp was already played out (or concealed, with
                            discard_late_packets): discarded (packetsDiscarded) */
    CP_JB_FLUSHED = 3    /* the buffer was full: every stored packet was discarded, this one kept */
};

/* What a pull did (the main operation of the tick), >= 0. */
enum cp_jb_op {
    CP_JB_OP_IDLE = 0,              /* nothing received yet, or still prefetching: silence */
    CP_JB_OP_NORMAL = 1,            /* decoded audio played as is */
    CP_JB_OP_ACCELERATE = 2,        /* one pitch period removed (time compression) */
    CP_JB_OP_FAST_ACCELERATE = 3,   /* accelerate with the lower correlation threshold */
    CP_JB_OP_PREEMPTIVE_EXPAND = 4, /* one pitch period inserted (slow down, time stretch) */
    CP_JB_OP_EXPAND = 5,            /* concealment of missing audio (decoder PLC) */
    CP_JB_OP_MERGE = 6,             /* first packet after a concealment (the missing ones skipped) */
    CP_JB_OP_FEC = 7,               /* a lost frame rebuilt from the next packet's in-band FEC */
    CP_JB_OP_CNG = 8                /* comfort noise during DTX (sender silence): not concealment */
};

enum cp_jb_limits {
    CP_JB_MAX_CHANNELS = 2,
    /* Sync buffer: decoded audio not played yet, in ms (room for a 120 ms packet and more). */
    CP_JB_SYNC_MS = 500,
    /* Longest packet the buffer accepts, in ms (Opus: 120). */
    CP_JB_MAX_PACKET_MS = 120,
    /* Most history entries (2.5 ms packets over a 10 s window). */
    CP_JB_MAX_HISTORY = 4096,
    CP_JB_MAX_BUCKETS = 1000,
    CP_JB_MAX_PACKETS = 10000
};

/* Every parameter, with its default from cp_jb_config_default (NetEq's where NetEq has one). */
typedef struct cp_jb_config {
    int32_t sample_rate;                 /* RTP clock and output rate, Hz (8000..48000): 48000 */
    int32_t channels;                    /* 1 or 2: 1 */
    double tick_ms;                      /* PCM per pull, ms (multiple of 2.5): 10 */
    double quantile;                     /* target = this quantile of the delay histogram: 0.95 */
    double forget_factor;                /* histogram forgetting per update: 0.983 */
    double start_forget_weight;          /* fast start: forget = 1 - w/(n+1) (0 = off): 2 */
    double resample_interval_ms;         /* one histogram update (the max delay) per interval;
                                            0 = every packet: 500 */
    int32_t bucket_ms;                   /* histogram bucket width, ms: 20 */
    int32_t buckets;                     /* histogram buckets (delays beyond are ignored): 100 */
    double history_ms;                   /* relative-delay history window, ms: 2000 */
    double start_delay_ms;               /* target before the first histogram update, ms: 80 */
    int32_t use_reorder_optimizer;       /* reordered packets feed a cost optimizer: 1 */
    double reorder_forget_factor;        /* its histogram forgetting: 0.9993 */
    double ms_per_loss_percent;          /* its cost of 1 % reorder loss, in ms of delay: 20 */
    double min_delay_ms;                 /* lower bound of the target, ms: 0 */
    double max_delay_ms;                 /* upper bound of the target, ms (0 = none): 0 */
    double base_min_delay_ms;            /* application minimum (jitterBufferTarget), ms
                                            (0..10000): 0 */
    int32_t max_packets_in_buffer;       /* a full buffer is flushed: 200 */
    int32_t allow_time_stretching;       /* accelerate / preemptive expand allowed: 1 */
    int32_t enable_fast_accelerate;      /* fast accelerate with the lower threshold: 0 */
    double fast_accelerate_factor;       /* fast accelerate when delay >= factor x high: 4 */
    int32_t min_timescale_interval_ticks;/* ticks between two time stretches: 5 */
    double time_stretch_corr_threshold;  /* normalized pitch correlation needed: 0.9 */
    double fast_accelerate_corr_threshold; /* same for fast accelerate: 0.5 */
    double silence_rms;                  /* below this RMS (int16 units) stretch anyway: 300 */
    double postpone_decoding_level;      /* after a long expand / CNG, wait until the buffered
                                            span reaches this fraction of the target: 0.5 */
    double expand_mute_ms;               /* an expand longer than this is audible (NetEq: mute
                                            factor below 0.5), ms: 50 */
    double dead_band_extra_ms;           /* high limit = target + max history delay + this: 20 */
    int32_t stable_delay_mode;           /* include the max history delay in the high limit: 1 */
    double target_level_window_ms;       /* +- half of it around the target for future packets,
                                            ms: 100 */
    int32_t use_fec;                     /* rebuild a lost frame from the next packet's in-band
                                            FEC: 1 */
    int32_t discard_late_packets;        /* a packet whose first sample's playout time has passed
                                            -- its slot already played or concealed -- is
                                            discarded (packetsDiscarded) and the timeline is kept:
                                            1.  0: NetEq's choice, the expected packet is played
                                            whenever it arrives and the timeline stretches by the
                                            concealment (only packets behind decoded audio are
                                            late) */
    int32_t late_resync_packets;         /* with discard_late_packets: after this many late
                                            arrivals in a row with no packet on time, the delay
                                            has grown for good (route change, queue): the
                                            timeline moves to the newest late packet, which is
                                            played (1..10000): 3 */
    double late_merge_ms;                /* with discard_late_packets: the expected packet that
                                            arrives while its own gap is being concealed is still
                                            merged (the timeline stretches, as NetEq) if at most
                                            this much was concealed for it, ms (0..1000): 120 */
    double level_shift_ms;               /* when the history window's fastest delay rises by at
                                            least this at once (a route change: the delay went
                                            up and stayed up for a whole window), the histogram
                                            updates of that window are measured again against
                                            the new floor, so a level shift is not kept as
                                            jitter for the histogram's memory (~30 s); 0 = off,
                                            NetEq's behaviour, ms (0..10000): 20 */
} cp_jb_config;

/* Lifetime statistics (never reset).  Names follow W3C webrtc-stats where one exists. */
typedef struct cp_jb_stats {
    int64_t packets_received;            /* unique packets inserted (duplicates excluded) */
    int64_t packets_lost;                /* RFC 3550: expected - received */
    int64_t packets_discarded;           /* arrived after their time, or flushed */
    int64_t packets_late;                /* the part of packets_discarded that arrived late */
    int64_t late_resyncs;                /* timeline moves to a late packet (late_resync_packets) */
    int64_t packets_duplicated;          /* duplicates dropped at insert */
    int64_t packets_played;              /* packets whose first sample was played */
    int64_t fec_recovered_frames;        /* lost frames rebuilt from in-band FEC */
    int64_t fec_recovered_samples;
    double jitter_buffer_delay_s;        /* sum over emitted samples of (playout - arrival), s */
    double jitter_buffer_target_delay_s; /* sum over emitted samples of the target delay, s */
    double jitter_buffer_minimum_delay_s;/* same with the unconstrained target, s */
    int64_t jitter_buffer_emitted_count; /* samples of played packets */
    int64_t total_samples_received;      /* samples output since the first packet (incl. concealed) */
    int64_t concealed_samples;
    int64_t silent_concealed_samples;
    int64_t concealment_events;
    int64_t inserted_samples_for_deceleration;
    int64_t removed_samples_for_acceleration;
    int64_t generated_noise_samples;     /* comfort noise during DTX (not concealment) */
    int64_t packet_buffer_flushes;
    int64_t decode_errors;               /* packets the decoder refused (concealed instead) */
    int64_t interruption_count;          /* concealment events >= 150 ms */
    double total_interruption_duration_ms;
    int64_t accelerate_count;            /* successful operations */
    int64_t preemptive_expand_count;
    int64_t expand_count;                /* pulls that concealed */
    int64_t level_shifts;                /* delay floor rises re-measured (level_shift_ms) */
} cp_jb_stats;

/* The current state, for plots and tests. */
typedef struct cp_jb_state {
    double target_delay_ms;              /* constrained target */
    double unlimited_target_delay_ms;    /* before min/max constraints */
    double playout_delay_ms;             /* relative delay of the sample playing now */
    double max_history_delay_ms;         /* largest relative delay in the history window */
    int32_t packets_buffered;
    int32_t sync_samples;                /* decoded samples (per channel) waiting to be played */
    int32_t last_op;                     /* cp_jb_op of the last pull */
    int32_t started;                     /* playout has begun */
    int64_t next_timestamp;              /* unwrapped RTP timestamp to decode next */
} cp_jb_state;

/* The playout of one packet: its first sample left the buffer at playout_ms. */
typedef struct cp_jb_playout {
    int64_t id;
    double playout_ms;
    double arrival_ms;
} cp_jb_playout;

/* Decoder callback.  payload == NULL: conceal exactly `want` samples per channel.  fec != 0:
 * rebuild exactly `want` samples of the frame lost before this packet from its in-band FEC data.
 * Otherwise decode the packet (want == 0).  Write interleaved int16 PCM into pcm (room for cap
 * samples per channel) and return the samples per channel written; return -1 when the packet
 * cannot be decoded (it is then concealed) or -2 to stop the pull (CP_JB_EFATAL). */
typedef int32_t (*cp_jb_decode_fn)(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                                   int32_t want, int16_t *pcm, int32_t cap);

void cp_jb_config_default(cp_jb_config *cfg);
/* CP_JB_OK when every field is in range, else CP_JB_EINVAL. */
int cp_jb_config_check(const cp_jb_config *cfg);

int cp_jb_new(cp_jb **out, const cp_jb_config *cfg);
void cp_jb_free(cp_jb *jb);

/* Insert one RTP packet.  duration_samples: the audio it holds per channel (0 = read it from the
 * Opus TOC, or 20 ms when that fails).  dtx: a DTX (comfort noise / silence) packet.  id: the
 * caller's tag returned with the packet's playout.  Returns a cp_jb_insert_result or an error. */
int cp_jb_insert(cp_jb *jb, uint16_t seq, uint32_t timestamp, const unsigned char *payload,
                 int32_t len, int32_t duration_samples, int32_t dtx, double now_ms, int64_t id);

/* Pull one tick of audio into out (tick samples x channels, interleaved).  Returns a cp_jb_op. */
int cp_jb_pull(cp_jb *jb, double now_ms, cp_jb_decode_fn decode, void *ctx, int16_t *out,
               int32_t out_samples);

/* Samples per channel in one pull. */
int32_t cp_jb_tick_samples(const cp_jb *jb);
/* True (1) when no packet is stored and less than one tick of decoded audio waits (the end of a
 * stream: the next pull would conceal). */
int cp_jb_idle(const cp_jb *jb);

void cp_jb_get_stats(const cp_jb *jb, cp_jb_stats *st);
void cp_jb_get_state(const cp_jb *jb, cp_jb_state *st);
/* Move up to max playout records out of the buffer; returns how many were written. */
int32_t cp_jb_take_playouts(cp_jb *jb, cp_jb_playout *out, int32_t max);

/* Pitch-synchronous overlap-add on n samples per channel of interleaved PCM (n >= 30 ms).
 * expand == 0: remove one pitch period (accelerate); else insert one (preemptive expand).
 * Stretches only when the normalized correlation of two consecutive pitch periods reaches
 * corr_threshold or the segment's RMS is below silence_rms.  out needs room for n + 15 ms.
 * Returns the output length per channel (n when nothing was done); *changed gets the samples
 * removed or inserted (0 when none), *corr the correlation found. */
int32_t cp_jb_time_stretch(const int16_t *in, int32_t n, int32_t channels, int32_t sample_rate,
                           int32_t expand, double corr_threshold, double silence_rms,
                           int16_t *out, int32_t out_cap, int32_t *changed, double *corr);

/* Samples per channel of an Opus packet at sample_rate (RFC 6716 TOC), or -1 when malformed. */
int32_t cp_jb_opus_packet_samples(const unsigned char *packet, int32_t len, int32_t sample_rate);

/* ---- built-in Opus decoding (libopus) -------------------------------------------------------
 * A libopus decoder the buffer drives through cp_jb_opus_decode, with no crossing back into the
 * caller per decode.  sample_rate: 8000, 12000, 16000, 24000 or 48000 Hz; channels: 1 or 2.
 * Returns CP_JB_OK, CP_JB_EINVAL (unsupported rate or channels) or CP_JB_ENOMEM. */
typedef struct cp_jb_opus cp_jb_opus;

/* What a failed decode was doing (cp_jb_opus_last_failure). */
enum cp_jb_opus_kind {
    CP_JB_OPUS_DECODE = 0, /* decoding a packet */
    CP_JB_OPUS_PLC = 1,    /* packet loss concealment */
    CP_JB_OPUS_FEC = 2     /* rebuilding a lost frame from in-band FEC data */
};

int cp_jb_opus_new(cp_jb_opus **out, int32_t sample_rate, int32_t channels);
void cp_jb_opus_free(cp_jb_opus *dec);

/* A cp_jb_decode_fn (ctx: a cp_jb_opus).  Exactly what the Python decoder path does with
 * callpipe.codecs.OpusDecoder: payload NULL -> opus_decode(NULL, want) (PLC); fec -> opus_decode
 * of the packet's FEC data for `want` samples; else the packet is decoded (refused with -1 when
 * it holds more than cap samples per channel).  A libopus failure returns -1 (the buffer
 * conceals instead) and is recorded for cp_jb_opus_last_failure. */
int32_t cp_jb_opus_decode(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                          int32_t want, int16_t *pcm, int32_t cap);

/* Failed decodes so far; the last one's libopus error code (0 = none), its cp_jb_opus_kind and
 * its payload length in bytes go to the non-NULL pointers. */
int64_t cp_jb_opus_failures(const cp_jb_opus *dec, int32_t *last_code, int32_t *last_kind,
                            int32_t *last_len);
/* libopus's message for an error code (opus_strerror). */
const char *cp_jb_opus_strerror(int32_t code);

#endif /* CALLPIPE_CP_JITTER_H */
