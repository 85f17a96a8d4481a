/* callpipe adaptive audio jitter buffer (NetEq-style): see cp_jitter.h for the model. */
#include "callpipe/cp_jitter.h"

#include <math.h>
#include <opus.h>
#include <stdlib.h>
#include <string.h>

enum { RECENT_SEQS = 1024, MAX_MARKS = 512, PLAYOUT_RING = 65536, RECENT_UPDATES = 256 };
static const double CP_PI = 3.14159265358979323846;

/* ---- histogram with exponential forgetting (NetEq Histogram, in doubles) ------------------- */
typedef struct {
    double *b;
    int32_t n;
    double forget, base, start_w;
    int64_t adds;
} hist_t;

static int hist_init(hist_t *h, int32_t n, double base, double start_w) {
    h->b = malloc(sizeof(double) * (size_t)n);
    if (!h->b) return CP_JB_ENOMEM;
    h->n = n;
    h->base = base;
    h->start_w = start_w;
    h->forget = 0.0; /* the first sample replaces the reset distribution */
    h->adds = 0;
    double v = 0.5;
    for (int32_t i = 0; i < n; i++, v *= 0.5) h->b[i] = v;
    return CP_JB_OK;
}

/* Adds one sample at idx.  *keep: the factor every earlier sample's mass was multiplied by;
 * returns the mass the new sample got (both after renormalisation). */
static double hist_add(hist_t *h, int32_t idx, double *keep) {
    double sum = 0.0, f = h->forget;
    for (int32_t i = 0; i < h->n; i++) {
        h->b[i] *= f;
        sum += h->b[i];
    }
    h->b[idx] += 1.0 - f;
    sum += 1.0 - f;
    double norm = 1.0;
    if (sum > 0.0 && fabs(sum - 1.0) > 1e-9) {
        norm = sum;
        for (int32_t i = 0; i < h->n; i++) h->b[i] /= sum;
    }
    if (keep) *keep = f / norm;
    h->adds++;
    if (h->forget != h->base) {
        if (h->start_w > 0.0) {
            double f = 1.0 - h->start_w / (double)(h->adds + 1);
            h->forget = f < 0.0 ? 0.0 : (f > h->base ? h->base : f);
        } else {
            h->forget += (h->base - h->forget) / 4.0;
            if (fabs(h->base - h->forget) < 1e-6) h->forget = h->base;
        }
    }
    return (1.0 - f) / norm;
}

static int32_t hist_quantile(const hist_t *h, double q) {
    double cum = 0.0;
    for (int32_t i = 0; i < h->n; i++) {
        cum += h->b[i];
        if (cum >= q - 1e-12) return i;
    }
    return h->n - 1;
}

/* ---- packets ------------------------------------------------------------------------------- */
typedef struct {
    int64_t ts, seq, id;
    double arrival;
    int32_t dur, dtx, len, cap;
    unsigned char *data;
} pkt_t;

typedef struct {
    double ts_ms, arrival;
    int reordered;
} arrival_t;

typedef struct {
    int64_t id;
    int32_t pos, n;
    double arrival;
} mark_t;

/* One recent update of the delay histogram, kept for level_shift_ms: the absolute delay it
 * stands for (the relative delay plus the floor it was measured against), its bucket, the mass
 * it still holds there, and its media time. */
typedef struct {
    double abs_ms, mass, ts_ms;
    int32_t idx;
} update_t;

struct cp_jb {
    cp_jb_config c;
    int32_t tick, unit, ch;
    double fs_khz;
    /* packet buffer: pointers sorted by timestamp, and a pool of free packets */
    pkt_t **pk, **pool, *store;
    int32_t npk, npool;
    /* sequence numbers and timestamps */
    int have_seq, have_ts;
    int64_t last_seq, base_seq, max_seq, last_ts;
    int64_t *recent;
    /* relative arrival delay history */
    arrival_t *hist;
    int32_t hhead, hcount, hcap;
    double newest_ts_ms, min_offset, max_rel;
    int have_min;
    /* delay manager */
    hist_t under, reorder;
    update_t updates[RECENT_UPDATES];
    int32_t uhead, ucount;
    int resample_started;
    double resample_start, max_in_interval, optimal_ms, reorder_ms;
    double interval_max_abs, interval_max_ts; /* the interval's largest: absolute delay, ts ms */
    double target_ms, unlimited_ms, packet_len_ms;
    /* playout */
    int started, resync, last_mode, last_op, fatal, concealing;
    int32_t late_run; /* late arrivals in a row (discard_late_packets) */
    double last_now;
    int64_t play_ts, generated, ticks_since_stretch;
    double expand_run_ms, event_ms;
    int16_t *sync, *scratch, *dec, *tone;
    int32_t sync_len, sync_cap, scratch_cap, dec_cap, tone_len;
    mark_t marks[MAX_MARKS];
    int32_t nmarks;
    cp_jb_playout *played;
    int32_t played_head, played_count;
    cp_jb_stats st;
};

void cp_jb_config_default(cp_jb_config *c) {
    memset(c, 0, sizeof *c);
    c->sample_rate = 48000;
    c->channels = 1;
    c->tick_ms = 10.0;
    c->quantile = 0.95;
    c->forget_factor = 0.983;
    c->start_forget_weight = 2.0;
    c->resample_interval_ms = 500.0;
    c->bucket_ms = 20;
    c->buckets = 100;
    c->history_ms = 2000.0;
    c->start_delay_ms = 80.0;
    c->use_reorder_optimizer = 1;
    c->reorder_forget_factor = 0.9993;
    c->ms_per_loss_percent = 20.0;
    c->min_delay_ms = 0.0;
    c->max_delay_ms = 0.0;
    c->base_min_delay_ms = 0.0;
    c->max_packets_in_buffer = 200;
    c->allow_time_stretching = 1;
    c->enable_fast_accelerate = 0;
    c->fast_accelerate_factor = 4.0;
    c->min_timescale_interval_ticks = 5;
    c->time_stretch_corr_threshold = 0.9;
    c->fast_accelerate_corr_threshold = 0.5;
    c->silence_rms = 300.0;
    c->postpone_decoding_level = 0.5;
    c->expand_mute_ms = 50.0;
    c->dead_band_extra_ms = 20.0;
    c->stable_delay_mode = 1;
    c->target_level_window_ms = 100.0;
    c->use_fec = 1;
    c->discard_late_packets = 1;
    c->late_resync_packets = 3;
    c->late_merge_ms = 120.0;
    c->level_shift_ms = 20.0;
}

static int rate_ok(int32_t fs) {
    return fs >= 8000 && fs <= 48000 && fs % 4000 == 0;
}

static int in_range(double v, double lo, double hi) {
    return v == v && v >= lo && v <= hi; /* v == v: not NaN */
}

int cp_jb_config_check(const cp_jb_config *c) {
    if (!c || !rate_ok(c->sample_rate) || c->channels < 1 || c->channels > CP_JB_MAX_CHANNELS)
        return CP_JB_EINVAL;
    double units = c->tick_ms / 2.5;
    if (!in_range(c->tick_ms, 2.5, 100.0) || units != floor(units)) return CP_JB_EINVAL;
    if (!in_range(c->quantile, 0.0, 1.0) || !in_range(c->forget_factor, 0.0, 1.0) ||
        !in_range(c->start_forget_weight, 0.0, 1e6) ||
        !in_range(c->resample_interval_ms, 0.0, 60000.0) || c->bucket_ms < 1 ||
        c->bucket_ms > 1000 || c->buckets < 2 || c->buckets > CP_JB_MAX_BUCKETS ||
        !in_range(c->history_ms, 10.0, 10000.0) || !in_range(c->start_delay_ms, 0.0, 10000.0) ||
        !in_range(c->reorder_forget_factor, 0.0, 1.0) ||
        !in_range(c->ms_per_loss_percent, 0.0, 1e6) || !in_range(c->min_delay_ms, 0.0, 10000.0) ||
        !in_range(c->max_delay_ms, 0.0, 10000.0) || !in_range(c->base_min_delay_ms, 0.0, 10000.0) ||
        c->max_packets_in_buffer < 2 || c->max_packets_in_buffer > CP_JB_MAX_PACKETS ||
        !in_range(c->fast_accelerate_factor, 1.0, 100.0) ||
        c->min_timescale_interval_ticks < 0 || c->min_timescale_interval_ticks > 100000 ||
        !in_range(c->time_stretch_corr_threshold, -1.0, 1.0) ||
        !in_range(c->fast_accelerate_corr_threshold, -1.0, 1.0) ||
        !in_range(c->silence_rms, 0.0, 32768.0) || !in_range(c->postpone_decoding_level, 0.0, 10.0) ||
        !in_range(c->expand_mute_ms, 0.0, 10000.0) || !in_range(c->dead_band_extra_ms, 0.0, 10000.0) ||
        !in_range(c->target_level_window_ms, 0.0, 10000.0) || c->late_resync_packets < 1 ||
        c->late_resync_packets > 10000 || !in_range(c->late_merge_ms, 0.0, 1000.0) ||
        !in_range(c->level_shift_ms, 0.0, 10000.0))
        return CP_JB_EINVAL;
    return CP_JB_OK;
}

/* ---- target delay ---------------------------------------------------------------------------- */
static void apply_constraints(cp_jb *jb) {
    const cp_jb_config *c = &jb->c;
    double t = jb->optimal_ms >= 0.0 ? jb->optimal_ms : c->start_delay_ms;
    if (c->use_reorder_optimizer && jb->reorder_ms > t) t = jb->reorder_ms;
    jb->unlimited_ms = t;
    double cap_ms = 0.75 * c->max_packets_in_buffer * (jb->packet_len_ms > 0 ? jb->packet_len_ms : 20.0);
    double eff_min = c->min_delay_ms > c->base_min_delay_ms ? c->min_delay_ms : c->base_min_delay_ms;
    if (c->max_delay_ms > 0 && eff_min > c->max_delay_ms) eff_min = c->max_delay_ms;
    if (eff_min > cap_ms) eff_min = cap_ms;
    if (t < eff_min) t = eff_min;
    if (c->max_delay_ms > 0 && t > c->max_delay_ms) t = c->max_delay_ms;
    if (t > cap_ms) t = cap_ms;
    jb->target_ms = t;
}

static int32_t reorder_cost_min(const cp_jb *jb, double base_delay_ms) {
    const hist_t *h = &jb->reorder;
    double loss = 1.0, best = INFINITY;
    int32_t best_i = 0;
    for (int32_t i = 0; i < h->n; i++) {
        loss -= h->b[i];
        if (loss < 0) loss = 0;
        double d = i * (double)jb->c.bucket_ms - base_delay_ms;
        double cost = (d > 0 ? d : 0) + 100.0 * jb->c.ms_per_loss_percent * loss;
        if (cost < best) {
            best = cost;
            best_i = i;
        }
        if (loss <= 1e-12) break;
    }
    return best_i * jb->c.bucket_ms;
}

/* Forget the updates older than the history window. */
static void updates_expire(cp_jb *jb) {
    while (jb->ucount > 0 && jb->updates[jb->uhead].ts_ms + jb->c.history_ms < jb->newest_ts_ms) {
        jb->uhead = (jb->uhead + 1) % RECENT_UPDATES;
        jb->ucount--;
    }
}

/* Remember a histogram update for level_shift_ms (the window's updates only). */
static void updates_note(cp_jb *jb, double rel_ms, int32_t idx, double mass, double keep) {
    for (int32_t k = 0; k < jb->ucount; k++) jb->updates[(jb->uhead + k) % RECENT_UPDATES].mass *= keep;
    updates_expire(jb);
    if (jb->ucount == RECENT_UPDATES) { /* more updates per window than kept: forget the oldest */
        jb->uhead = (jb->uhead + 1) % RECENT_UPDATES;
        jb->ucount--;
    }
    update_t *u = &jb->updates[(jb->uhead + jb->ucount) % RECENT_UPDATES];
    u->abs_ms = rel_ms + jb->min_offset;
    u->mass = mass;
    u->ts_ms = jb->newest_ts_ms;
    u->idx = idx;
    jb->ucount++;
}

/* The floor of the history window (its fastest packet's delay) rose by level_shift_ms or more
 * at once: every packet of the window is that much slower than the old floor, i.e. the path
 * changed (a route change) rather than jittered.  The histogram updates made against the old
 * floor during the window move to the buckets they have against the new one (their mass is
 * kept), and the largest delay of the interval being collected is measured again alike if it
 * is from the window.  Updates from before the window -- e.g. before a silence longer than the
 * window -- were measured on the old path against its own floor and stay as they are.  Without
 * this the whole step would stay in the histogram as jitter for its memory (0.983 per 500 ms
 * update: ~30 s), and the target with it. */
static void level_shift(cp_jb *jb) {
    const cp_jb_config *c = &jb->c;
    int moved = 0;
    updates_expire(jb); /* e.g. after a silence (DTX) longer than the window: none are left */
    for (int32_t k = 0; k < jb->ucount; k++) {
        update_t *u = &jb->updates[(jb->uhead + k) % RECENT_UPDATES];
        double rel = u->abs_ms - jb->min_offset;
        int32_t idx = rel > 0 ? (int32_t)(rel / c->bucket_ms) : 0;
        if (idx >= u->idx) continue; /* only ever lowered */
        double m = u->mass < jb->under.b[u->idx] ? u->mass : jb->under.b[u->idx];
        jb->under.b[u->idx] -= m;
        jb->under.b[idx] += m;
        u->mass = m;
        u->idx = idx;
        moved = 1;
    }
    /* the interval being collected, when its largest delay is from the window */
    if (jb->max_in_interval > 0 && jb->interval_max_ts + c->history_ms >= jb->newest_ts_ms) {
        double rel = jb->interval_max_abs - jb->min_offset;
        jb->max_in_interval = rel > 0 ? rel : 0.0;
    }
    jb->st.level_shifts++;
    if (moved && jb->optimal_ms >= 0.0) {
        jb->optimal_ms = (1 + hist_quantile(&jb->under, c->quantile)) * (double)c->bucket_ms;
        apply_constraints(jb);
    }
}

static void delay_update(cp_jb *jb, double rel_ms, double ts_ms, int reordered, double now) {
    const cp_jb_config *c = &jb->c;
    int have = 0;
    double upd = rel_ms;
    if (c->resample_interval_ms > 0) {
        if (!jb->resample_started) {
            jb->resample_started = 1;
            jb->resample_start = now;
            jb->max_in_interval = 0;
        }
        if (now - jb->resample_start > c->resample_interval_ms) {
            upd = jb->max_in_interval;
            have = 1;
            jb->resample_start = now;
            jb->max_in_interval = 0;
        }
        if (rel_ms > jb->max_in_interval) {
            jb->max_in_interval = rel_ms;
            jb->interval_max_abs = rel_ms + jb->min_offset;
            jb->interval_max_ts = ts_ms;
        }
    } else {
        have = 1;
    }
    if (have) {
        int32_t idx = (int32_t)(upd / c->bucket_ms);
        if (idx >= 0 && idx < jb->under.n) {
            double keep = 1.0;
            double mass = hist_add(&jb->under, idx, &keep);
            jb->optimal_ms = (1 + hist_quantile(&jb->under, c->quantile)) * (double)c->bucket_ms;
            if (c->level_shift_ms > 0) updates_note(jb, upd, idx, mass, keep);
        }
    }
    if (c->use_reorder_optimizer) {
        int32_t idx = reordered ? (int32_t)(rel_ms / c->bucket_ms) : 0;
        if (idx >= 0 && idx < jb->reorder.n) {
            hist_add(&jb->reorder, idx, NULL);
            double base = jb->optimal_ms >= 0 ? jb->optimal_ms : c->start_delay_ms;
            jb->reorder_ms = reorder_cost_min(jb, base);
        }
    }
    apply_constraints(jb);
}

/* Relative delay of (ts_ms, arrival) against the fastest packet of the history. */
static double rel_delay(const cp_jb *jb, double ts_ms, double arrival) {
    if (!jb->have_min) return 0.0;
    double d = (arrival - ts_ms) - jb->min_offset;
    return d > 0 ? d : 0;
}

static void history_rescan(cp_jb *jb) {
    jb->have_min = 0;
    double mx = -INFINITY;
    for (int32_t k = 0; k < jb->hcount; k++) {
        const arrival_t *a = &jb->hist[(jb->hhead + k) % jb->hcap];
        if (a->reordered) continue;
        double off = a->arrival - a->ts_ms;
        if (!jb->have_min || off < jb->min_offset) jb->min_offset = off;
        jb->have_min = 1;
        if (off > mx) mx = off;
    }
    jb->max_rel = jb->have_min ? mx - jb->min_offset : 0.0;
}

static void history_insert(cp_jb *jb, int64_t ts, double now) {
    double ts_ms = (double)ts / jb->fs_khz;
    int reordered = jb->hcount > 0 && ts_ms < jb->newest_ts_ms;
    if (!reordered) jb->newest_ts_ms = ts_ms;
    if (jb->hcount == jb->hcap) { /* full: forget the oldest */
        jb->hhead = (jb->hhead + 1) % jb->hcap;
        jb->hcount--;
    }
    arrival_t *a = &jb->hist[(jb->hhead + jb->hcount) % jb->hcap];
    a->ts_ms = ts_ms;
    a->arrival = now;
    a->reordered = reordered;
    jb->hcount++;
    while (jb->hcount > 1 && jb->hist[jb->hhead].ts_ms + jb->c.history_ms < ts_ms) {
        jb->hhead = (jb->hhead + 1) % jb->hcap;
        jb->hcount--;
    }
    int had_min = jb->have_min;
    double old_min = jb->min_offset;
    history_rescan(jb);
    if (had_min && jb->have_min && jb->c.level_shift_ms > 0 &&
        jb->min_offset - old_min >= jb->c.level_shift_ms)
        level_shift(jb);
    if (jb->hcount < 2) return; /* no estimate before two packets */
    delay_update(jb, rel_delay(jb, ts_ms, now), ts_ms, reordered, now);
}

/* ---- creation ------------------------------------------------------------------------------ */
int cp_jb_new(cp_jb **out, const cp_jb_config *cfg) {
    if (!out) return CP_JB_EINVAL;
    *out = NULL;
    cp_jb_config def;
    if (!cfg) {
        cp_jb_config_default(&def);
        cfg = &def;
    }
    if (cp_jb_config_check(cfg) != CP_JB_OK) return CP_JB_EINVAL;
    cp_jb *jb = calloc(1, sizeof *jb);
    if (!jb) return CP_JB_ENOMEM;
    jb->c = *cfg;
    jb->ch = cfg->channels;
    jb->fs_khz = cfg->sample_rate / 1000.0;
    jb->unit = cfg->sample_rate / 400;
    jb->tick = (int32_t)(cfg->tick_ms / 2.5 + 0.5) * jb->unit;
    int32_t npkt = cfg->max_packets_in_buffer + 1;
    jb->pk = calloc((size_t)npkt, sizeof(pkt_t *));
    jb->pool = calloc((size_t)npkt, sizeof(pkt_t *));
    jb->store = calloc((size_t)npkt, sizeof(pkt_t));
    jb->recent = malloc(sizeof(int64_t) * RECENT_SEQS);
    jb->hcap = (int32_t)(cfg->history_ms / 2.5) + 64;
    if (jb->hcap > CP_JB_MAX_HISTORY) jb->hcap = CP_JB_MAX_HISTORY;
    jb->hist = calloc((size_t)jb->hcap, sizeof(arrival_t));
    jb->sync_cap = CP_JB_SYNC_MS * cfg->sample_rate / 1000;
    jb->sync = calloc((size_t)jb->sync_cap * jb->ch, sizeof(int16_t));
    jb->scratch_cap = jb->sync_cap + 15 * cfg->sample_rate / 1000;
    jb->scratch = calloc((size_t)jb->scratch_cap * jb->ch, sizeof(int16_t));
    jb->dec_cap = CP_JB_MAX_PACKET_MS * cfg->sample_rate / 1000;
    jb->dec = calloc((size_t)jb->dec_cap * jb->ch, sizeof(int16_t));
    jb->tone_len = cfg->sample_rate / 200;
    jb->tone = malloc(sizeof(int16_t) * (size_t)jb->tone_len);
    jb->played = malloc(sizeof(cp_jb_playout) * PLAYOUT_RING);
    int rc = CP_JB_OK;
    if (!jb->pk || !jb->pool || !jb->store || !jb->recent || !jb->hist || !jb->sync ||
        !jb->scratch || !jb->dec || !jb->tone || !jb->played)
        rc = CP_JB_ENOMEM;
    if (rc == CP_JB_OK) rc = hist_init(&jb->under, cfg->buckets, cfg->forget_factor, cfg->start_forget_weight);
    if (rc == CP_JB_OK)
        rc = hist_init(&jb->reorder, cfg->buckets, cfg->reorder_forget_factor, cfg->start_forget_weight);
    if (rc != CP_JB_OK) {
        cp_jb_free(jb);
        return rc;
    }
    for (int32_t i = 0; i < npkt; i++) jb->pool[i] = &jb->store[i];
    jb->npool = npkt;
    for (int i = 0; i < RECENT_SEQS; i++) jb->recent[i] = -1;
    for (int32_t i = 0; i < jb->tone_len; i++)
        jb->tone[i] = (int16_t)lrint(8000.0 * sin(2.0 * CP_PI * i / jb->tone_len));
    jb->optimal_ms = -1.0;
    jb->reorder_ms = -1.0;
    jb->last_mode = CP_JB_OP_NORMAL;
    apply_constraints(jb);
    *out = jb;
    return CP_JB_OK;
}

void cp_jb_free(cp_jb *jb) {
    if (!jb) return;
    if (jb->store)
        for (int32_t i = 0; i <= jb->c.max_packets_in_buffer; i++) free(jb->store[i].data);
    free(jb->store);
    free(jb->pk);
    free(jb->pool);
    free(jb->recent);
    free(jb->hist);
    free(jb->sync);
    free(jb->scratch);
    free(jb->dec);
    free(jb->tone);
    free(jb->played);
    free(jb->under.b);
    free(jb->reorder.b);
    free(jb);
}

int32_t cp_jb_tick_samples(const cp_jb *jb) {
    return jb ? jb->tick : CP_JB_EINVAL;
}

int cp_jb_idle(const cp_jb *jb) {
    return jb && jb->npk == 0 && jb->sync_len < jb->tick;
}

/* ---- Opus TOC ------------------------------------------------------------------------------ */
int32_t cp_jb_opus_packet_samples(const unsigned char *p, int32_t len, int32_t fs) {
    if (!p || len < 1 || fs <= 0 || fs % 400) return -1;
    int config = p[0] >> 3;
    int units; /* frame duration in 2.5 ms units */
    if (config < 12) {
        static const int silk[4] = {4, 8, 16, 24};
        units = silk[config & 3];
    } else if (config < 16) {
        units = (config & 1) ? 8 : 4;
    } else {
        static const int celt[4] = {1, 2, 4, 8};
        units = celt[config & 3];
    }
    int frames;
    switch (p[0] & 3) {
    case 0: frames = 1; break;
    case 1:
    case 2: frames = 2; break;
    default:
        if (len < 2) return -1;
        frames = p[1] & 0x3F;
        if (frames < 1) return -1;
    }
    if (frames * units > 48) return -1; /* more than 120 ms */
    return frames * units * (fs / 400);
}

/* ---- sequence / timestamp unwrapping ------------------------------------------------------- */
static int64_t unwrap(int64_t last, uint32_t value, int bits) {
    int64_t mod = (int64_t)1 << bits;
    int64_t base = last & ~(mod - 1);
    int64_t cand = base + value;
    if (cand - last > mod / 2) cand -= mod;
    else if (last - cand > mod / 2) cand += mod;
    return cand;
}

/* ---- packet buffer --------------------------------------------------------------------------- */
static void pkt_release(cp_jb *jb, pkt_t *p) {
    jb->pool[jb->npool++] = p;
}

static void pkt_remove_front(cp_jb *jb) {
    memmove(jb->pk, jb->pk + 1, sizeof(pkt_t *) * (size_t)(jb->npk - 1));
    jb->npk--;
}

static void flush_packets(cp_jb *jb) {
    for (int32_t i = 0; i < jb->npk; i++) {
        pkt_release(jb, jb->pk[i]);
        jb->st.packets_discarded++;
    }
    jb->npk = 0;
    jb->st.packet_buffer_flushes++;
    jb->resync = 1;
}

/* The first timestamp not yet played out: the end of the decoded audio, plus (with
 * discard_late_packets) the concealment generated since -- a packet starting before it is late. */
/* The packet the buffer is concealing for has arrived early enough to merge it (see
 * late_merge_ms): it is not late. */
static int mergeable(const cp_jb *jb, int64_t ts) {
    return ts == jb->play_ts && jb->last_mode == CP_JB_OP_EXPAND &&
           (double)jb->generated <= jb->c.late_merge_ms * jb->fs_khz;
}

static int64_t playout_point(const cp_jb *jb) {
    int64_t t = jb->play_ts;
    if (jb->c.discard_late_packets && jb->last_mode == CP_JB_OP_EXPAND) t += jb->generated;
    return t;
}

int cp_jb_insert(cp_jb *jb, uint16_t seq, uint32_t timestamp, const unsigned char *payload,
                 int32_t len, int32_t duration_samples, int32_t dtx, double now_ms, int64_t id) {
    if (!jb || len < 0 || len > 65535 || (len > 0 && !payload) || now_ms != now_ms) return CP_JB_EINVAL;
    int32_t max_dur = CP_JB_MAX_PACKET_MS * jb->c.sample_rate / 1000;
    if (duration_samples < 0 || duration_samples > max_dur) return CP_JB_EINVAL;
    if (duration_samples == 0) {
        duration_samples = cp_jb_opus_packet_samples(payload, len, jb->c.sample_rate);
        if (duration_samples <= 0) duration_samples = 20 * jb->c.sample_rate / 1000;
    }
    int64_t es = jb->have_seq ? unwrap(jb->last_seq, seq, 16) : (int64_t)seq + (1 << 20);
    int64_t et = jb->have_ts ? unwrap(jb->last_ts, timestamp, 32) : (int64_t)timestamp + ((int64_t)1 << 40);
    /* duplicates: the same sequence number recently, or the same timestamp stored */
    int32_t slot = (int32_t)(es & (RECENT_SEQS - 1));
    int dup = jb->recent[slot] == es;
    for (int32_t i = 0; !dup && i < jb->npk; i++) dup = jb->pk[i]->ts == et;
    if (dup) {
        jb->st.packets_duplicated++;
        return CP_JB_DUPLICATE;
    }
    jb->recent[slot] = es;
    if (!jb->have_seq) {
        jb->have_seq = 1;
        jb->base_seq = jb->max_seq = es;
    }
    if (es > jb->last_seq) jb->last_seq = es;
    if (!jb->have_ts || et > jb->last_ts) jb->last_ts = et;
    jb->have_ts = 1;
    if (es > jb->max_seq) jb->max_seq = es;
    if (es < jb->base_seq) jb->base_seq = es;
    jb->st.packets_received++;
    jb->packet_len_ms = duration_samples / jb->fs_khz;

    /* a stream restart (timestamp far behind the playout) resynchronises instead of discarding */
    int64_t horizon = 5 * (int64_t)jb->c.sample_rate;
    if (jb->started && et < jb->play_ts - horizon) {
        flush_packets(jb);
        jb->st.packet_buffer_flushes--; /* a restart, not an overflow */
        jb->hcount = 0;
        jb->ucount = 0;
        jb->have_min = 0;
        jb->last_ts = et;
        jb->max_rel = 0;
    }
    int result = CP_JB_INSERTED;
    if (jb->npk >= jb->c.max_packets_in_buffer) {
        flush_packets(jb);
        result = CP_JB_FLUSHED; /* NetEq: no delay statistics for this insert */
    } else {
        history_insert(jb, et, now_ms);
    }
    if (jb->started && !jb->resync) {
        int64_t point = playout_point(jb);
        int late = et < jb->play_ts; /* behind decoded audio: always late */
        if (!late && et < point && mergeable(jb, et)) {
            jb->late_run = 0; /* the one being concealed for, soon enough: merged */
        } else if (!late && et < point) { /* in audio already concealed */
            jb->late_run++;
            /* discarded now unless it may be the one the timeline moves to (cp_jb_pull) */
            late = jb->late_run < jb->c.late_resync_packets ||
                   (jb->npk > 0 && jb->pk[jb->npk - 1]->ts >= point);
        } else if (!late) {
            jb->late_run = 0;
        }
        if (late) {
            jb->st.packets_discarded++;
            jb->st.packets_late++;
            return CP_JB_LATE;
        }
    }
    pkt_t *p = jb->pool[--jb->npool];
    if (p->cap < len) {
        unsigned char *d = realloc(p->data, (size_t)len);
        if (!d) {
            jb->pool[jb->npool++] = p;
            return CP_JB_ENOMEM;
        }
        p->data = d;
        p->cap = len;
    }
    if (len) memcpy(p->data, payload, (size_t)len);
    p->len = len;
    p->ts = et;
    p->seq = es;
    p->id = id;
    p->arrival = now_ms;
    p->dur = duration_samples;
    p->dtx = dtx ? 1 : 0;
    int32_t i = jb->npk;
    while (i > 0 && jb->pk[i - 1]->ts > et) i--;
    memmove(jb->pk + i + 1, jb->pk + i, sizeof(pkt_t *) * (size_t)(jb->npk - i));
    jb->pk[i] = p;
    jb->npk++;
    return result;
}

/* ---- decoding ------------------------------------------------------------------------------ */
static int32_t run_decode(cp_jb *jb, cp_jb_decode_fn fn, void *ctx, const pkt_t *p, int fec,
                          int32_t want, int16_t *dst, int32_t cap) {
    int32_t ch = jb->ch;
    if (!fn) {
        if (!p || fec || p->dtx) { /* stand-in: silence for concealment and comfort noise */
            memset(dst, 0, sizeof(int16_t) * (size_t)want * ch);
            return want;
        }
        int32_t n = p->dur;
        if (n > cap) return -1;
        int64_t ph = p->ts % jb->tone_len;
        for (int32_t i = 0; i < n; i++) {
            int16_t v = jb->tone[ph];
            if (++ph == jb->tone_len) ph = 0;
            for (int32_t c = 0; c < ch; c++) dst[i * ch + c] = v;
        }
        return n;
    }
    int32_t n = fn(ctx, p ? p->data : NULL, p ? p->len : 0, fec, want, dst, cap);
    if (n == -2) jb->fatal = 1;
    if (n <= 0 || n > cap) return -1;
    if (want > 0 && n < want) {
        memset(dst + (size_t)n * ch, 0, sizeof(int16_t) * (size_t)(want - n) * ch);
        n = want;
    }
    return n;
}

static void sync_append(cp_jb *jb, const int16_t *pcm, int32_t n) {
    if (jb->sync_len + n > jb->sync_cap) n = jb->sync_cap - jb->sync_len;
    if (n <= 0) return;
    memcpy(jb->sync + (size_t)jb->sync_len * jb->ch, pcm, sizeof(int16_t) * (size_t)n * jb->ch);
    jb->sync_len += n;
}

static double rms_of(const int16_t *pcm, int32_t n) {
    if (n <= 0) return 0.0;
    double e = 0;
    for (int32_t i = 0; i < n; i++) e += (double)pcm[i] * pcm[i];
    return sqrt(e / n);
}

static void end_concealment(cp_jb *jb) {
    if (jb->concealing) {
        if (jb->event_ms >= 150.0) {
            jb->st.interruption_count++;
            jb->st.total_interruption_duration_ms += jb->event_ms;
        }
        jb->concealing = 0;
        jb->event_ms = 0;
    }
    jb->expand_run_ms = 0;
}

/* Conceal (or comfort noise when cng) n samples per channel into the sync buffer. */
static void do_conceal(cp_jb *jb, cp_jb_decode_fn fn, void *ctx, int32_t n, int cng) {
    if (n > jb->dec_cap) n = jb->dec_cap;
    int32_t got = run_decode(jb, fn, ctx, NULL, 0, n, jb->dec, n);
    if (got < 0) {
        memset(jb->dec, 0, sizeof(int16_t) * (size_t)n * jb->ch);
        got = n;
    }
    sync_append(jb, jb->dec, got);
    jb->generated += got;
    if (cng) {
        jb->st.generated_noise_samples += got;
        end_concealment(jb);
        jb->last_mode = CP_JB_OP_CNG;
        return;
    }
    jb->st.concealed_samples += got;
    if (rms_of(jb->dec, got * jb->ch) < jb->c.silence_rms) jb->st.silent_concealed_samples += got;
    if (!jb->concealing) {
        jb->concealing = 1;
        jb->st.concealment_events++;
    }
    jb->event_ms += got / jb->fs_khz;
    jb->expand_run_ms += got / jb->fs_khz;
    jb->last_mode = CP_JB_OP_EXPAND;
}

static void add_mark(cp_jb *jb, const pkt_t *p, int32_t pos, int32_t n) {
    if (jb->nmarks >= MAX_MARKS) return;
    mark_t *m = &jb->marks[jb->nmarks++];
    m->id = p->id;
    m->pos = pos;
    m->n = n;
    m->arrival = p->arrival;
}

/* Decode the front packet into the sync buffer (normal, merge, or the first after CNG). */
static void decode_front(cp_jb *jb, cp_jb_decode_fn fn, void *ctx) {
    pkt_t *p = jb->pk[0];
    pkt_remove_front(jb);
    int32_t room = jb->sync_cap - jb->sync_len;
    if (room > jb->dec_cap) room = jb->dec_cap;
    int32_t n = run_decode(jb, fn, ctx, p, 0, 0, jb->dec, room);
    jb->play_ts = p->ts + p->dur;
    if (n < 0) {
        jb->st.decode_errors++;
        int32_t want = (p->dur + jb->unit - 1) / jb->unit * jb->unit;
        do_conceal(jb, fn, ctx, want, 0);
        jb->generated = 0;
        pkt_release(jb, p);
        return;
    }
    add_mark(jb, p, jb->sync_len, n);
    sync_append(jb, jb->dec, n);
    jb->generated = 0;
    end_concealment(jb);
    jb->last_mode = p->dtx ? CP_JB_OP_CNG : CP_JB_OP_NORMAL;
    pkt_release(jb, p);
}

static void do_fec(cp_jb *jb, cp_jb_decode_fn fn, void *ctx) {
    pkt_t *p = jb->pk[0];
    int32_t gap = (int32_t)(p->ts - jb->play_ts);
    int32_t n = run_decode(jb, fn, ctx, p, 1, gap, jb->dec, gap);
    if (n < 0) { /* no usable FEC: conceal */
        do_conceal(jb, fn, ctx, gap, 0);
        jb->play_ts = p->ts;
        jb->generated = 0;
        return;
    }
    sync_append(jb, jb->dec, n);
    jb->play_ts = p->ts;
    jb->generated = 0;
    jb->st.fec_recovered_frames++;
    jb->st.fec_recovered_samples += n;
    end_concealment(jb);
    jb->last_mode = CP_JB_OP_NORMAL;
}

/* ---- time stretch (pitch-synchronous overlap-add) ------------------------------------------ */
int32_t cp_jb_time_stretch(const int16_t *in, int32_t n, int32_t ch, int32_t fs, int32_t expand,
                           double thr, double silence_rms, int16_t *out, int32_t out_cap,
                           int32_t *changed, double *corr) {
    if (changed) *changed = 0;
    if (corr) *corr = 0.0;
    int32_t w30 = fs * 3 / 100, maxl = fs * 15 / 1000, minl = fs / 400;
    if (!in || !out || !rate_ok(fs) || ch < 1 || ch > CP_JB_MAX_CHANNELS || n < w30 ||
        out_cap < n + maxl)
        return CP_JB_EINVAL;
    int32_t d = fs / 4000;
    double m[48000 * 3 / 100]; /* 30 ms mono mix at the highest rate */
    for (int32_t i = 0; i < w30; i++) {
        double s = 0;
        for (int32_t c = 0; c < ch; c++) s += in[i * ch + c];
        m[i] = s / ch;
    }
    /* coarse pitch search at 4 kHz: lags 10..60 (2.5..15 ms), correlation length 50 */
    double x4[120];
    for (int32_t i = 0; i < 120; i++) {
        double s = 0;
        for (int32_t k = 0; k < d; k++) s += m[i * d + k];
        x4[i] = s / d;
    }
    double e0 = 0;
    for (int32_t i = 0; i < 50; i++) e0 += x4[i] * x4[i];
    int32_t lag4 = 10;
    double best4 = -2.0;
    for (int32_t lag = 10; lag <= 60; lag++) {
        double xy = 0, e1 = 0;
        for (int32_t i = 0; i < 50; i++) {
            xy += x4[i] * x4[i + lag];
            e1 += x4[i + lag] * x4[i + lag];
        }
        double c = (e0 > 0 && e1 > 0) ? xy / sqrt(e0 * e1) : 0.0;
        if (c > best4 + 1e-9) {
            best4 = c;
            lag4 = lag;
        }
    }
    /* refine at the full rate: normalized correlation of two consecutive periods */
    int32_t lo = lag4 * d - d, hi = lag4 * d + d;
    if (lo < minl) lo = minl;
    if (hi > maxl) hi = maxl;
    int32_t best_l = lo;
    double best_c = -2.0, best_e = 0.0;
    for (int32_t l = lo; l <= hi; l++) {
        double xy = 0, ea = 0, eb = 0;
        for (int32_t i = 0; i < l; i++) {
            xy += m[i] * m[i + l];
            ea += m[i] * m[i];
            eb += m[i + l] * m[i + l];
        }
        double c = (ea > 0 && eb > 0) ? xy / sqrt(ea * eb) : 0.0;
        if (c > best_c) {
            best_c = c;
            best_l = l;
            best_e = (ea + eb) / (2.0 * l);
        }
    }
    if (corr) *corr = best_c;
    int32_t l = best_l;
    if (!(best_c >= thr || sqrt(best_e) < silence_rms)) {
        memmove(out, in, sizeof(int16_t) * (size_t)n * ch);
        return n;
    }
    if (!expand) {
        /* y = crossfade(A -> B) ++ x[2L..n): removes L samples */
        for (int32_t i = 0; i < l; i++)
            for (int32_t c = 0; c < ch; c++) {
                double a = in[i * ch + c], b = in[(i + l) * ch + c];
                out[i * ch + c] = (int16_t)lrint((a * (l - i) + b * i) / l);
            }
        memmove(out + (size_t)l * ch, in + (size_t)2 * l * ch, sizeof(int16_t) * (size_t)(n - 2 * l) * ch);
        if (changed) *changed = l;
        return n - l;
    }
    /* y = x[0..L) ++ crossfade(B -> A) ++ x[L..n): inserts L samples */
    memmove(out, in, sizeof(int16_t) * (size_t)l * ch);
    for (int32_t i = 0; i < l; i++)
        for (int32_t c = 0; c < ch; c++) {
            double a = in[i * ch + c], b = in[(i + l) * ch + c];
            out[(l + i) * ch + c] = (int16_t)lrint((b * (l - i) + a * i) / l);
        }
    memmove(out + (size_t)2 * l * ch, in + (size_t)l * ch, sizeof(int16_t) * (size_t)(n - l) * ch);
    if (changed) *changed = l;
    return n + l;
}

/* ---- decisions ------------------------------------------------------------------------------ */
static double buffer_span_ms(const cp_jb *jb, double now, int with_wait) {
    if (jb->npk == 0) return 0.0;
    const pkt_t *first = jb->pk[0], *last = jb->pk[jb->npk - 1];
    double span = (double)(last->ts + last->dur - first->ts) / jb->fs_khz;
    if (with_wait && now > first->arrival) span += now - first->arrival;
    return span;
}

static double playout_delay_ms(const cp_jb *jb, double now) {
    double ts_ms = (double)(jb->play_ts - jb->sync_len) / jb->fs_khz;
    return rel_delay(jb, ts_ms, now);
}

static int decide(cp_jb *jb, double now, int allow_stretch, int have_decoder) {
    const cp_jb_config *c = &jb->c;
    if (jb->npk == 0) return jb->last_mode == CP_JB_OP_CNG ? CP_JB_OP_CNG : CP_JB_OP_EXPAND;
    const pkt_t *next = jb->pk[0];
    double target = jb->target_ms;
    int after_conceal = jb->last_mode == CP_JB_OP_EXPAND || jb->last_mode == CP_JB_OP_CNG;
    if (after_conceal && !next->dtx &&
        buffer_span_ms(jb, now, 1) < c->postpone_decoding_level * target) {
        if (jb->last_mode == CP_JB_OP_CNG && c->stable_delay_mode) return CP_JB_OP_CNG;
        /* (not when late packets are discarded: waiting would make the waiting ones late) */
        if (jb->last_mode == CP_JB_OP_EXPAND && jb->expand_run_ms > c->expand_mute_ms &&
            !c->discard_late_packets)
            return CP_JB_OP_EXPAND;
    }
    if (next->ts == jb->play_ts) {
        if (allow_stretch && c->allow_time_stretching && jb->last_mode != CP_JB_OP_EXPAND) {
            double pd = playout_delay_ms(jb, now);
            double low = target;
            double high = low + (c->stable_delay_mode ? jb->max_rel : 0.0) + c->dead_band_extra_ms;
            if (pd >= c->fast_accelerate_factor * high)
                return c->enable_fast_accelerate ? CP_JB_OP_FAST_ACCELERATE : CP_JB_OP_ACCELERATE;
            if (jb->ticks_since_stretch >= c->min_timescale_interval_ticks) {
                if (pd >= high) return CP_JB_OP_ACCELERATE;
                if (pd < low) return CP_JB_OP_PREEMPTIVE_EXPAND;
            }
        }
        return CP_JB_OP_NORMAL;
    }
    int64_t leap = next->ts - jb->play_ts;
    if (leap > 5 * (int64_t)c->sample_rate) return CP_JB_OP_MERGE; /* a jump: resynchronise */
    if (c->use_fec && have_decoder && jb->last_mode != CP_JB_OP_CNG && leap == next->dur && next->len > 2 &&
        !next->dtx)
        return CP_JB_OP_FEC;
    double span = buffer_span_ms(jb, now, 0);
    double hi = target + c->target_level_window_ms / 2;
    double lo = target - c->target_level_window_ms / 2;
    if (lo < 0) lo = 0;
    int too_early = leap > jb->generated;
    if ((too_early && span <= hi) || (span < lo && !c->stable_delay_mode))
        return jb->last_mode == CP_JB_OP_CNG ? CP_JB_OP_CNG : CP_JB_OP_EXPAND;
    if (jb->last_mode == CP_JB_OP_CNG) {
        double pdn = rel_delay(jb, (double)next->ts / jb->fs_khz, now);
        if ((!too_early && pdn >= lo) || pdn > hi) return CP_JB_OP_NORMAL;
        return CP_JB_OP_CNG;
    }
    if (jb->last_mode == CP_JB_OP_EXPAND) return CP_JB_OP_MERGE;
    return CP_JB_OP_EXPAND;
}

static void shift_marks_after(cp_jb *jb, int32_t from, int32_t delta) {
    for (int32_t i = 0; i < jb->nmarks; i++)
        if (jb->marks[i].pos >= from) jb->marks[i].pos += delta;
}

static int do_stretch(cp_jb *jb, cp_jb_decode_fn fn, void *ctx, int op) {
    int32_t need = jb->c.sample_rate * 3 / 100;
    while (jb->sync_len < need && jb->npk > 0 && jb->pk[0]->ts == jb->play_ts && !jb->pk[0]->dtx &&
           !jb->fatal)
        decode_front(jb, fn, ctx);
    if (jb->sync_len < need || jb->last_mode != CP_JB_OP_NORMAL) return CP_JB_OP_NORMAL;
    int expand = op == CP_JB_OP_PREEMPTIVE_EXPAND;
    double thr = op == CP_JB_OP_FAST_ACCELERATE ? jb->c.fast_accelerate_corr_threshold
                                                : jb->c.time_stretch_corr_threshold;
    if (jb->sync_len + jb->c.sample_rate * 15 / 1000 > jb->scratch_cap) return CP_JB_OP_NORMAL;
    int32_t changed = 0;
    int32_t n = cp_jb_time_stretch(jb->sync, jb->sync_len, jb->ch, jb->c.sample_rate, expand, thr,
                                   jb->c.silence_rms, jb->scratch, jb->scratch_cap, &changed, NULL);
    if (n < 0 || changed == 0) return CP_JB_OP_NORMAL;
    if (n > jb->sync_cap) return CP_JB_OP_NORMAL;
    memcpy(jb->sync, jb->scratch, sizeof(int16_t) * (size_t)n * jb->ch);
    jb->sync_len = n;
    jb->ticks_since_stretch = 0;
    if (expand) {
        shift_marks_after(jb, changed, changed);
        jb->st.inserted_samples_for_deceleration += changed;
        jb->st.preemptive_expand_count++;
    } else {
        for (int32_t i = 0; i < jb->nmarks; i++) {
            mark_t *m = &jb->marks[i];
            if (m->pos >= changed) m->pos -= changed; /* [L, 2L) now lies in the crossfade */
        }
        jb->st.removed_samples_for_acceleration += changed;
        jb->st.accelerate_count++;
    }
    return op;
}

static int perform(cp_jb *jb, int op, cp_jb_decode_fn fn, void *ctx) {
    int32_t short_by = jb->tick - jb->sync_len;
    int32_t conceal = short_by > 0 ? (short_by + jb->unit - 1) / jb->unit * jb->unit : jb->unit;
    switch (op) {
    case CP_JB_OP_ACCELERATE:
    case CP_JB_OP_FAST_ACCELERATE:
    case CP_JB_OP_PREEMPTIVE_EXPAND: return do_stretch(jb, fn, ctx, op);
    case CP_JB_OP_NORMAL:
    case CP_JB_OP_MERGE: {
        int was_conceal = jb->last_mode == CP_JB_OP_EXPAND;
        decode_front(jb, fn, ctx);
        return (op == CP_JB_OP_MERGE || was_conceal) ? CP_JB_OP_MERGE : CP_JB_OP_NORMAL;
    }
    case CP_JB_OP_FEC: do_fec(jb, fn, ctx); return CP_JB_OP_FEC;
    case CP_JB_OP_CNG: do_conceal(jb, fn, ctx, conceal, 1); return CP_JB_OP_CNG;
    default:
        if (jb->npk > 0 && jb->pk[0]->ts > jb->play_ts) {
            /* a later packet is waiting: conceal no more than the gap still uncovered */
            int64_t left = jb->pk[0]->ts - jb->play_ts - jb->generated;
            if (left > 0 && left < conceal) conceal = (int32_t)((left + jb->unit - 1) / jb->unit * jb->unit);
        }
        do_conceal(jb, fn, ctx, conceal, 0);
        return CP_JB_OP_EXPAND;
    }
}

static void playout_push(cp_jb *jb, const mark_t *m, double t) {
    cp_jb_playout *r;
    if (jb->played_count < PLAYOUT_RING) {
        r = &jb->played[(jb->played_head + jb->played_count) % PLAYOUT_RING];
        jb->played_count++;
    } else { /* full: the oldest record is overwritten */
        r = &jb->played[jb->played_head];
        jb->played_head = (jb->played_head + 1) % PLAYOUT_RING;
    }
    r->id = m->id;
    r->playout_ms = t;
    r->arrival_ms = m->arrival;
}

static void emit(cp_jb *jb, double now, int16_t *out) {
    int32_t t = jb->tick, ch = jb->ch;
    if (jb->sync_len < t) { /* cannot happen after tick_fill; keep the output defined anyway */
        memset(jb->sync + (size_t)jb->sync_len * ch, 0, sizeof(int16_t) * (size_t)(t - jb->sync_len) * ch);
        jb->sync_len = t;
    }
    memcpy(out, jb->sync, sizeof(int16_t) * (size_t)t * ch);
    memmove(jb->sync, jb->sync + (size_t)t * ch, sizeof(int16_t) * (size_t)(jb->sync_len - t) * ch);
    jb->sync_len -= t;
    int32_t k = 0;
    for (int32_t i = 0; i < jb->nmarks; i++) {
        mark_t *m = &jb->marks[i];
        if (m->pos < t) {
            double when = now + (m->pos > 0 ? m->pos : 0) / jb->fs_khz;
            playout_push(jb, m, when);
            jb->st.packets_played++;
            jb->st.jitter_buffer_delay_s += (when - m->arrival) / 1000.0 * m->n;
            jb->st.jitter_buffer_target_delay_s += jb->target_ms / 1000.0 * m->n;
            jb->st.jitter_buffer_minimum_delay_s += jb->unlimited_ms / 1000.0 * m->n;
            jb->st.jitter_buffer_emitted_count += m->n;
        } else {
            m->pos -= t;
            jb->marks[k++] = *m;
        }
    }
    jb->nmarks = k;
    jb->st.total_samples_received += t;
}

int cp_jb_pull(cp_jb *jb, double now_ms, cp_jb_decode_fn fn, void *ctx, int16_t *out,
               int32_t out_samples) {
    if (!jb || !out || now_ms != now_ms || out_samples != jb->tick * jb->ch) return CP_JB_EINVAL;
    jb->fatal = 0;
    jb->ticks_since_stretch++;
    /* packets whose time has passed (NetEq DiscardOldPackets) */
    if (jb->started && !jb->resync && jb->npk > 0) {
        int64_t point = playout_point(jb);
        /* with discard_late_packets, late_resync_packets late arrivals in a row and nothing on
         * time: the delay has grown for good (a route change, a queue), so the timeline moves
         * to the newest of them instead of concealing on */
        const pkt_t *newest = jb->pk[jb->npk - 1];
        int keep = jb->c.discard_late_packets && newest->ts < point && newest->ts >= jb->play_ts &&
                   jb->late_run >= jb->c.late_resync_packets;
        while (jb->npk > keep && jb->pk[0]->ts < point && !mergeable(jb, jb->pk[0]->ts)) {
            pkt_release(jb, jb->pk[0]);
            pkt_remove_front(jb);
            jb->st.packets_discarded++;
            jb->st.packets_late++;
        }
        if (keep) {
            jb->play_ts = jb->pk[0]->ts;
            jb->generated = 0;
            jb->late_run = 0;
            jb->st.late_resyncs++;
        }
    }
    if (!jb->started) {
        if (jb->npk > 0 && buffer_span_ms(jb, now_ms, 1) >= jb->c.postpone_decoding_level * jb->target_ms) {
            jb->started = 1;
            jb->resync = 1;
        } else {
            memset(out, 0, sizeof(int16_t) * (size_t)out_samples);
            jb->last_mode = CP_JB_OP_NORMAL;
            jb->last_op = CP_JB_OP_IDLE;
            jb->last_now = now_ms;
            return CP_JB_OP_IDLE;
        }
    }
    if (jb->resync && jb->npk > 0) {
        jb->play_ts = jb->pk[0]->ts;
        jb->resync = 0;
        jb->generated = 0;
        if (jb->last_mode == CP_JB_OP_EXPAND) jb->last_mode = CP_JB_OP_NORMAL;
    }
    int main_op = -1;
    for (int guard = 0; jb->sync_len < jb->tick || main_op < 0; guard++) {
        int d = decide(jb, now_ms, main_op < 0, fn != NULL);
        int stretch = d == CP_JB_OP_ACCELERATE || d == CP_JB_OP_FAST_ACCELERATE ||
                      d == CP_JB_OP_PREEMPTIVE_EXPAND;
        if (main_op < 0 && jb->sync_len >= jb->tick && !stretch) {
            main_op = CP_JB_OP_NORMAL;
            break;
        }
        int done = perform(jb, d, fn, ctx);
        if (main_op < 0) main_op = done;
        if (jb->fatal || guard > 64) break;
    }
    if (main_op == CP_JB_OP_EXPAND) jb->st.expand_count++;
    emit(jb, now_ms, out);
    jb->last_op = main_op;
    jb->last_now = now_ms;
    if (jb->fatal) return CP_JB_EFATAL;
    return main_op;
}

/* ---- stats --------------------------------------------------------------------------------- */
void cp_jb_get_stats(const cp_jb *jb, cp_jb_stats *st) {
    if (!jb || !st) return;
    *st = jb->st;
    st->packets_lost = jb->have_seq ? (jb->max_seq - jb->base_seq + 1) - jb->st.packets_received : 0;
    if (st->packets_lost < 0) st->packets_lost = 0;
    if (jb->concealing && jb->event_ms >= 150.0) { /* an interruption still running counts */
        st->interruption_count++;
        st->total_interruption_duration_ms += jb->event_ms;
    }
}

void cp_jb_get_state(const cp_jb *jb, cp_jb_state *s) {
    if (!jb || !s) return;
    s->target_delay_ms = jb->target_ms;
    s->unlimited_target_delay_ms = jb->unlimited_ms;
    s->playout_delay_ms = jb->started ? playout_delay_ms(jb, jb->last_now) : 0.0;
    s->max_history_delay_ms = jb->max_rel;
    s->packets_buffered = jb->npk;
    s->sync_samples = jb->sync_len;
    s->last_op = jb->last_op;
    s->started = jb->started;
    s->next_timestamp = jb->play_ts;
}

int32_t cp_jb_take_playouts(cp_jb *jb, cp_jb_playout *out, int32_t max) {
    if (!jb || !out || max <= 0) return 0;
    int32_t n = jb->played_count < max ? jb->played_count : max;
    for (int32_t i = 0; i < n; i++) out[i] = jb->played[(jb->played_head + i) % PLAYOUT_RING];
    jb->played_head = (jb->played_head + n) % PLAYOUT_RING;
    jb->played_count -= n;
    return n;
}

/* ---- built-in Opus decoding ----------------------------------------------------------------- */
struct cp_jb_opus {
    OpusDecoder *st;
    int32_t unit, max;        /* 2.5 ms and 120 ms in samples per channel */
    int64_t failures;
    int32_t last_code, last_kind, last_len;
};

int cp_jb_opus_new(cp_jb_opus **out, int32_t sample_rate, int32_t channels) {
    if (!out) return CP_JB_EINVAL;
    *out = NULL;
    if ((sample_rate != 8000 && sample_rate != 12000 && sample_rate != 16000 &&
         sample_rate != 24000 && sample_rate != 48000) ||
        channels < 1 || channels > 2)
        return CP_JB_EINVAL;
    cp_jb_opus *d = calloc(1, sizeof *d);
    if (!d) return CP_JB_ENOMEM;
    int err = OPUS_OK;
    d->st = opus_decoder_create(sample_rate, channels, &err);
    if (!d->st || err != OPUS_OK) {
        if (d->st) opus_decoder_destroy(d->st);
        free(d);
        return err == OPUS_ALLOC_FAIL ? CP_JB_ENOMEM : CP_JB_EINVAL;
    }
    d->unit = sample_rate / 400;
    d->max = CP_JB_MAX_PACKET_MS * sample_rate / 1000;
    *out = d;
    return CP_JB_OK;
}

void cp_jb_opus_free(cp_jb_opus *d) {
    if (!d) return;
    opus_decoder_destroy(d->st);
    free(d);
}

static int32_t opus_failed(cp_jb_opus *d, int32_t code, int32_t kind, int32_t len) {
    d->failures++;
    d->last_code = code;
    d->last_kind = kind;
    d->last_len = len;
    return -1;
}

int32_t cp_jb_opus_decode(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                          int32_t want, int16_t *pcm, int32_t cap) {
    cp_jb_opus *d = ctx;
    if (!d || !pcm || cap <= 0) return -1;
    if (!payload || fec) { /* concealment or FEC: exactly `want` samples, a multiple of 2.5 ms */
        int32_t kind = payload ? CP_JB_OPUS_FEC : CP_JB_OPUS_PLC;
        if (payload && len <= 0) return opus_failed(d, OPUS_INVALID_PACKET, kind, len);
        if (want <= 0 || want % d->unit || want > d->max || want > cap)
            return opus_failed(d, OPUS_BAD_ARG, kind, len);
        int rc = opus_decode(d->st, payload, payload ? len : 0, pcm, want, payload ? 1 : 0);
        return rc < 0 ? opus_failed(d, rc, kind, len) : rc;
    }
    if (len <= 0) return opus_failed(d, OPUS_INVALID_PACKET, CP_JB_OPUS_DECODE, len);
    int n = opus_decoder_get_nb_samples(d->st, payload, len);
    if (n < 0) return opus_failed(d, n, CP_JB_OPUS_DECODE, len);
    if (n > cap) return opus_failed(d, OPUS_BUFFER_TOO_SMALL, CP_JB_OPUS_DECODE, len);
    int rc = opus_decode(d->st, payload, len, pcm, n, 0);
    return rc < 0 ? opus_failed(d, rc, CP_JB_OPUS_DECODE, len) : rc;
}

int64_t cp_jb_opus_failures(const cp_jb_opus *d, int32_t *last_code, int32_t *last_kind,
                            int32_t *last_len) {
    if (!d) return 0;
    if (last_code) *last_code = d->last_code;
    if (last_kind) *last_kind = d->last_kind;
    if (last_len) *last_len = d->last_len;
    return d->failures;
}

const char *cp_jb_opus_strerror(int32_t code) {
    return opus_strerror(code);
}
