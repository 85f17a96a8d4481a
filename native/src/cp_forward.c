/* The SFU's media fast path: batched UDP I/O and the per-packet routing table.
 * The contract is in native/include/callpipe/cp_forward.h; the wire conventions in
 * src/callpipe/net/udp.py.
 *
 * Bit layouts read here (only what routing needs; full parsers live in cp_rtp.c / cp_rtcp.c):
 *
 *   RTP fixed header (RFC 3550 5.1)
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   |                           timestamp                           |
 *   |                             SSRC                              |
 *   |            CSRC list (CC x 32 bits) ...                       |
 *   |   profile (0xBEDE / 0x100X)   |     length (32-bit words)     |  if X
 *   |                 extension elements ...                        |
 *
 *   RTCP common header (RFC 3550 6.4): V=2 P RC | PT 192..223 | length | sender SSRC
 *
 *   Frame marking, RFC 9626 (first byte):  S E I D B TID(3)
 *   VP8 payload descriptor, RFC 7741 4.2:
 *     X R N S R PID(3) | [I L T K RSV] | [M PictureID(7/15)] | [TL0PICIDX] | [TID(2) Y KEYIDX(5)]
 *   Audio level, RFC 6464:  V level(7)
 */
#define _GNU_SOURCE
#include "callpipe/cp_forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint8_t HELLO_MAGIC[4] = {'C', 'P', 'H', '1'};
static const uint8_t HELLO_REPLY[CP_FWD_REPLY_LEN] = {'C', 'P', 'H', '1', 'O', 'K'};

enum { OUT_CAP = 1024, EVENT_CAP = 1024, EVENT_BYTES = 512 * 1024, WINDOW_WORDS = 16,
       STALE_RESYNC = 32, MAX_DROPOUT = 3000, MAX_MISORDER = 100 };

typedef struct link {
    int32_t receiver;
    uint8_t max_tid;   /* target */
    uint8_t cur_tid;   /* in effect (changes at frame starts) */
    uint8_t enabled;
    uint8_t waiting;   /* for a keyframe */
    uint8_t notified;  /* KEYFRAME_WAIT event sent for this wait */
    uint8_t started;
    uint16_t highest;  /* newest input seq seen */
    uint16_t offset;   /* D(highest) mod 2^16 */
    uint16_t span;     /* input seqs seen in the window, capped at CP_FWD_SEQ_WINDOW */
    uint32_t stale;
    uint64_t drops[WINDOW_WORDS];  /* input seqs dropped (numbered out of the stream) */
    uint64_t holes[WINDOW_WORDS];  /* late input seqs dropped after their number was given */
    uint64_t forwarded, dropped;
} link_t;

typedef struct source {
    uint32_t ssrc;
    int32_t owner;   /* -1: free slot */
    uint8_t kind, layer, has_fm;
    uint32_t clock_rate;
    uint64_t packets, bytes, keyframes, layer_bytes[8];
    uint64_t level_sum, level_count, voice_count;
    /* RFC 3550 A.1 / A.3 / A.8 */
    uint8_t started, has_transit;
    uint16_t max_seq;
    uint32_t cycles, base_seq, bad_seq, received, expected_prior, received_prior;
    int32_t transit;
    double jitter;
    /* NACK cache */
    uint8_t *cache;
    uint16_t *cache_len, *cache_seq;
    uint8_t *cache_meta;  /* 0x80 valid | tid */
    link_t *links;
    uint32_t n_links, cap_links;
} source_t;

typedef struct part {
    uint8_t used, has_addr;
    uint32_t room;
    uint8_t token[CP_FWD_TOKEN_LEN];
    cp_fwd_addr addr;
    double tok_p, tok_b;
    uint64_t last_us;
    cp_fwd_participant_stats st;
} part_t;

typedef struct out_entry {
    const uint8_t *data;
    uint32_t len;
    int32_t dest;
    uint8_t hdr[4];
    uint8_t rewrite;
} out_t;

struct cp_fwd {
    cp_fwd_config cfg;
    part_t *parts;
    source_t *sources;
    uint32_t *free_sources, n_free_sources;
    uint32_t *hash, hash_mask;  /* source index + 1; 0 empty */
    uint32_t cache_mask;
    cp_fwd_counters c;
    out_t *out;
    uint32_t n_out;
    cp_fwd_event *events;
    uint32_t n_events;
    uint8_t *evbuf;
    uint32_t evbuf_len;
    int last_errno;
    /* batched I/O buffers */
    uint8_t *rbuf;
    struct sockaddr_storage *raddr;
    struct iovec *riov;
    struct iovec *siov;
#ifdef __linux__
    struct mmsghdr *rmsg;
    struct mmsghdr *smsg;
#endif
};

/* ------------------------------------------------------------------------------ helpers */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline int16_t seq_diff(uint16_t a, uint16_t b) { return (int16_t)(uint16_t)(a - b); }

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double now_s(void) { return (double)now_us() / 1e6; }

static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline int addr_eq(const cp_fwd_addr *a, const cp_fwd_addr *b) {
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* ------------------------------------------------------------------------------ lifetime */

void cp_fwd_config_default(cp_fwd_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_participants = 1024;
    cfg->max_sources = 8192;
    cfg->cache_packets = 512;
    cfg->batch = 64;
    cfg->audio_level_id = 1;
    cfg->frame_marking_id = 2;
    cfg->rate_packets = 2000.0;
    cfg->burst_packets = 500.0;
    cfg->rate_bytes = 4e6;
    cfg->burst_bytes = 1e6;
}

void cp_fwd_free(cp_fwd *t) {
    if (!t) return;
    if (t->sources) {
        for (uint32_t i = 0; i < t->cfg.max_sources; i++) {
            source_t *s = &t->sources[i];
            free(s->cache);
            free(s->cache_len);
            free(s->cache_seq);
            free(s->cache_meta);
            free(s->links);
        }
    }
    free(t->parts);
    free(t->sources);
    free(t->free_sources);
    free(t->hash);
    free(t->out);
    free(t->events);
    free(t->evbuf);
    free(t->rbuf);
    free(t->raddr);
    free(t->riov);
    free(t->siov);
#ifdef __linux__
    free(t->rmsg);
    free(t->smsg);
#endif
    free(t);
}

cp_fwd *cp_fwd_new(const cp_fwd_config *cfg, int *status) {
    int dummy;
    if (!status) status = &dummy;
    if (!cfg || cfg->max_participants < 1 || cfg->max_participants > 65536 ||
        cfg->max_sources < 1 || cfg->max_sources > (1u << 20) || cfg->batch < 1 ||
        cfg->batch > CP_FWD_MAX_BATCH || cfg->cache_packets > (1u << 16) ||
        cfg->rate_packets < 0 || cfg->rate_bytes < 0 ||
        cfg->burst_packets < 0 || cfg->burst_bytes < 0 ||
        (cfg->audio_level_id && cfg->audio_level_id == cfg->frame_marking_id)) {
        *status = CP_FWD_ERR_ARG;
        return NULL;
    }
    cp_fwd *t = calloc(1, sizeof *t);
    if (!t) {
        *status = CP_FWD_ERR_NOMEM;
        return NULL;
    }
    t->cfg = *cfg;
    uint32_t cache = 0;
    if (cfg->cache_packets) {
        cache = 1;
        while (cache < cfg->cache_packets) cache <<= 1;
    }
    t->cfg.cache_packets = cache;
    t->cache_mask = cache ? cache - 1 : 0;
    uint32_t hsize = 4;
    while (hsize < 2 * cfg->max_sources) hsize <<= 1;
    t->hash_mask = hsize - 1;
    uint32_t b = cfg->batch;
    t->parts = calloc(cfg->max_participants, sizeof *t->parts);
    t->sources = calloc(cfg->max_sources, sizeof *t->sources);
    t->free_sources = calloc(cfg->max_sources, sizeof *t->free_sources);
    t->hash = calloc(hsize, sizeof *t->hash);
    t->out = calloc(OUT_CAP, sizeof *t->out);
    t->events = calloc(EVENT_CAP, sizeof *t->events);
    t->evbuf = malloc(EVENT_BYTES);
    t->rbuf = malloc((size_t)b * CP_FWD_SLOT_BYTES);
    t->raddr = calloc(b, sizeof *t->raddr);
    t->riov = calloc(b, sizeof *t->riov);
    t->siov = calloc(2 * OUT_CAP, sizeof *t->siov);
#ifdef __linux__
    t->rmsg = calloc(b, sizeof *t->rmsg);
    t->smsg = calloc(OUT_CAP, sizeof *t->smsg);
    int io_ok = t->rmsg && t->smsg;
#else
    int io_ok = 1;
#endif
    if (!t->parts || !t->sources || !t->free_sources || !t->hash || !t->out || !t->events ||
        !t->evbuf || !t->rbuf || !t->raddr || !t->riov || !t->siov || !io_ok) {
        cp_fwd_free(t);
        *status = CP_FWD_ERR_NOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < cfg->max_sources; i++) {
        t->sources[i].owner = -1;
        t->free_sources[i] = cfg->max_sources - 1 - i;  /* pop gives slot 0 first */
    }
    t->n_free_sources = cfg->max_sources;
    *status = CP_FWD_OK;
    return t;
}

int cp_fwd_last_errno(const cp_fwd *t) { return t ? t->last_errno : 0; }

/* ------------------------------------------------------------------------------ SSRC hash */

static int32_t find_source(const cp_fwd *t, uint32_t ssrc) {
    uint32_t i = mix32(ssrc) & t->hash_mask;
    for (;;) {
        uint32_t v = t->hash[i];
        if (v == 0) return -1;
        if (t->sources[v - 1].ssrc == ssrc) return (int32_t)(v - 1);
        i = (i + 1) & t->hash_mask;
    }
}

static void hash_insert(cp_fwd *t, uint32_t ssrc, uint32_t index) {
    uint32_t i = mix32(ssrc) & t->hash_mask;
    while (t->hash[i]) i = (i + 1) & t->hash_mask;
    t->hash[i] = index + 1;
}

static void hash_delete(cp_fwd *t, uint32_t ssrc) {
    uint32_t m = t->hash_mask, i = mix32(ssrc) & m;
    while (t->hash[i] && t->sources[t->hash[i] - 1].ssrc != ssrc) i = (i + 1) & m;
    if (!t->hash[i]) return;
    t->hash[i] = 0;
    /* backward-shift deletion: pull later entries of the probe run into the hole */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        if (!t->hash[j]) return;
        uint32_t home = mix32(t->sources[t->hash[j] - 1].ssrc) & m;
        /* the entry at j may move to i when its home is not cyclically in (i, j] */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->hash[i] = t->hash[j];
            t->hash[j] = 0;
            i = j;
        }
    }
}

/* ------------------------------------------------------------------------------ membership */

static int valid_part(const cp_fwd *t, int32_t slot) {
    return slot >= 0 && (uint32_t)slot < t->cfg.max_participants && t->parts[slot].used;
}

static link_t *find_link(const source_t *s, int32_t receiver) {
    for (uint32_t i = 0; i < s->n_links; i++)
        if (s->links[i].receiver == receiver) return &s->links[i];
    return NULL;
}

static void link_init(cp_fwd *t, const source_t *s, link_t *l, int32_t receiver) {
    memset(l, 0, sizeof *l);
    l->receiver = receiver;
    l->max_tid = CP_FWD_ALL_LAYERS;
    l->cur_tid = CP_FWD_ALL_LAYERS;
    l->enabled = 1;
    l->waiting = (uint8_t)(s->kind == CP_FWD_VIDEO && s->has_fm && t->parts[receiver].has_addr);
}

static int link_add(cp_fwd *t, source_t *s, int32_t receiver) {
    if (s->n_links == s->cap_links) {
        uint32_t cap = s->cap_links ? 2 * s->cap_links : 4;
        link_t *n = realloc(s->links, (size_t)cap * sizeof *n);
        if (!n) return CP_FWD_ERR_NOMEM;
        s->links = n;
        s->cap_links = cap;
    }
    link_init(t, s, &s->links[s->n_links++], receiver);
    return CP_FWD_OK;
}

static void link_remove(source_t *s, int32_t receiver) {
    for (uint32_t i = 0; i < s->n_links; i++) {
        if (s->links[i].receiver == receiver) {
            s->links[i] = s->links[--s->n_links];
            return;
        }
    }
}

static void source_release(cp_fwd *t, uint32_t index) {
    source_t *s = &t->sources[index];
    hash_delete(t, s->ssrc);
    free(s->cache);
    free(s->cache_len);
    free(s->cache_seq);
    free(s->cache_meta);
    free(s->links);
    memset(s, 0, sizeof *s);
    s->owner = -1;
    t->free_sources[t->n_free_sources++] = index;
}

int cp_fwd_add_participant(cp_fwd *t, uint32_t room, const uint8_t *token, int32_t *slot) {
    if (!t || !token || !slot) return CP_FWD_ERR_ARG;
    for (uint32_t i = 0; i < t->cfg.max_participants; i++) {
        if (t->parts[i].used && memcmp(t->parts[i].token, token, CP_FWD_TOKEN_LEN) == 0)
            return CP_FWD_ERR_EXISTS;
    }
    for (uint32_t i = 0; i < t->cfg.max_participants; i++) {
        part_t *p = &t->parts[i];
        if (p->used) continue;
        memset(p, 0, sizeof *p);
        /* link every source of the room to the newcomer first (all-or-nothing) */
        for (uint32_t k = 0; k < t->cfg.max_sources; k++) {
            source_t *s = &t->sources[k];
            if (s->owner >= 0 && t->parts[s->owner].room == room) {
                int rc = link_add(t, s, (int32_t)i);
                if (rc) {
                    for (uint32_t j = 0; j < k; j++) link_remove(&t->sources[j], (int32_t)i);
                    return rc;
                }
            }
        }
        memset(p, 0, sizeof *p);
        p->used = 1;
        p->room = room;
        memcpy(p->token, token, CP_FWD_TOKEN_LEN);
        p->tok_p = t->cfg.burst_packets;
        p->tok_b = t->cfg.burst_bytes;
        *slot = (int32_t)i;
        return CP_FWD_OK;
    }
    return CP_FWD_ERR_FULL;
}

int cp_fwd_remove_participant(cp_fwd *t, int32_t slot) {
    if (!t || !valid_part(t, slot)) return CP_FWD_ERR_NOT_FOUND;
    for (uint32_t k = 0; k < t->cfg.max_sources; k++) {
        source_t *s = &t->sources[k];
        if (s->owner == slot)
            source_release(t, k);
        else if (s->owner >= 0)
            link_remove(s, slot);
    }
    memset(&t->parts[slot], 0, sizeof t->parts[slot]);
    return CP_FWD_OK;
}

static void on_new_address(cp_fwd *t, int32_t slot) {
    /* a (re)registered receiver needs a keyframe of every video source it gets */
    for (uint32_t k = 0; k < t->cfg.max_sources; k++) {
        source_t *s = &t->sources[k];
        if (s->owner < 0 || s->kind != CP_FWD_VIDEO) continue;
        link_t *l = find_link(s, slot);
        if (l && s->has_fm && l->enabled) {
            l->waiting = 1;
            l->notified = 0;
        }
    }
}

int cp_fwd_set_address(cp_fwd *t, int32_t slot, const cp_fwd_addr *addr) {
    if (!t || !valid_part(t, slot)) return CP_FWD_ERR_NOT_FOUND;
    if (!addr || addr->len > CP_FWD_ADDR_BYTES) return CP_FWD_ERR_ARG;
    part_t *p = &t->parts[slot];
    if (addr->len == 0) {
        p->has_addr = 0;
        p->addr.len = 0;
        return CP_FWD_OK;
    }
    int changed = !p->has_addr || !addr_eq(&p->addr, addr);
    p->addr = *addr;
    p->has_addr = 1;
    if (changed) on_new_address(t, slot);
    return CP_FWD_OK;
}

int cp_fwd_get_address(const cp_fwd *t, int32_t slot, cp_fwd_addr *addr) {
    if (!t || !valid_part(t, slot) || !addr) return CP_FWD_ERR_NOT_FOUND;
    if (t->parts[slot].has_addr)
        *addr = t->parts[slot].addr;
    else
        addr->len = 0;
    return CP_FWD_OK;
}

int cp_fwd_add_source(cp_fwd *t, int32_t owner, uint32_t ssrc, int kind, uint32_t clock_rate,
                      uint8_t layer) {
    if (!t) return CP_FWD_ERR_ARG;
    if (!valid_part(t, owner)) return CP_FWD_ERR_NOT_FOUND;
    if (kind < CP_FWD_AUDIO || kind > CP_FWD_RTX || clock_rate == 0 || clock_rate > 1000000)
        return CP_FWD_ERR_ARG;
    if (find_source(t, ssrc) >= 0) return CP_FWD_ERR_EXISTS;
    if (t->n_free_sources == 0) return CP_FWD_ERR_FULL;
    uint32_t index = t->free_sources[t->n_free_sources - 1];
    source_t *s = &t->sources[index];
    memset(s, 0, sizeof *s);
    s->ssrc = ssrc;
    s->owner = owner;
    s->kind = (uint8_t)kind;
    s->layer = layer;
    s->clock_rate = clock_rate;
    if (kind == CP_FWD_VIDEO && t->cfg.cache_packets) {
        uint32_t n = t->cfg.cache_packets;
        s->cache = malloc((size_t)n * CP_FWD_CACHE_BYTES);
        s->cache_len = calloc(n, sizeof *s->cache_len);
        s->cache_seq = calloc(n, sizeof *s->cache_seq);
        s->cache_meta = calloc(n, 1);
        if (!s->cache || !s->cache_len || !s->cache_seq || !s->cache_meta) goto nomem;
    }
    uint32_t room = t->parts[owner].room;
    for (uint32_t i = 0; i < t->cfg.max_participants; i++) {
        if ((int32_t)i == owner || !t->parts[i].used || t->parts[i].room != room) continue;
        if (link_add(t, s, (int32_t)i)) goto nomem;
    }
    t->n_free_sources--;
    hash_insert(t, ssrc, index);
    return CP_FWD_OK;
nomem:
    free(s->cache);
    free(s->cache_len);
    free(s->cache_seq);
    free(s->cache_meta);
    free(s->links);
    memset(s, 0, sizeof *s);
    s->owner = -1;
    return CP_FWD_ERR_NOMEM;
}

int cp_fwd_source_owner(const cp_fwd *t, uint32_t ssrc, int32_t *owner) {
    if (!t || !owner) return CP_FWD_ERR_ARG;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    *owner = t->sources[i].owner;
    return CP_FWD_OK;
}

int cp_fwd_set_max_tid(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t max_tid) {
    if (!t || !valid_part(t, receiver)) return CP_FWD_ERR_NOT_FOUND;
    if (max_tid > CP_FWD_MAX_TID && max_tid != CP_FWD_ALL_LAYERS) return CP_FWD_ERR_ARG;
    if (ssrc == 0) {  /* every video source the receiver gets */
        for (uint32_t k = 0; k < t->cfg.max_sources; k++) {
            source_t *s = &t->sources[k];
            if (s->owner < 0 || s->kind != CP_FWD_VIDEO) continue;
            link_t *l = find_link(s, receiver);
            if (l) l->max_tid = max_tid;
        }
        return CP_FWD_OK;
    }
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    link_t *l = find_link(&t->sources[i], receiver);
    if (!l) return CP_FWD_ERR_NOT_FOUND;
    l->max_tid = max_tid;
    return CP_FWD_OK;
}

int cp_fwd_set_enabled(cp_fwd *t, int32_t receiver, uint32_t ssrc, int enabled) {
    if (!t || !valid_part(t, receiver)) return CP_FWD_ERR_NOT_FOUND;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    source_t *s = &t->sources[i];
    link_t *l = find_link(s, receiver);
    if (!l) return CP_FWD_ERR_NOT_FOUND;
    if (enabled && !l->enabled && s->kind == CP_FWD_VIDEO && s->has_fm) {
        l->waiting = 1;
        l->notified = 0;
    }
    l->enabled = enabled ? 1 : 0;
    return CP_FWD_OK;
}

int cp_fwd_link_state(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t *max_tid,
                      uint8_t *current_tid, uint8_t *enabled, uint8_t *waiting,
                      uint64_t *forwarded, uint64_t *dropped) {
    if (!t) return CP_FWD_ERR_ARG;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    const link_t *l = find_link(&t->sources[i], receiver);
    if (!l) return CP_FWD_ERR_NOT_FOUND;
    if (max_tid) *max_tid = l->max_tid;
    if (current_tid) *current_tid = l->cur_tid;
    if (enabled) *enabled = l->enabled;
    if (waiting) *waiting = l->waiting;
    if (forwarded) *forwarded = l->forwarded;
    if (dropped) *dropped = l->dropped;
    return CP_FWD_OK;
}

/* ------------------------------------------------------------------------------ events */

static uint8_t *event_add(cp_fwd *t, uint8_t type, int32_t participant, uint32_t ssrc,
                          uint32_t len) {
    if (t->n_events >= EVENT_CAP || (size_t)t->evbuf_len + len > EVENT_BYTES) {
        t->c.events_dropped++;
        return NULL;
    }
    cp_fwd_event *e = &t->events[t->n_events++];
    e->type = type;
    e->participant = participant;
    e->ssrc = ssrc;
    e->offset = t->evbuf_len;
    e->len = len;
    uint8_t *dst = t->evbuf + t->evbuf_len;
    t->evbuf_len += len;
    return dst;
}

uint32_t cp_fwd_event_count(const cp_fwd *t) { return t ? t->n_events : 0; }

int cp_fwd_event_get(const cp_fwd *t, uint32_t i, cp_fwd_event *ev, const uint8_t **data) {
    if (!t || i >= t->n_events || !ev) return CP_FWD_ERR_ARG;
    *ev = t->events[i];
    if (data) *data = t->evbuf + ev->offset;
    return CP_FWD_OK;
}

void cp_fwd_events_clear(cp_fwd *t) {
    if (!t) return;
    t->n_events = 0;
    t->evbuf_len = 0;
}

/* ------------------------------------------------------------------------------ routing */

typedef struct meta {
    uint8_t tid, start, keyframe, sync;
} meta_t;

/* RFC 8285 element `id` in an extension block: pointer and length, or NULL. */
static const uint8_t *find_ext(uint16_t profile, const uint8_t *b, size_t len, uint8_t id,
                               size_t *out_len) {
    size_t i = 0;
    if (profile == 0xBEDE) {
        while (i < len) {
            uint8_t h = b[i];
            if (h == 0) { i++; continue; }  /* padding */
            uint8_t eid = h >> 4;
            size_t l = (size_t)(h & 0x0f) + 1;
            if (eid == 15) return NULL;  /* reserved: stop */
            if (i + 1 + l > len) return NULL;
            if (eid == id) { *out_len = l; return b + i + 1; }
            i += 1 + l;
        }
    } else if ((profile & 0xfff0) == 0x1000) {
        while (i < len) {
            uint8_t eid = b[i];
            if (eid == 0) { i++; continue; }
            if (i + 2 > len) return NULL;
            size_t l = b[i + 1];
            if (i + 2 + l > len) return NULL;
            if (eid == id) { *out_len = l; return b + i + 2; }
            i += 2 + l;
        }
    }
    return NULL;
}

static void vp8_meta(const uint8_t *p, size_t len, meta_t *m) {
    if (len < 1) return;
    uint8_t b0 = p[0];
    m->start = (uint8_t)((b0 & 0x10) && (b0 & 0x07) == 0);
    if (!(b0 & 0x80)) return;
    if (len < 2) return;
    uint8_t b1 = p[1];
    size_t i = 2;
    if (b1 & 0x80) {  /* I: PictureID */
        if (i >= len) return;
        i += (p[i] & 0x80) ? 2 : 1;
    }
    if (b1 & 0x40) i++;  /* L: TL0PICIDX */
    if (b1 & 0x20) {     /* T: TID/Y/KEYIDX byte */
        if (i >= len) return;
        m->tid = p[i] >> 6;
        m->sync = (p[i] >> 5) & 1;
    }
}

static int bucket_take(cp_fwd *t, part_t *p, size_t len, uint64_t now) {
    const cp_fwd_config *c = &t->cfg;
    if (c->rate_packets <= 0 && c->rate_bytes <= 0) return 1;
    double dt = p->last_us && now > p->last_us ? (double)(now - p->last_us) / 1e6 : 0.0;
    p->last_us = now;
    if (c->rate_packets > 0) {
        p->tok_p += dt * c->rate_packets;
        if (p->tok_p > c->burst_packets + 1) p->tok_p = c->burst_packets + 1;
    }
    if (c->rate_bytes > 0) {
        p->tok_b += dt * c->rate_bytes;
        if (p->tok_b > c->burst_bytes + 2048) p->tok_b = c->burst_bytes + 2048;
    }
    if ((c->rate_packets > 0 && p->tok_p < 1.0) || (c->rate_bytes > 0 && p->tok_b < (double)len))
        return 0;
    if (c->rate_packets > 0) p->tok_p -= 1.0;
    if (c->rate_bytes > 0) p->tok_b -= (double)len;
    return 1;
}

static void receive_stats(source_t *s, uint16_t seq, uint32_t ts, uint64_t now) {
    if (!s->started) {
        s->started = 1;
        s->base_seq = seq;
        s->max_seq = seq;
        s->bad_seq = 0x10000u + 1;  /* impossible */
        s->cycles = 0;
        s->received = 0;
        s->expected_prior = s->received_prior = 0;
    } else {
        uint16_t udelta = (uint16_t)(seq - s->max_seq);
        if (udelta < MAX_DROPOUT) {
            if (seq < s->max_seq) s->cycles += 0x10000u;
            s->max_seq = seq;
        } else if (udelta <= 0x10000u - MAX_MISORDER) {
            /* a very large jump: resync if the next packet follows it (RFC 3550 A.1) */
            if (seq == s->bad_seq) {
                s->base_seq = seq;
                s->max_seq = seq;
                s->cycles = 0;
                s->received = 0;
                s->expected_prior = s->received_prior = 0;
                s->has_transit = 0;
            } else {
                s->bad_seq = (uint32_t)((seq + 1) & 0xffff);
                return;
            }
        }
        /* else duplicate or reordered */
    }
    s->received++;
    /* interarrival jitter, RFC 3550 A.8, in timestamp units */
    uint32_t arrival = (uint32_t)((now * (uint64_t)s->clock_rate) / 1000000u);
    int32_t transit = (int32_t)(arrival - ts);
    if (s->has_transit) {
        int32_t d = transit - s->transit;
        if (d < 0) d = -d;
        s->jitter += ((double)d - s->jitter) / 16.0;
    }
    s->transit = transit;
    s->has_transit = 1;
}

static inline int get_bit(const uint64_t *bits, uint16_t seq) {
    uint32_t b = seq & (CP_FWD_SEQ_WINDOW - 1);
    return (int)((bits[b >> 6] >> (b & 63)) & 1u);
}

static inline void set_bit(uint64_t *bits, uint16_t seq, int v) {
    uint32_t b = seq & (CP_FWD_SEQ_WINDOW - 1);
    if (v)
        bits[b >> 6] |= (uint64_t)1 << (b & 63);
    else
        bits[b >> 6] &= ~((uint64_t)1 << (b & 63));
}

static inline int drop_bit(const link_t *l, uint16_t seq) { return get_bit(l->drops, seq); }

static inline void set_drop_bit(link_t *l, uint16_t seq, int v) {
    set_bit(l->drops, seq, v);
    set_bit(l->holes, seq, 0);
}

/* D(s) for an input seq s at most span-1 behind highest: offset minus drops in (s, highest]. */
static uint16_t drops_up_to(const link_t *l, uint16_t s) {
    uint16_t d = l->offset;
    for (uint16_t q = l->highest; q != s; q--)
        if (drop_bit(l, q)) d--;
    return d;
}

/* Whether `l` wants a video packet with `m` now; updates the layer in effect at frame starts. */
static int wants(cp_fwd *t, source_t *s, link_t *l, const meta_t *m, int newest, int *reason) {
    if (!l->enabled) {
        *reason = 1;
        return 0;
    }
    if (newest && m->start) {
        if (l->waiting && m->keyframe) {
            l->waiting = 0;
            l->notified = 0;
        }
        if (l->max_tid < l->cur_tid) {
            l->cur_tid = l->max_tid;
        } else if (l->max_tid > l->cur_tid) {
            if (m->keyframe)
                l->cur_tid = l->max_tid;
            else if (m->sync && m->tid > l->cur_tid && m->tid <= l->max_tid)
                l->cur_tid = m->tid;
        }
    }
    if (l->waiting) {
        if (!l->notified) {
            l->notified = 1;
            event_add(t, CP_FWD_EV_KEYFRAME_WAIT, l->receiver, s->ssrc, 0);
        }
        *reason = 2;
        return 0;
    }
    if (m->tid > l->cur_tid) {
        *reason = 3;
        return 0;
    }
    return 1;
}

static void queue_out(cp_fwd *t, const uint8_t *data, uint32_t len, int32_t dest, int rewrite,
                      uint16_t seq);

static void count_drop(cp_fwd *t, part_t *r, link_t *l, int reason) {
    l->dropped++;
    if (reason == 1) {
        t->c.inactive_dropped++;
        r->st.inactive_dropped++;
    } else if (reason == 2) {
        t->c.keyframe_dropped++;
        r->st.keyframe_dropped++;
    } else if (reason == 3) {
        t->c.layer_dropped++;
        r->st.layer_dropped++;
    } else {
        t->c.late_dropped++;
    }
}

/* Forward one video packet over one link: the sequence-number bookkeeping of the header. */
static void route_video(cp_fwd *t, source_t *s, link_t *l, const uint8_t *data, uint32_t len,
                        uint16_t seq, const meta_t *m) {
    part_t *r = &t->parts[l->receiver];
    int reason = 0;
    if (!l->started) {
        l->started = 1;
        l->highest = (uint16_t)(seq - 1);
        l->offset = 0;
        l->span = 0;
        memset(l->drops, 0, sizeof l->drops);
        memset(l->holes, 0, sizeof l->holes);
    }
    int16_t diff = seq_diff(seq, l->highest);
    if (diff <= -(int)CP_FWD_SEQ_WINDOW || (diff < 0 && -diff >= l->span)) {
        /* older than what the window remembers */
        if (++l->stale < STALE_RESYNC) {
            count_drop(t, r, l, 0);
            return;
        }
        /* the source restarted its numbering: continue the output after the last number */
        uint16_t last_out = (uint16_t)(l->highest - l->offset);
        l->highest = (uint16_t)(seq - 1);
        l->offset = (uint16_t)(l->highest - last_out);
        l->span = 0;
        memset(l->drops, 0, sizeof l->drops);
        memset(l->holes, 0, sizeof l->holes);
        diff = 1;
    }
    l->stale = 0;
    if (diff > 0) {
        if (diff >= (int)CP_FWD_SEQ_WINDOW) {
            memset(l->drops, 0, sizeof l->drops);
            memset(l->holes, 0, sizeof l->holes);
        } else {
            for (uint16_t q = (uint16_t)(l->highest + 1); q != seq; q++) set_drop_bit(l, q, 0);
        }
        set_drop_bit(l, seq, 0);
        uint32_t span = (uint32_t)l->span + (uint32_t)diff;
        l->span = (uint16_t)(span > CP_FWD_SEQ_WINDOW ? CP_FWD_SEQ_WINDOW : span);
        l->highest = seq;
        if (!wants(t, s, l, m, 1, &reason)) {
            set_drop_bit(l, seq, 1);
            l->offset++;
            count_drop(t, r, l, reason);
            return;
        }
        uint16_t out = (uint16_t)(seq - l->offset);
        queue_out(t, data, len, l->receiver, out != seq, out);
    } else {
        /* the newest again (a duplicate) or a late packet */
        if (drop_bit(l, seq)) {
            count_drop(t, r, l, 0);
            return;
        }
        if (!wants(t, s, l, m, 0, &reason)) {
            set_bit(l->holes, seq, 1);  /* its number stays a gap; a NACK gets a filler */
            count_drop(t, r, l, reason);
            return;
        }
        uint16_t out = (uint16_t)(seq - drops_up_to(l, seq));
        queue_out(t, data, len, l->receiver, out != seq, out);
    }
    l->forwarded++;
}

static void queue_out(cp_fwd *t, const uint8_t *data, uint32_t len, int32_t dest, int rewrite,
                      uint16_t seq) {
    if (t->n_out >= OUT_CAP) {  /* only in cp_fwd_route; cp_fwd_pump flushes before */
        t->c.send_errors++;
        return;
    }
    out_t *o = &t->out[t->n_out++];
    o->data = data;
    o->len = len;
    o->dest = dest;
    o->rewrite = (uint8_t)(rewrite != 0);
    if (o->rewrite) {
        o->hdr[0] = data[0];
        o->hdr[1] = data[1];
        put16(o->hdr + 2, seq);
    }
    if (data != HELLO_REPLY) {
        part_t *r = &t->parts[dest];
        r->st.packets_out++;
        r->st.bytes_out += len;
        t->c.forwarded++;
        t->c.forwarded_bytes += len;
    }
}

static int flush_out(cp_fwd *t, int fd);

/* Sender checks shared by RTP and RTCP: registered, right address, within its rate. */
static part_t *check_sender(cp_fwd *t, const source_t *s, const cp_fwd_addr *from, size_t len,
                            uint64_t now) {
    part_t *p = &t->parts[s->owner];
    if (!p->has_addr) {
        t->c.unregistered++;
        p->st.dropped_in++;
        return NULL;
    }
    if (!addr_eq(&p->addr, from)) {
        t->c.wrong_address++;
        p->st.dropped_in++;
        return NULL;
    }
    if (!bucket_take(t, p, len, now)) {
        t->c.flood_dropped++;
        p->st.dropped_in++;
        return NULL;
    }
    return p;
}

static void handle(cp_fwd *t, int fd, const uint8_t *data, size_t len, const cp_fwd_addr *from,
                   uint64_t now) {
    t->c.datagrams++;
    t->c.bytes += len;
    if (len >= 4 && memcmp(data, HELLO_MAGIC, 4) == 0) {
        if (len != CP_FWD_HELLO_LEN) {
            t->c.malformed++;
            return;
        }
        for (uint32_t i = 0; i < t->cfg.max_participants; i++) {
            part_t *p = &t->parts[i];
            if (!p->used || memcmp(p->token, data + 4, CP_FWD_TOKEN_LEN) != 0) continue;
            t->c.hello_ok++;
            p->st.hellos++;
            if (!p->has_addr || !addr_eq(&p->addr, from)) {
                p->addr = *from;
                p->has_addr = 1;
                on_new_address(t, (int32_t)i);
                event_add(t, CP_FWD_EV_REGISTERED, (int32_t)i, 0, 0);
            }
            if (fd >= 0 && t->n_out >= OUT_CAP) flush_out(t, fd);
            queue_out(t, HELLO_REPLY, CP_FWD_REPLY_LEN, (int32_t)i, 0, 0);
            return;
        }
        t->c.hello_bad++;
        return;
    }
    if (len < 8 || (data[0] >> 6) != 2 || len > CP_FWD_SLOT_BYTES) {
        t->c.malformed++;
        return;
    }
    if (data[1] >= 192 && data[1] <= 223) {  /* RTCP (RFC 5761 demultiplexing) */
        uint32_t ssrc = be32(data + 4);
        int32_t si = find_source(t, ssrc);
        if (si < 0) {
            t->c.unknown_ssrc++;
            return;
        }
        source_t *s = &t->sources[si];
        part_t *p = check_sender(t, s, from, len, now);
        if (!p) return;
        p->st.rtcp_in++;
        uint8_t *dst = event_add(t, CP_FWD_EV_RTCP, s->owner, ssrc, (uint32_t)len);
        if (dst) {
            memcpy(dst, data, len);
            t->c.rtcp_events++;
        }
        return;
    }
    /* RTP */
    if (len < 12) goto malformed;
    size_t off = 12 + 4 * (size_t)(data[0] & 0x0f);
    const uint8_t *ext = NULL;
    size_t ext_len = 0;
    uint16_t profile = 0;
    if (off > len) goto malformed;
    if (data[0] & 0x10) {
        if (off + 4 > len) goto malformed;
        profile = be16(data + off);
        ext_len = 4 * (size_t)be16(data + off + 2);
        ext = data + off + 4;
        off += 4 + ext_len;
        if (off > len) goto malformed;
    }
    size_t payload_len = len - off;
    if (data[0] & 0x20) {
        size_t pad = data[len - 1];
        if (pad == 0 || pad > payload_len) goto malformed;
        payload_len -= pad;
    }
    uint32_t ssrc = be32(data + 8);
    int32_t si = find_source(t, ssrc);
    if (si < 0) {
        t->c.unknown_ssrc++;
        return;
    }
    source_t *s = &t->sources[si];
    part_t *p = check_sender(t, s, from, len, now);
    if (!p) return;
    uint16_t seq = be16(data + 2);
    meta_t m = {0, 0, 0, 0};
    size_t el;
    const uint8_t *e;
    if (s->kind == CP_FWD_VIDEO) {
        if (ext && t->cfg.frame_marking_id &&
            (e = find_ext(profile, ext, ext_len, t->cfg.frame_marking_id, &el)) && el >= 1) {
            m.start = (e[0] >> 7) & 1;
            m.keyframe = (e[0] >> 5) & 1;
            m.sync = (e[0] >> 3) & 1;
            m.tid = e[0] & 7;
            s->has_fm = 1;
        } else {
            vp8_meta(data + off, payload_len, &m);
        }
        if (m.keyframe && m.start) s->keyframes++;
    } else if (s->kind == CP_FWD_AUDIO && ext && t->cfg.audio_level_id &&
               (e = find_ext(profile, ext, ext_len, t->cfg.audio_level_id, &el)) && el >= 1) {
        s->level_sum += 127u - (e[0] & 0x7f);
        s->level_count++;
        s->voice_count += e[0] >> 7;
    }
    s->packets++;
    s->bytes += len;
    s->layer_bytes[m.tid & 7] += len;
    p->st.packets_in++;
    p->st.bytes_in += len;
    receive_stats(s, seq, be32(data + 4), now);
    if (s->cache && len <= CP_FWD_CACHE_BYTES) {
        uint32_t slot = seq & t->cache_mask;
        memcpy(s->cache + (size_t)slot * CP_FWD_CACHE_BYTES, data, len);
        s->cache_len[slot] = (uint16_t)len;
        s->cache_seq[slot] = seq;
        s->cache_meta[slot] = (uint8_t)(0x80 | (m.tid & 7));
    }
    for (uint32_t i = 0; i < s->n_links; i++) {
        link_t *l = &s->links[i];
        if (!t->parts[l->receiver].has_addr) continue;
        if (fd >= 0 && t->n_out >= OUT_CAP) flush_out(t, fd);
        if (s->kind == CP_FWD_VIDEO) {
            route_video(t, s, l, data, (uint32_t)len, seq, &m);
        } else {
            queue_out(t, data, (uint32_t)len, l->receiver, 0, seq);
            l->forwarded++;
        }
    }
    return;
malformed:
    t->c.malformed++;
}

int cp_fwd_route(cp_fwd *t, const uint8_t *data, size_t len, const cp_fwd_addr *from,
                 uint64_t now) {
    if (!t || (!data && len) || !from || from->len > CP_FWD_ADDR_BYTES) return CP_FWD_ERR_ARG;
    handle(t, -1, data, len, from, now);
    return CP_FWD_OK;
}

uint32_t cp_fwd_out_count(const cp_fwd *t) { return t ? t->n_out : 0; }

int cp_fwd_out_get(const cp_fwd *t, uint32_t i, uint8_t *dst, size_t cap, size_t *len,
                   cp_fwd_addr *to) {
    if (!t || i >= t->n_out || !len) return CP_FWD_ERR_ARG;
    const out_t *o = &t->out[i];
    *len = o->len;
    if (to) *to = t->parts[o->dest].addr;
    if (!dst) return CP_FWD_OK;
    if (cap < o->len) return CP_FWD_ERR_ARG;
    memcpy(dst, o->data, o->len);
    if (o->rewrite) memcpy(dst, o->hdr, 4);
    return CP_FWD_OK;
}

void cp_fwd_out_clear(cp_fwd *t) {
    if (t) t->n_out = 0;
}

/* ------------------------------------------------------------------------------ batched I/O */

static int wait_writable(int fd) {
    struct pollfd pfd = {fd, POLLOUT, 0};
    return poll(&pfd, 1, 2) > 0;
}

static int flush_out(cp_fwd *t, int fd) {
    uint32_t n = t->n_out, sent = 0;
    if (!n) return 0;
#ifdef __linux__
    for (uint32_t i = 0; i < n; i++) {
        out_t *o = &t->out[i];
        struct msghdr *h = &t->smsg[i].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = t->parts[o->dest].addr.bytes;
        h->msg_namelen = t->parts[o->dest].addr.len;
        struct iovec *iov = &t->siov[2 * i];
        if (o->rewrite) {
            iov[0].iov_base = o->hdr;
            iov[0].iov_len = 4;
            iov[1].iov_base = (void *)(o->data + 4);
            iov[1].iov_len = o->len - 4;
            h->msg_iovlen = 2;
        } else {
            iov[0].iov_base = (void *)o->data;
            iov[0].iov_len = o->len;
            h->msg_iovlen = 1;
        }
        h->msg_iov = iov;
    }
    int retried = 0;
    while (sent < n) {
        int r = sendmmsg(fd, t->smsg + sent, n - sent, MSG_DONTWAIT);
        if (r > 0) {
            sent += (uint32_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && !retried) {
            retried = 1;
            wait_writable(fd);
            continue;
        }
        /* this message cannot go (unreachable address, full buffers): skip it */
        t->last_errno = r < 0 ? errno : 0;
        t->c.send_errors++;
        sent++;
        retried = 0;
    }
#else
    uint8_t tmp[CP_FWD_SLOT_BYTES];
    for (uint32_t i = 0; i < n; i++) {
        out_t *o = &t->out[i];
        const uint8_t *buf = o->data;
        if (o->rewrite) {
            memcpy(tmp, o->data, o->len);
            memcpy(tmp, o->hdr, 4);
            buf = tmp;
        }
        ssize_t r;
        do {
            r = sendto(fd, buf, o->len, MSG_DONTWAIT,
                       (const struct sockaddr *)t->parts[o->dest].addr.bytes,
                       (socklen_t)t->parts[o->dest].addr.len);
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            t->last_errno = errno;
            t->c.send_errors++;
        }
        sent++;
    }
#endif
    t->n_out = 0;
    return (int)n;
}

static void to_addr(const struct sockaddr_storage *ss, socklen_t len, cp_fwd_addr *a) {
    if (len > CP_FWD_ADDR_BYTES) len = CP_FWD_ADDR_BYTES;
    memset(a, 0, sizeof *a);
    memcpy(a->bytes, ss, len);
    a->len = (uint32_t)len;
    /* normalise what the kernel may leave unset, so equal addresses compare equal */
    if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)a->bytes;
        memset(in->sin_zero, 0, sizeof in->sin_zero);
        a->len = sizeof(struct sockaddr_in);
    } else if (ss->ss_family == AF_INET6) {
        a->len = sizeof(struct sockaddr_in6);
    }
}

int cp_fwd_pump(cp_fwd *t, int fd, uint32_t max_batches, cp_fwd_pump_result *res) {
    if (!t || fd < 0 || !res) return CP_FWD_ERR_ARG;
    memset(res, 0, sizeof *res);
    t->n_out = 0;
    uint32_t b = t->cfg.batch;
    for (uint32_t round = 0; round < max_batches; round++) {
        if (t->n_events + b > EVENT_CAP || (size_t)t->evbuf_len + (size_t)b * CP_FWD_SLOT_BYTES >
                                               EVENT_BYTES)
            return CP_FWD_OK;  /* let the caller take the events first */
        int n;
#ifdef __linux__
        for (uint32_t i = 0; i < b; i++) {
            t->riov[i].iov_base = t->rbuf + (size_t)i * CP_FWD_SLOT_BYTES;
            t->riov[i].iov_len = CP_FWD_SLOT_BYTES;
            struct msghdr *h = &t->rmsg[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &t->raddr[i];
            h->msg_namelen = sizeof t->raddr[i];
            h->msg_iov = &t->riov[i];
            h->msg_iovlen = 1;
        }
        do {
            n = recvmmsg(fd, t->rmsg, b, MSG_DONTWAIT, NULL);
        } while (n < 0 && errno == EINTR);
#else
        n = 0;
        while ((uint32_t)n < b) {
            socklen_t al = sizeof t->raddr[n];
            ssize_t r = recvfrom(fd, t->rbuf + (size_t)n * CP_FWD_SLOT_BYTES, CP_FWD_SLOT_BYTES,
                                 MSG_DONTWAIT, (struct sockaddr *)&t->raddr[n], &al);
            if (r < 0) {
                if (errno == EINTR) continue;
                if (n == 0) n = -1;
                break;
            }
            t->riov[n].iov_len = (size_t)r;  /* length, recorded for the loop below */
            t->riov[n].iov_base = (void *)(uintptr_t)al;
            n++;
        }
#endif
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                res->drained = 1;
            } else {
                res->error = errno;
                t->last_errno = errno;
            }
            return CP_FWD_OK;
        }
        if (n == 0) {
            res->drained = 1;
            return CP_FWD_OK;
        }
        res->batches++;
        res->datagrams += (uint32_t)n;
        uint64_t now = now_us();
        for (int i = 0; i < n; i++) {
            cp_fwd_addr from;
            size_t len;
            int trunc;
#ifdef __linux__
            len = t->rmsg[i].msg_len;
            trunc = (t->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
            to_addr(&t->raddr[i], t->rmsg[i].msg_hdr.msg_namelen, &from);
#else
            len = t->riov[i].iov_len;
            trunc = len > CP_FWD_SLOT_BYTES;
            to_addr(&t->raddr[i], (socklen_t)(uintptr_t)t->riov[i].iov_base, &from);
#endif
            if (trunc) {
                t->c.datagrams++;
                t->c.malformed++;
                continue;
            }
            handle(t, fd, t->rbuf + (size_t)i * CP_FWD_SLOT_BYTES, len, &from, now);
        }
        res->sent += (uint32_t)flush_out(t, fd);
        if ((uint32_t)n < b) {
            res->drained = 1;
            return CP_FWD_OK;
        }
    }
    return CP_FWD_OK;
}

/* ------------------------------------------------------------------------------ NACK */

static int walk_upstream(const link_t *l, uint16_t out_seq, uint16_t *in_seq) {
    if (!l->started || l->span == 0) return 0;
    uint16_t d = l->offset, s = l->highest;
    for (uint32_t k = 0; k < l->span; k++, s--) {
        int dropped = drop_bit(l, s);
        if (!dropped && (uint16_t)(s - d) == out_seq) {
            *in_seq = s;
            return 1;
        }
        if (dropped) d--;
    }
    return 0;
}

int cp_fwd_upstream_seq(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq,
                        uint16_t *in_seq) {
    if (!t || !in_seq) return 0;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return 0;
    const source_t *s = &t->sources[i];
    const link_t *l = find_link(s, receiver);
    if (!l) return 0;
    if (s->kind != CP_FWD_VIDEO) {  /* never rewritten */
        *in_seq = out_seq;
        return 1;
    }
    return walk_upstream(l, out_seq, in_seq);
}

int cp_fwd_resend(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq, uint8_t *dst,
                  size_t cap, size_t *len) {
    if (!t || !dst || !len) return 0;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return 0;
    source_t *s = &t->sources[i];
    link_t *l = find_link(s, receiver);
    uint16_t in;
    if (!l || !s->cache || !walk_upstream(l, out_seq, &in)) return 0;
    uint32_t slot = in & t->cache_mask;
    if (!(s->cache_meta[slot] & 0x80) || s->cache_seq[slot] != in) return 0;
    const uint8_t *pkt = s->cache + (size_t)slot * CP_FWD_CACHE_BYTES;
    size_t plen = s->cache_len[slot];
    if (get_bit(l->holes, in)) {
        /* dropped for this receiver after its number was given: a padding-only filler */
        if (cap < 16) return 0;
        dst[0] = 0xA0;  /* V=2, P=1, X=0, CC=0 */
        dst[1] = pkt[1] & 0x7f;
        put16(dst + 2, out_seq);
        memcpy(dst + 4, pkt + 4, 8);
        dst[12] = dst[13] = dst[14] = 0;
        dst[15] = 4;
        *len = 16;
        return 1;
    }
    if (cap < plen) return 0;
    memcpy(dst, pkt, plen);
    put16(dst + 2, out_seq);
    *len = plen;
    return 1;
}

/* ------------------------------------------------------------------------------ stats */

void cp_fwd_get_counters(const cp_fwd *t, cp_fwd_counters *c) {
    if (t && c) *c = t->c;
}

int cp_fwd_participant_stats_get(const cp_fwd *t, int32_t slot, cp_fwd_participant_stats *s) {
    if (!t || !s || !valid_part(t, slot)) return CP_FWD_ERR_NOT_FOUND;
    *s = t->parts[slot].st;
    return CP_FWD_OK;
}

int cp_fwd_source_stats_get(const cp_fwd *t, uint32_t ssrc, cp_fwd_source_stats *o) {
    if (!t || !o) return CP_FWD_ERR_ARG;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    const source_t *s = &t->sources[i];
    memset(o, 0, sizeof *o);
    o->owner = s->owner;
    o->kind = s->kind;
    o->clock_rate = s->clock_rate;
    o->packets = s->packets;
    o->bytes = s->bytes;
    o->keyframes = s->keyframes;
    memcpy(o->layer_bytes, s->layer_bytes, sizeof o->layer_bytes);
    o->level_sum = s->level_sum;
    o->level_count = s->level_count;
    o->voice_count = s->voice_count;
    o->started = s->started;
    if (s->started) {
        o->extended_highest = s->cycles + s->max_seq;
        o->expected = o->extended_highest - s->base_seq + 1;
        o->received = s->received;
        o->jitter = (uint32_t)s->jitter;
    }
    return CP_FWD_OK;
}

int cp_fwd_source_report(cp_fwd *t, uint32_t ssrc, uint8_t *fraction_lost,
                         int32_t *cumulative_lost) {
    if (!t || !fraction_lost || !cumulative_lost) return CP_FWD_ERR_ARG;
    int32_t i = find_source(t, ssrc);
    if (i < 0) return CP_FWD_ERR_NOT_FOUND;
    source_t *s = &t->sources[i];
    *fraction_lost = 0;
    *cumulative_lost = 0;
    if (!s->started) return CP_FWD_OK;
    uint32_t ext = s->cycles + s->max_seq;
    uint32_t expected = ext - s->base_seq + 1;
    int64_t lost = (int64_t)expected - (int64_t)s->received;
    if (lost > 0x7fffff) lost = 0x7fffff;
    if (lost < -0x800000) lost = -0x800000;
    *cumulative_lost = (int32_t)lost;
    uint32_t exp_int = expected - s->expected_prior;
    uint32_t rec_int = s->received - s->received_prior;
    s->expected_prior = expected;
    s->received_prior = s->received;
    int64_t lost_int = (int64_t)exp_int - (int64_t)rec_int;
    if (exp_int > 0 && lost_int > 0) {
        int64_t f = (lost_int << 8) / exp_int;
        *fraction_lost = (uint8_t)(f > 255 ? 255 : f);
    }
    return CP_FWD_OK;
}

void cp_fwd_levels_reset(cp_fwd *t) {
    if (!t) return;
    for (uint32_t i = 0; i < t->cfg.max_sources; i++) {
        t->sources[i].level_sum = 0;
        t->sources[i].level_count = 0;
        t->sources[i].voice_count = 0;
    }
}

/* ------------------------------------------------------------------------------ addresses */

int cp_fwd_addr_make(const char *host, uint16_t port, cp_fwd_addr *out) {
    if (!host || !out) return CP_FWD_ERR_ARG;
    memset(out, 0, sizeof *out);
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        memcpy(out->bytes, &v4, sizeof v4);
        out->len = sizeof v4;
        return CP_FWD_OK;
    }
    if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        memcpy(out->bytes, &v6, sizeof v6);
        out->len = sizeof v6;
        return CP_FWD_OK;
    }
    return CP_FWD_ERR_ADDRESS;
}

int cp_fwd_addr_format(const cp_fwd_addr *a, char *host, size_t cap, uint16_t *port) {
    if (!a || !host || !port || cap < 2) return CP_FWD_ERR_ARG;
    sa_family_t family;
    memcpy(&family, a->bytes, sizeof family);
    if (family == AF_INET && a->len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in v4;
        memcpy(&v4, a->bytes, sizeof v4);
        if (!inet_ntop(AF_INET, &v4.sin_addr, host, (socklen_t)cap)) return CP_FWD_ERR_ARG;
        *port = ntohs(v4.sin_port);
        return CP_FWD_OK;
    }
    if (family == AF_INET6 && a->len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 v6;
        memcpy(&v6, a->bytes, sizeof v6);
        if (!inet_ntop(AF_INET6, &v6.sin6_addr, host, (socklen_t)cap)) return CP_FWD_ERR_ARG;
        *port = ntohs(v6.sin6_port);
        return CP_FWD_OK;
    }
    return CP_FWD_ERR_ADDRESS;
}

/* ------------------------------------------------------------------------------ bench tools */

static void sleep_until(double t_s) {
    double d = t_s - now_s();
    if (d <= 0) return;
    if (d > 50e-6) {
        struct timespec ts;
        ts.tv_sec = (time_t)d;
        ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}

int cp_fwd_blast(int fd, const cp_fwd_addr *to, uint32_t n_to, const uint8_t *packet,
                 size_t len, double rate_pps, double seconds, uint64_t count, uint32_t batch,
                 cp_fwd_blast_result *res) {
    if (fd < 0 || !to || n_to < 1 || !packet || len < 4 || len > 65507 || !res || batch < 1 ||
        batch > CP_FWD_MAX_BATCH || seconds <= 0 || rate_pps < 0)
        return CP_FWD_ERR_ARG;
    memset(res, 0, sizeof *res);
    uint8_t *bufs = malloc((size_t)batch * len);
    if (!bufs) return CP_FWD_ERR_NOMEM;
#ifdef __linux__
    struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
    struct iovec *iov = calloc(batch, sizeof *iov);
    if (!msgs || !iov) {
        free(bufs);
        free(msgs);
        free(iov);
        return CP_FWD_ERR_NOMEM;
    }
#endif
    uint16_t seq = be16(packet + 2);
    for (uint32_t i = 0; i < batch; i++) {
        memcpy(bufs + (size_t)i * len, packet, len);
#ifdef __linux__
        iov[i].iov_base = bufs + (size_t)i * len;
        iov[i].iov_len = len;
        msgs[i].msg_hdr.msg_name = (void *)to[i % n_to].bytes;
        msgs[i].msg_hdr.msg_namelen = to[i % n_to].len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
#endif
    }
    double start = now_s(), end = start + seconds, t_now = start;
    uint64_t attempted = 0;
    while (t_now < end && (count == 0 || attempted < count)) {
        uint32_t n = batch;
        if (count && count - attempted < n) n = (uint32_t)(count - attempted);
        if (rate_pps > 0) sleep_until(start + (double)attempted / rate_pps);
        for (uint32_t i = 0; i < n; i++) put16(bufs + (size_t)i * len + 2, seq++);
#ifdef __linux__
        uint32_t done = 0;
        while (done < n) {
            int r = sendmmsg(fd, msgs + done, n - done, 0);
            if (r > 0) {
                done += (uint32_t)r;
            } else if (r < 0 && errno == EINTR) {
                continue;
            } else {
                res->errors += n - done;
                break;
            }
        }
        res->sent += done;
#else
        for (uint32_t i = 0; i < n; i++) {
            const cp_fwd_addr *a = &to[i % n_to];
            ssize_t r = sendto(fd, bufs + (size_t)i * len, len, 0,
                               (const struct sockaddr *)a->bytes, (socklen_t)a->len);
            if (r < 0)
                res->errors++;
            else
                res->sent++;
        }
#endif
        attempted += n;
        t_now = now_s();
    }
    res->seconds = t_now - start;
    free(bufs);
#ifdef __linux__
    free(msgs);
    free(iov);
#endif
    return CP_FWD_OK;
}

/* Datagrams of one socket in batches (the benchmark receivers): recvmmsg on Linux, one
 * recv at a time elsewhere.  Datagram k is at rx_data(b, k), rx_len(b, k) bytes. */
typedef struct {
    int cap;
    size_t slot;
    uint8_t *buf;
#ifdef __linux__
    struct mmsghdr *msgs;
    struct iovec *iov;
#else
    size_t len1;
#endif
} rx_batch;

static void rx_free(rx_batch *b) {
    free(b->buf);
#ifdef __linux__
    free(b->msgs);
    free(b->iov);
#endif
    memset(b, 0, sizeof *b);
}

static int rx_init(rx_batch *b, int cap, size_t slot) {
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->slot = slot;
    b->buf = malloc((size_t)cap * slot);
#ifdef __linux__
    b->msgs = calloc((size_t)cap, sizeof *b->msgs);
    b->iov = calloc((size_t)cap, sizeof *b->iov);
    if (!b->buf || !b->msgs || !b->iov) {
#else
    if (!b->buf) {
#endif
        rx_free(b);
        return -1;
    }
    return 0;
}

/* Reads what is waiting on fd (without blocking): the number of datagrams, <= 0 for none. */
static int rx_recv(rx_batch *b, int fd) {
#ifdef __linux__
    for (int k = 0; k < b->cap; k++) {
        b->iov[k].iov_base = b->buf + (size_t)k * b->slot;
        b->iov[k].iov_len = b->slot;
        memset(&b->msgs[k].msg_hdr, 0, sizeof b->msgs[k].msg_hdr);
        b->msgs[k].msg_hdr.msg_iov = &b->iov[k];
        b->msgs[k].msg_hdr.msg_iovlen = 1;
    }
    return recvmmsg(fd, b->msgs, (unsigned int)b->cap, MSG_DONTWAIT, NULL);
#else
    ssize_t r = recv(fd, b->buf, b->slot, MSG_DONTWAIT);
    b->len1 = r < 0 ? 0 : (size_t)r;
    return r < 0 ? -1 : 1;
#endif
}

static const uint8_t *rx_data(const rx_batch *b, int k) { return b->buf + (size_t)k * b->slot; }

static size_t rx_len(const rx_batch *b, int k) {
#ifdef __linux__
    return b->msgs[k].msg_len;
#else
    (void)k;
    return b->len1;
#endif
}

int cp_fwd_sink(const int *fds, uint32_t n, double seconds, double idle_s,
                cp_fwd_sink_result *res) {
    enum { B = 64, SZ = 2048 };
    if (!fds || n < 1 || n > 4096 || !res || seconds <= 0) return CP_FWD_ERR_ARG;
    memset(res, 0, sizeof *res);
    struct pollfd *pfd = calloc(n, sizeof *pfd);
    rx_batch rx;
    if (!pfd || rx_init(&rx, B, SZ) != 0) {
        free(pfd);
        return CP_FWD_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    double start = now_s(), end = start + seconds;
    for (;;) {
        double t_now = now_s();
        if (t_now >= end) break;
        if (idle_s > 0 && res->packets && t_now - res->last_s > idle_s) break;
        int r = poll(pfd, n, 10);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        for (uint32_t i = 0; i < n; i++) {
            if (!(pfd[i].revents & POLLIN)) continue;
            for (;;) {
                int got = rx_recv(&rx, fds[i]);
                if (got <= 0) break;
                for (int k = 0; k < got; k++) res->bytes += rx_len(&rx, k);
                double ts = now_s();
                if (!res->packets) res->first_s = ts;
                res->last_s = ts;
                res->packets += (uint64_t)got;
                if (got < B) break;
            }
        }
    }
    free(pfd);
    rx_free(&rx);
    return CP_FWD_OK;
}

/* ------------------------------------------------------------------------------ load generator */

static double thread_cpu_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

enum { LOAD_BATCH = 64, LOAD_PREFIX = 64 };

static int schedule_valid(const cp_fwd_load_schedule *s) {
    if (!s || !s->bytes || !s->packets || s->n_packets < 1 || !(s->loop_s > 0)) return 0;
    double prev = 0.0;
    for (uint32_t j = 0; j < s->n_packets; j++) {
        const cp_fwd_load_packet *p = &s->packets[j];
        if (p->len < 12 || p->len > CP_FWD_SLOT_BYTES || p->offset > s->n_bytes ||
            p->len > s->n_bytes - p->offset || p->stream > 1 ||
            (p->level_offset && (p->level_offset < 12 || p->level_offset >= p->len ||
                                 p->level_offset >= LOAD_PREFIX)) ||
            !(p->at_s >= prev) || !(p->at_s < s->loop_s))
            return 0;
        prev = p->at_s;
    }
    return 1;
}

typedef struct load_state {
    uint32_t next;   /* packet index */
    uint64_t loop;
    double due;      /* CLOCK_MONOTONIC s of that packet */
} load_state_t;

static double load_due(const cp_fwd_load_schedule *s, double start, double phase,
                       const load_state_t *st) {
    return start + phase + (double)st->loop * s->loop_s + s->packets[st->next].at_s;
}

int cp_fwd_load_send(cp_fwd_load_sender *senders, uint32_t n_senders, const cp_fwd_addr *to,
                     const cp_fwd_load_schedule *sched, double seconds,
                     cp_fwd_load_send_result *res) {
    if (!senders || n_senders < 1 || n_senders > 65536 || !to || to->len == 0 ||
        to->len > CP_FWD_ADDR_BYTES || !res || !(seconds > 0) || !schedule_valid(sched))
        return CP_FWD_ERR_ARG;
    for (uint32_t i = 0; i < n_senders; i++) {
        const cp_fwd_load_sender *x = &senders[i];
        if (x->fd < 0 || !(x->phase_s >= 0) || x->level < -1 || x->level > 255)
            return CP_FWD_ERR_ARG;
    }
    memset(res, 0, sizeof *res);
    load_state_t *st = calloc(n_senders, sizeof *st);
    uint8_t *prefix = malloc((size_t)LOAD_BATCH * LOAD_PREFIX);
    uint8_t *streams = malloc(LOAD_BATCH);
#ifdef __linux__
    struct mmsghdr *msgs = calloc(LOAD_BATCH, sizeof *msgs);
    struct iovec *iov = calloc(2 * LOAD_BATCH, sizeof *iov);
    int ok = st && prefix && streams && msgs && iov;
#else
    int ok = st && prefix && streams;
#endif
    int rc = CP_FWD_ERR_NOMEM;
    if (!ok) goto done;
    for (uint32_t i = 0; i < n_senders; i++) {
        senders[i].sent[0] = senders[i].sent[1] = 0;
        senders[i].errors = 0;
    }
    double cpu0 = thread_cpu_s();
    double start = now_s() + 0.005, end = start + seconds, late_sum = 0.0;
    uint64_t late_n = 0;
    for (uint32_t i = 0; i < n_senders; i++) st[i].due = load_due(sched, start, senders[i].phase_s,
                                                                   &st[i]);
    for (;;) {
        double t_now = now_s(), wake = end;
        int pending = 0;
        for (uint32_t i = 0; i < n_senders; i++) {
            cp_fwd_load_sender *x = &senders[i];
            load_state_t *s = &st[i];
            uint32_t k = 0;
            while (k < LOAD_BATCH && s->due < end && s->due <= t_now) {
                const cp_fwd_load_packet *p = &sched->packets[s->next];
                const uint8_t *src = sched->bytes + p->offset;
                uint32_t plen = p->len;
                uint32_t pre = 12;
                if (p->level_offset && x->level >= 0) pre = p->level_offset + 1;
                uint8_t *h = prefix + (size_t)k * LOAD_PREFIX;
                memcpy(h, src, pre);
                uint8_t sidx = p->stream;
                put16(h + 2, x->seq[sidx]++);
                put32(h + 4, be32(src + 4) + (uint32_t)(s->loop * sched->ts_per_loop[sidx]));
                put32(h + 8, x->ssrc[sidx]);
                if (pre > 12) h[p->level_offset] = (uint8_t)x->level;
                streams[k] = sidx;
                double late = t_now - s->due;
                late_sum += late;
                late_n++;
                if (late > res->late_max_s) res->late_max_s = late;
#ifdef __linux__
                iov[2 * k].iov_base = h;
                iov[2 * k].iov_len = pre;
                iov[2 * k + 1].iov_base = (void *)(src + pre);
                iov[2 * k + 1].iov_len = plen - pre;
                struct msghdr *m = &msgs[k].msg_hdr;
                memset(m, 0, sizeof *m);
                m->msg_name = (void *)to->bytes;
                m->msg_namelen = to->len;
                m->msg_iov = &iov[2 * k];
                m->msg_iovlen = plen > pre ? 2 : 1;
#else
                {
                    uint8_t tmp[CP_FWD_SLOT_BYTES];
                    memcpy(tmp, src, plen);
                    memcpy(tmp, h, pre);
                    ssize_t r = sendto(x->fd, tmp, plen, 0, (const struct sockaddr *)to->bytes,
                                       (socklen_t)to->len);
                    if (r < 0)
                        x->errors++;
                    else
                        x->sent[sidx]++;
                }
#endif
                k++;
                if (++s->next == sched->n_packets) {
                    s->next = 0;
                    s->loop++;
                }
                s->due = load_due(sched, start, x->phase_s, s);
            }
#ifdef __linux__
            uint32_t done = 0;
            while (done < k) {
                int r = sendmmsg(x->fd, msgs + done, k - done, MSG_DONTWAIT);
                if (r > 0) {
                    for (uint32_t q = done; q < done + (uint32_t)r; q++) x->sent[streams[q]]++;
                    done += (uint32_t)r;
                } else if (r < 0 && errno == EINTR) {
                    continue;
                } else {
                    x->errors++;  /* this one cannot go: skip it */
                    done++;
                }
            }
#endif
            if (s->due < end) {
                pending = 1;
                if (s->due < wake) wake = s->due;
            }
        }
        if (!pending) break;
        sleep_until(wake);
    }
    for (uint32_t i = 0; i < n_senders; i++) {
        res->sent += senders[i].sent[0] + senders[i].sent[1];
        res->errors += senders[i].errors;
    }
    res->seconds = now_s() - start;
    res->cpu_s = thread_cpu_s() - cpu0;
    res->late_mean_s = late_n ? late_sum / (double)late_n : 0.0;
    rc = CP_FWD_OK;
done: /* the one exit after the allocations: free(NULL) is a no-op */
    free(st);
    free(prefix);
    free(streams);
#ifdef __linux__
    free(msgs);
    free(iov);
#endif
    return rc;
}

int cp_fwd_load_recv(const int *fds, uint32_t n_fds, const uint32_t *ssrcs, uint32_t n_ssrcs,
                     double seconds, double idle_s, uint64_t *received, uint64_t *span,
                     cp_fwd_load_recv_result *res) {
    enum { B = 64, SZ = CP_FWD_SLOT_BYTES };
    if (!fds || n_fds < 1 || n_fds > 65536 || !ssrcs || n_ssrcs < 1 || n_ssrcs > (1u << 20) ||
        !received || !span || !res || !(seconds > 0) || idle_s < 0)
        return CP_FWD_ERR_ARG;
    for (uint32_t i = 0; i < n_fds; i++)
        if (fds[i] < 0) return CP_FWD_ERR_ARG;
    if ((uint64_t)n_fds * n_ssrcs > (1u << 26)) return CP_FWD_ERR_ARG;
    memset(res, 0, sizeof *res);
    size_t cells = (size_t)n_fds * n_ssrcs;
    uint32_t hsize = 4;
    while (hsize < 2 * n_ssrcs) hsize <<= 1;
    uint32_t *hash = calloc(hsize, sizeof *hash);  /* SSRC index + 1; 0 empty */
    int64_t *lo = malloc(cells * sizeof *lo), *hi = malloc(cells * sizeof *hi);
    struct pollfd *pfd = calloc(n_fds, sizeof *pfd);
    rx_batch rx;
    int ok = rx_init(&rx, B, SZ) == 0;
    ok = ok && hash && lo && hi && pfd;
    int rc = CP_FWD_OK;
    if (!ok) {
        rc = CP_FWD_ERR_NOMEM;
        goto out;
    }
    for (uint32_t j = 0; j < n_ssrcs; j++) {
        uint32_t h = mix32(ssrcs[j]) & (hsize - 1);
        while (hash[h]) {
            if (ssrcs[hash[h] - 1] == ssrcs[j]) {
                rc = CP_FWD_ERR_ARG;  /* listed twice */
                goto out;
            }
            h = (h + 1) & (hsize - 1);
        }
        hash[h] = j + 1;
    }
    memset(received, 0, cells * sizeof *received);
    for (uint32_t i = 0; i < n_fds; i++) {
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    double cpu0 = thread_cpu_s();
    double start = now_s(), end = start + seconds;
    for (;;) {
        double t_now = now_s();
        if (t_now >= end) break;
        if (idle_s > 0 && res->rtp && t_now - res->last_s > idle_s) break;
        int r = poll(pfd, n_fds, 10);
        if (r < 0 && errno != EINTR) {
            rc = CP_FWD_ERR_SYSTEM;
            break;
        }
        if (r <= 0) continue;
        for (uint32_t i = 0; i < n_fds; i++) {
            if (!(pfd[i].revents & POLLIN)) continue;
            for (;;) {
                int got = rx_recv(&rx, fds[i]);
                if (got <= 0) break;
                double ts = 0.0;
                for (int k = 0; k < got; k++) {
                    const uint8_t *d = rx_data(&rx, k);
                    size_t len = rx_len(&rx, k);
                    if (len < 8 || (d[0] >> 6) != 2) {
                        res->other++;
                        continue;
                    }
                    if (d[1] >= 192 && d[1] <= 223) {
                        res->rtcp++;
                        continue;
                    }
                    if (len < 12) {
                        res->other++;
                        continue;
                    }
                    uint32_t ssrc = be32(d + 8), h = mix32(ssrc) & (hsize - 1);
                    while (hash[h] && ssrcs[hash[h] - 1] != ssrc) h = (h + 1) & (hsize - 1);
                    if (!hash[h]) {
                        res->other++;
                        continue;
                    }
                    size_t c = (size_t)i * n_ssrcs + (hash[h] - 1);
                    uint16_t seq = be16(d + 2);
                    if (received[c] == 0) {
                        lo[c] = hi[c] = seq;
                    } else {
                        int64_t ext = hi[c] + seq_diff(seq, (uint16_t)hi[c]);
                        if (ext > hi[c]) hi[c] = ext;
                        if (ext < lo[c]) lo[c] = ext;
                    }
                    received[c]++;
                    res->rtp++;
                    res->rtp_bytes += len;
                    if (ts == 0.0) ts = now_s();
                    if (res->first_s == 0.0) res->first_s = ts;
                    res->last_s = ts;
                }
                if (got < B) break;
            }
        }
    }
    res->cpu_s = thread_cpu_s() - cpu0;
    for (size_t c = 0; c < cells; c++) span[c] = received[c] ? (uint64_t)(hi[c] - lo[c] + 1) : 0;
out:
    free(hash);
    free(lo);
    free(hi);
    free(pfd);
    rx_free(&rx);
    return rc;
}
