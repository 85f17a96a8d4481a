/* The SFU's media fast path: batched UDP I/O and the per-packet routing table.
 *
 * One UDP socket carries everything (RTP and RTCP multiplexed per RFC 5761, plus the callpipe
 * HELLO registration datagrams; the wire conventions are documented in
 * src/callpipe/net/udp.py).  cp_fwd_pump() drains the socket with recvmmsg, decides for every
 * datagram what to do with it, and sends the fan-out with sendmmsg, all in one call:
 *
 *   HELLO  "CPH1" + 16-byte media token  -> the participant's address is (re)registered and
 *          "CPH1OK" is sent back; unknown tokens are counted and get no answer.
 *   RTP    (version 2, second byte outside 192..223) of a known SSRC, from its owner's
 *          registered address, within the owner's rate limit -> cached (video) and forwarded to
 *          every other registered participant of the room, minus what the receiver's layer
 *          selection drops (temporal layer above its limit, video source disabled by last-N,
 *          or waiting for a keyframe).  The only byte a forwarded packet differs in is its
 *          sequence number, and only after drops: see "sequence numbers" below.
 *   RTCP   (second byte 192..223) whose first packet's sender SSRC belongs to the datagram's
 *          registered sender -> copied out as an event for the control plane (Python).
 *   anything else -> counted (malformed, unknown SSRC, not registered, wrong address, flood)
 *          and dropped.
 *
 * Sequence numbers.  Per (receiver, source SSRC) the table keeps D(s), the number of packets
 * of the source it dropped for that receiver up to and including input sequence number s, and
 * forwards packet s as s - D(s) (mod 2**16).  Without drops the packet is forwarded
 * byte-identical.  Drops are remembered for the last CP_FWD_SEQ_WINDOW input sequence numbers,
 * so a NACKed output number maps back to its input number (cp_fwd_resend).  A packet that
 * arrives late (older than the newest one seen) is forwarded with its own s - D(s) when its
 * layer is wanted; when it is not, it is dropped and its output number stays a hole, which a
 * NACK fills with a padding-only packet.  Packets older than the window are dropped.
 *
 * Layer switches happen at frame starts (frame marking S bit, or VP8 descriptor S=1 with
 * partition 0): going down at any frame start; going up only at a keyframe (frame marking I)
 * or a layer-sync frame (frame marking B / VP8 Y) of a layer the receiver may now get.
 *
 * Plain C11 (+ POSIX sockets; recvmmsg/sendmmsg on Linux, recvfrom/sendto elsewhere).  No
 * global state; every table owns its memory and frees it in cp_fwd_free.  Not thread-safe: one
 * thread uses a table at a time.  Kept in cffi's parsable subset (plain prototypes, structs,
 * enums; no macros, no socket types).
 */
#ifndef CALLPIPE_CP_FORWARD_H
#define CALLPIPE_CP_FORWARD_H

#include <stddef.h>
#include <stdint.h>

enum cp_fwd_status {
    CP_FWD_OK = 0,
    CP_FWD_ERR_ARG = 1,        /* an argument out of range */
    CP_FWD_ERR_NOMEM = 2,      /* allocation failed */
    CP_FWD_ERR_EXISTS = 3,     /* the SSRC is already in the table */
    CP_FWD_ERR_NOT_FOUND = 4,  /* no such participant / SSRC / receiver link */
    CP_FWD_ERR_FULL = 5,       /* every participant or source slot is in use */
    CP_FWD_ERR_SYSTEM = 6,     /* a system call failed; cp_fwd_last_errno() says why */
    CP_FWD_ERR_ADDRESS = 7     /* not an IPv4/IPv6 address */
};

enum cp_fwd_limits {
    CP_FWD_TOKEN_LEN = 16,       /* bytes of a media token */
    CP_FWD_HELLO_LEN = 20,       /* "CPH1" + token */
    CP_FWD_REPLY_LEN = 6,        /* "CPH1OK" */
    CP_FWD_SLOT_BYTES = 2048,    /* receive buffer per datagram; longer ones are dropped */
    CP_FWD_CACHE_BYTES = 1500,   /* largest packet kept for NACKs */
    CP_FWD_SEQ_WINDOW = 1024,    /* input sequence numbers whose drops are remembered */
    CP_FWD_MAX_TID = 7,
    CP_FWD_ALL_LAYERS = 255,     /* max_tid value: no temporal-layer limit */
    CP_FWD_ADDR_BYTES = 28,      /* room for a sockaddr_in6 */
    CP_FWD_MAX_BATCH = 1024
};

enum cp_fwd_kind {
    CP_FWD_AUDIO = 0,   /* forwarded to everyone, audio level read */
    CP_FWD_VIDEO = 1,   /* cached, layer selection, last-N */
    CP_FWD_RTX = 2      /* forwarded to everyone unchanged */
};

enum cp_fwd_event_type {
    CP_FWD_EV_RTCP = 1,        /* RTCP datagram from a registered participant (data = it) */
    CP_FWD_EV_REGISTERED = 2,  /* a participant's address was set or changed by a HELLO */
    CP_FWD_EV_KEYFRAME_WAIT = 3 /* a receiver waits for a keyframe of ssrc (ask the sender) */
};

/* A socket address (sockaddr_in or sockaddr_in6 bytes). */
typedef struct cp_fwd_addr {
    uint8_t bytes[28];
    uint32_t len;   /* 0: none */
} cp_fwd_addr;

typedef struct cp_fwd_config {
    uint32_t max_participants;  /* participant slots, 1..65536 */
    uint32_t max_sources;       /* SSRC slots, 1..1048576 */
    uint32_t cache_packets;     /* packets cached per video source (rounded up to 2^k), 0 = none */
    uint32_t batch;             /* datagrams per recvmmsg, 1..CP_FWD_MAX_BATCH */
    uint8_t audio_level_id;     /* RFC 8285 id of the RFC 6464 audio level, 0 = none */
    uint8_t frame_marking_id;   /* RFC 8285 id of RFC 9626 frame marking, 0 = none */
    double rate_packets;        /* per participant, packets/s sustained (0 = no limit) */
    double burst_packets;       /* packets above the rate at once */
    double rate_bytes;          /* per participant, bytes/s sustained (0 = no limit) */
    double burst_bytes;         /* bytes above the rate at once */
} cp_fwd_config;

typedef struct cp_fwd_counters {
    uint64_t datagrams;         /* received */
    uint64_t bytes;             /* received */
    uint64_t malformed;         /* not HELLO, RTP or RTCP; truncated; oversize */
    uint64_t unknown_ssrc;      /* RTP/RTCP of an SSRC nobody was assigned */
    uint64_t unregistered;      /* known SSRC, but its owner sent no HELLO yet */
    uint64_t wrong_address;     /* known SSRC from another address than its owner's */
    uint64_t flood_dropped;     /* over a participant's rate limit */
    uint64_t hello_ok;
    uint64_t hello_bad;         /* HELLO with an unknown token */
    uint64_t rtcp_events;       /* RTCP handed to the control plane */
    uint64_t forwarded;         /* RTP copies sent (or queued, in cp_fwd_route) */
    uint64_t forwarded_bytes;
    uint64_t layer_dropped;     /* copies not sent: temporal layer above the receiver's limit */
    uint64_t inactive_dropped;  /* copies not sent: source disabled for the receiver (last-N) */
    uint64_t keyframe_dropped;  /* copies not sent: receiver waits for a keyframe */
    uint64_t late_dropped;      /* older than the sequence window, or a late dropped layer */
    uint64_t send_errors;       /* sendmmsg/sendto failures (copies lost) */
    uint64_t events_dropped;    /* control-plane events lost to a full event buffer */
} cp_fwd_counters;

typedef struct cp_fwd_participant_stats {
    uint64_t packets_in;        /* RTP accepted */
    uint64_t bytes_in;
    uint64_t rtcp_in;
    uint64_t packets_out;       /* RTP copies sent to this participant */
    uint64_t bytes_out;
    uint64_t dropped_in;        /* its datagrams dropped: flood, wrong address, unregistered */
    uint64_t layer_dropped;     /* copies for it not sent (temporal layer) */
    uint64_t inactive_dropped;  /* copies for it not sent (last-N) */
    uint64_t keyframe_dropped;  /* copies for it not sent (waiting for a keyframe) */
    uint64_t hellos;
} cp_fwd_participant_stats;

typedef struct cp_fwd_source_stats {
    int32_t owner;
    uint8_t kind;
    uint32_t clock_rate;
    uint64_t packets;           /* accepted */
    uint64_t bytes;
    uint64_t keyframes;         /* frames with the frame marking I bit */
    uint64_t layer_bytes[8];    /* bytes per temporal id (cumulative) */
    uint64_t level_sum;         /* sum of (127 - level) over audio-level packets since the take */
    uint64_t level_count;       /* audio-level packets since the take */
    uint64_t voice_count;       /* of which with the V bit */
    /* RFC 3550 appendix A.1/A.3/A.8 receive statistics */
    uint32_t extended_highest;  /* cycles << 16 | highest seq */
    uint32_t expected;
    uint32_t received;
    uint32_t jitter;            /* RTP timestamp units */
    uint8_t started;
} cp_fwd_source_stats;

typedef struct cp_fwd_event {
    uint8_t type;       /* cp_fwd_event_type */
    int32_t participant;
    uint32_t ssrc;      /* KEYFRAME_WAIT: the source; RTCP: the first packet's sender SSRC */
    uint32_t offset;    /* of the data in the event buffer */
    uint32_t len;
} cp_fwd_event;

typedef struct cp_fwd_pump_result {
    uint32_t datagrams;  /* received in this call */
    uint32_t sent;       /* datagrams sent in this call */
    uint32_t batches;    /* recvmmsg calls that returned data */
    int32_t error;       /* errno of a failed receive (0: none; EAGAIN is not an error) */
    uint8_t drained;     /* the socket had nothing more to read */
} cp_fwd_pump_result;

typedef struct cp_fwd cp_fwd;

/* ---- table lifetime and membership ---- */
void cp_fwd_config_default(cp_fwd_config *cfg);
cp_fwd *cp_fwd_new(const cp_fwd_config *cfg, int *status);
void cp_fwd_free(cp_fwd *t);
/* A participant in room `room` (any id the caller chooses); its slot goes to *slot. */
int cp_fwd_add_participant(cp_fwd *t, uint32_t room, const uint8_t *token, int32_t *slot);
/* Removes its sources (and their caches) and its links to every other source. */
int cp_fwd_remove_participant(cp_fwd *t, int32_t slot);
int cp_fwd_set_address(cp_fwd *t, int32_t slot, const cp_fwd_addr *addr);
int cp_fwd_get_address(const cp_fwd *t, int32_t slot, cp_fwd_addr *addr);
/* An SSRC the participant sends; linked to every other participant of its room. */
int cp_fwd_add_source(cp_fwd *t, int32_t owner, uint32_t ssrc, int kind, uint32_t clock_rate,
                      uint8_t layer);
int cp_fwd_source_owner(const cp_fwd *t, uint32_t ssrc, int32_t *owner);

/* ---- per-receiver selection ---- */
/* Highest temporal id `receiver` gets of `ssrc` (CP_FWD_ALL_LAYERS: all). */
int cp_fwd_set_max_tid(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t max_tid);
/* Forward `ssrc` to `receiver` or not (last-N, simulcast).  Enabling a video source makes the
 * receiver wait for its next keyframe when the source sends frame marking (an event asks). */
int cp_fwd_set_enabled(cp_fwd *t, int32_t receiver, uint32_t ssrc, int enabled);
/* Current state of one link: max_tid (target), current tid, enabled, waiting for keyframe,
 * and the copies forwarded to / dropped for the receiver. */
int cp_fwd_link_state(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t *max_tid,
                      uint8_t *current_tid, uint8_t *enabled, uint8_t *waiting,
                      uint64_t *forwarded, uint64_t *dropped);

/* ---- the hot path ---- */
/* Receive, route and send until the socket is drained, `max_batches` recvmmsg calls were
 * made, or the event buffer is nearly full.  Non-blocking; the socket must be O_NONBLOCK or
 * is read with MSG_DONTWAIT.  Events stay available until cp_fwd_events_clear. */
int cp_fwd_pump(cp_fwd *t, int fd, uint32_t max_batches, cp_fwd_pump_result *result);
/* The same decision for one datagram, without a socket: copies are queued (read them with
 * cp_fwd_out_*) and events recorded.  `data` must stay valid until cp_fwd_out_clear. */
int cp_fwd_route(cp_fwd *t, const uint8_t *data, size_t len, const cp_fwd_addr *from,
                 uint64_t now_us);
uint32_t cp_fwd_out_count(const cp_fwd *t);
/* Copy queued datagram i into dst (cap bytes); its length and destination. */
int cp_fwd_out_get(const cp_fwd *t, uint32_t i, uint8_t *dst, size_t cap, size_t *len,
                   cp_fwd_addr *to);
void cp_fwd_out_clear(cp_fwd *t);
uint32_t cp_fwd_event_count(const cp_fwd *t);
int cp_fwd_event_get(const cp_fwd *t, uint32_t i, cp_fwd_event *ev, const uint8_t **data);
void cp_fwd_events_clear(cp_fwd *t);

/* ---- NACK service ---- */
/* The input sequence number that `receiver` got as `out_seq` of `ssrc`: 1 found, 0 not. */
int cp_fwd_upstream_seq(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq,
                        uint16_t *in_seq);
/* Rebuild packet `out_seq` of `ssrc` for `receiver` from the cache into dst: 1 with *len set
 * (a padding-only filler when that packet was dropped for the receiver), 0 not cached. */
int cp_fwd_resend(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq, uint8_t *dst,
                  size_t cap, size_t *len);

/* ---- statistics ---- */
void cp_fwd_get_counters(const cp_fwd *t, cp_fwd_counters *c);
int cp_fwd_participant_stats_get(const cp_fwd *t, int32_t slot, cp_fwd_participant_stats *s);
int cp_fwd_source_stats_get(const cp_fwd *t, uint32_t ssrc, cp_fwd_source_stats *s);
/* Fraction lost (1/256) since the last call and cumulative lost, RFC 3550 A.3; updates the
 * interval state.  For the SFU's own receiver reports. */
int cp_fwd_source_report(cp_fwd *t, uint32_t ssrc, uint8_t *fraction_lost,
                         int32_t *cumulative_lost);
/* Resets the audio-level sums of every source. */
void cp_fwd_levels_reset(cp_fwd *t);
int cp_fwd_last_errno(const cp_fwd *t);

/* ---- addresses ---- */
int cp_fwd_addr_make(const char *host, uint16_t port, cp_fwd_addr *out);
int cp_fwd_addr_format(const cp_fwd_addr *a, char *host, size_t cap, uint16_t *port);

/* ---- minimal native sender / receiver (the loopback reference of `callpipe bench sfu`) ---- */
typedef struct cp_fwd_blast_result {
    uint64_t sent;
    uint64_t errors;     /* datagrams the kernel refused (EAGAIN, ENOBUFS, ...) */
    double seconds;      /* wall time spent */
} cp_fwd_blast_result;

/* Send `packet` (an RTP packet: bytes 2-3, the sequence number, increment per send) to the
 * `n_to` addresses `to` in turn, in sendmmsg batches of `batch`, paced at `rate_pps` (0: as
 * fast as possible), for `seconds` or `count` datagrams (0: no count limit), whichever comes
 * first. */
int cp_fwd_blast(int fd, const cp_fwd_addr *to, uint32_t n_to, const uint8_t *packet,
                 size_t len, double rate_pps, double seconds, uint64_t count, uint32_t batch,
                 cp_fwd_blast_result *result);

typedef struct cp_fwd_sink_result {
    uint64_t packets;
    uint64_t bytes;
    double first_s;      /* CLOCK_MONOTONIC of the first datagram (0: none) */
    double last_s;       /* of the last one */
} cp_fwd_sink_result;

/* Receive on n sockets (poll + recvmmsg) for `seconds`, or until `idle_s` pass without data
 * after the first datagram; counts only. */
int cp_fwd_sink(const int *fds, uint32_t n, double seconds, double idle_s,
                cp_fwd_sink_result *result);

/* ---- load generator of `callpipe bench sfu --capacity`: many participants, paced RTP ----
 *
 * One schedule (a loop of pre-built RTP packets with their send times) is played by every
 * sender from its own socket, each from its own start time (phase), in real time: packet j of
 * loop L of sender i goes out at start + phase_i + L * loop_s + at_s[j], with the sender's
 * SSRC of the packet's stream, the next sequence number of that stream, the packet's RTP
 * timestamp + L * ts_per_loop[stream], and (when level_offset is set and level >= 0) the
 * sender's audio-level byte.  The rest of the bytes go out as built (scatter-gather: only the
 * rewritten header is copied).  The number of packets sent depends only on the schedule and
 * `seconds` (packets due before start + seconds), not on how fast the machine is; how late
 * they went out is reported. */
typedef struct cp_fwd_load_packet {
    double at_s;            /* send time within one loop, s (non-decreasing, < loop_s) */
    uint32_t offset;        /* of its bytes in the schedule's byte buffer */
    uint32_t len;           /* bytes, 12..CP_FWD_SLOT_BYTES */
    uint32_t level_offset;  /* of its RFC 6464 audio-level byte (< 64), 0: none */
    uint8_t stream;         /* 0 or 1: which of the sender's SSRCs it carries */
} cp_fwd_load_packet;

typedef struct cp_fwd_load_schedule {
    const uint8_t *bytes;
    size_t n_bytes;
    const cp_fwd_load_packet *packets;
    uint32_t n_packets;
    double loop_s;          /* length of one loop, s */
    uint32_t ts_per_loop[2];  /* RTP timestamp advance per loop, per stream */
} cp_fwd_load_schedule;

typedef struct cp_fwd_load_sender {
    int fd;                 /* the participant's (registered) socket */
    uint32_t ssrc[2];       /* per stream */
    uint16_t seq[2];        /* in: first sequence number per stream; out: the next one */
    double phase_s;         /* its schedule starts this long after the common start, s */
    int32_t level;          /* audio-level byte for its packets, 0..255; -1: as built */
    uint64_t sent[2];       /* out: packets sent per stream */
    uint64_t errors;        /* out: packets the kernel refused */
} cp_fwd_load_sender;

typedef struct cp_fwd_load_send_result {
    uint64_t sent;
    uint64_t errors;
    double seconds;         /* wall time spent */
    double cpu_s;           /* CPU time of the calling thread */
    double late_max_s;      /* the latest a packet went out after its time, s */
    double late_mean_s;
} cp_fwd_load_send_result;

/* Play `schedule` from every sender to `to` for `seconds` (see above).  Blocking. */
int cp_fwd_load_send(cp_fwd_load_sender *senders, uint32_t n_senders, const cp_fwd_addr *to,
                     const cp_fwd_load_schedule *schedule, double seconds,
                     cp_fwd_load_send_result *result);

typedef struct cp_fwd_load_recv_result {
    uint64_t rtp;           /* RTP datagrams of the listed SSRCs */
    uint64_t rtp_bytes;
    uint64_t rtcp;          /* RTCP datagrams (RFC 5761: second byte 192..223) */
    uint64_t other;         /* RTP of other SSRCs, HELLO replies, anything else */
    double first_s;         /* CLOCK_MONOTONIC of the first RTP datagram (0: none) */
    double last_s;          /* of the last one */
    double cpu_s;           /* CPU time of the calling thread */
} cp_fwd_load_recv_result;

/* Receive on the n_fds sockets (poll + recvmmsg) for `seconds`, or until `idle_s` pass without
 * RTP after the first; per (socket i, SSRC j) of the n_ssrcs listed (distinct) SSRCs,
 * received[i * n_ssrcs + j] counts its RTP packets and span[i * n_ssrcs + j] is highest -
 * lowest extended sequence number + 1 (0: none), so span - received is what a sequence-gap
 * count calls lost. */
int cp_fwd_load_recv(const int *fds, uint32_t n_fds, const uint32_t *ssrcs, uint32_t n_ssrcs,
                     double seconds, double idle_s, uint64_t *received, uint64_t *span,
                     cp_fwd_load_recv_result *result);

#endif
