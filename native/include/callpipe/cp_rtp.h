/* RTP core: RFC 3550 packets, RFC 8285 header extensions (one-byte and two-byte forms) with
 * typed values (abs-send-time, transport-wide sequence number, RFC 6464 audio level, video
 * frame marking), wrap-safe sequence/timestamp arithmetic, and the VP8 payload format of
 * RFC 7741 (payload descriptor, MTU-aware packetizer, frame assembler).
 *
 * Plain C11, no global state.  Parsing never allocates and never reads outside [data, data+len).
 * Only the frame assembler owns memory (cp_vp8_assembler_new / _free); its per-slot payload
 * buffers are reused, so the steady state allocates nothing.
 * Kept in cffi's parsable C subset (plain prototypes, structs, enums for constants; no macros).
 */
#ifndef CALLPIPE_CP_RTP_H
#define CALLPIPE_CP_RTP_H

#include <stddef.h>
#include <stdint.h>

/* Return codes: 0 is success; every failure is a distinct positive code. */
enum cp_rtp_status {
    CP_RTP_OK = 0,
    CP_RTP_ERR_TRUNCATED = 1,      /* shorter than the 12-byte fixed header */
    CP_RTP_ERR_VERSION = 2,        /* version field is not 2 */
    CP_RTP_ERR_CSRC = 3,           /* the CSRC list runs past the end */
    CP_RTP_ERR_EXT_HEADER = 4,     /* X set but no room for the 4-byte extension header */
    CP_RTP_ERR_EXT_LENGTH = 5,     /* extension length (32-bit words) runs past the end */
    CP_RTP_ERR_EXT_ELEMENT = 6,    /* an RFC 8285 element runs past its extension block */
    CP_RTP_ERR_EXT_ID = 7,         /* one-byte form: id 0 with a non-zero length */
    CP_RTP_ERR_PADDING_ZERO = 8,   /* P set but the padding count octet is 0 */
    CP_RTP_ERR_PADDING_LENGTH = 9, /* padding count longer than what follows the header */
    CP_RTP_ERR_ARG = 10,           /* a field out of range when writing */
    CP_RTP_ERR_BUFFER = 11,        /* output buffer too small */
    CP_RTP_ERR_EXT_VALUE = 12,     /* a typed extension element has the wrong size */
    CP_RTP_ERR_VP8_EMPTY = 13,     /* empty VP8 payload */
    CP_RTP_ERR_VP8_TRUNCATED = 14, /* the VP8 payload descriptor runs past the payload */
    CP_RTP_ERR_VP8_NO_DATA = 15,   /* a VP8 payload descriptor with no VP8 data after it */
    CP_RTP_ERR_MTU = 16,           /* MTU too small for header + descriptor + 1 byte */
    CP_RTP_ERR_SSRC = 17,          /* assembler: packet of another SSRC */
    CP_RTP_ERR_NOMEM = 18,         /* allocation failed */
    CP_RTP_ERR_EXT_FORM = 19       /* element id/length not representable in the chosen form */
};

enum cp_rtp_limits {
    CP_RTP_FIXED_HEADER = 12,    /* bytes */
    CP_RTP_MAX_CSRC = 15,
    CP_RTP_MAX_HEADER = 262216,  /* 12 + 15*4 + 4 + 65535*4 bytes */
    CP_RTP_ONE_BYTE_PROFILE = 48862,  /* 0xBEDE */
    CP_RTP_TWO_BYTE_PROFILE = 4096,   /* 0x1000; low 4 bits are "appbits" */
    CP_RTP_EXT_FORM_OTHER = 0,   /* an RFC 3550 extension of another profile (opaque) */
    CP_RTP_EXT_FORM_ONE_BYTE = 1,
    CP_RTP_EXT_FORM_TWO_BYTE = 2,
    CP_VP8_MAX_DESCRIPTOR = 6    /* bytes */
};

/* A parsed RTP header: offsets index the parsed buffer. */
typedef struct cp_rtp_header {
    uint8_t marker;
    uint8_t payload_type;      /* 0..127 */
    uint16_t sequence_number;
    uint32_t timestamp;
    uint32_t ssrc;
    uint8_t csrc_count;        /* 0..15 */
    uint32_t csrcs[15];
    uint8_t has_extension;     /* X bit */
    uint16_t extension_profile;
    size_t extension_offset;   /* of the block data, after the 4-byte extension header */
    size_t extension_len;      /* block data bytes (a multiple of 4) */
    size_t payload_offset;
    size_t payload_len;
    size_t padding_len;        /* 0 when P is clear, else the count octet's value (1..255) */
} cp_rtp_header;

/* ---- RTP packets (RFC 3550 section 5.1) ---- */
int cp_rtp_parse(const uint8_t *data, size_t len, cp_rtp_header *h);
size_t cp_rtp_header_len(const cp_rtp_header *h);
/* Fixed header, CSRCs and extension (block from ext_block, h->extension_len bytes). */
int cp_rtp_write_header(const cp_rtp_header *h, const uint8_t *ext_block, uint8_t *out,
                        size_t cap, size_t *written);
/* A whole packet.  padding NULL: h->padding_len - 1 zero octets then the count; else the
 * h->padding_len octets given (the last must equal padding_len). */
int cp_rtp_write(const cp_rtp_header *h, const uint8_t *ext_block, const uint8_t *payload,
                 const uint8_t *padding, uint8_t *out, size_t cap, size_t *written);

/* ---- header extensions (RFC 8285) ---- */
typedef struct cp_rtp_ext_element {
    uint8_t id;
    const uint8_t *data;
    size_t len;
} cp_rtp_ext_element;

int cp_rtp_ext_form(uint16_t profile);
/* Next element of a block at *pos: 1 with id/offset/len set, 0 at the end, or a negated
 * status (-CP_RTP_ERR_EXT_ELEMENT, -CP_RTP_ERR_EXT_ID) for a malformed block. */
int cp_rtp_ext_next(uint16_t profile, const uint8_t *block, size_t len, size_t *pos,
                    uint8_t *id, size_t *data_offset, size_t *data_len);
int cp_rtp_ext_validate(uint16_t profile, const uint8_t *block, size_t len);
/* First element with this id: 1 found, 0 absent, or a negated status (malformed block). */
int cp_rtp_ext_find(uint16_t profile, const uint8_t *block, size_t len, uint8_t id,
                    size_t *data_offset, size_t *data_len);
/* The smallest form that holds every element (1 or 2), or 0 when neither does. */
int cp_rtp_ext_choose_form(const cp_rtp_ext_element *elems, size_t n);
/* Block bytes (padded to a multiple of 4) for these elements in this form. */
size_t cp_rtp_ext_block_len(int form, const cp_rtp_ext_element *elems, size_t n);
int cp_rtp_ext_build(int form, const cp_rtp_ext_element *elems, size_t n, uint8_t *out,
                     size_t cap, size_t *written, uint16_t *profile);

/* ---- typed extension values ---- */
/* abs-send-time: 24-bit 6.18 fixed-point seconds, modulo 64 s. */
uint32_t cp_rtp_abs_send_time_from_us(uint64_t time_us);
uint64_t cp_rtp_abs_send_time_to_us(uint32_t value);
void cp_rtp_abs_send_time_encode(uint32_t value, uint8_t *out);
int cp_rtp_abs_send_time_decode(const uint8_t *data, size_t len, uint32_t *value);
/* transport-wide congestion control sequence number, 16 bits. */
void cp_rtp_transport_cc_encode(uint16_t seq, uint8_t *out);
int cp_rtp_transport_cc_decode(const uint8_t *data, size_t len, uint16_t *seq);
/* RFC 6464 client-to-mixer audio level: V bit and level 0..127 (-dBov). */
uint8_t cp_rtp_audio_level_encode(int voice, int level);
int cp_rtp_audio_level_decode(const uint8_t *data, size_t len, int *voice, int *level);

/* Video frame marking (RFC 9626): 1 byte, 2 with the layer id, 3 with TL0PICIDX too. */
typedef struct cp_rtp_frame_marking {
    uint8_t start;             /* S: first packet of the frame */
    uint8_t end;               /* E: last packet of the frame */
    uint8_t independent;       /* I: decodable on its own (keyframe) */
    uint8_t discardable;       /* D: no other frame depends on it */
    uint8_t base_layer_sync;   /* B: depends only on the base layer */
    uint8_t tid;               /* temporal id 0..7 */
    uint8_t size;              /* 1, 2 (+ LID) or 3 (+ LID and TL0PICIDX) bytes */
    uint8_t layer_id;          /* LID (size >= 2) */
    uint8_t tl0_pic_idx;       /* TL0PICIDX (size 3) */
} cp_rtp_frame_marking;

int cp_rtp_frame_marking_decode(const uint8_t *data, size_t len, cp_rtp_frame_marking *fm);
size_t cp_rtp_frame_marking_encode(const cp_rtp_frame_marking *fm, uint8_t *out);

/* ---- wrap-safe arithmetic (the only place it lives) ---- */
int32_t cp_rtp_seq_diff(uint16_t a, uint16_t b);   /* a - b in [-32768, 32767] */
int64_t cp_rtp_ts_diff(uint32_t a, uint32_t b);    /* a - b in [-2^31, 2^31) */

typedef struct cp_rtp_unwrapper {
    int64_t last;
    uint8_t bits;     /* 16 or 32 */
    uint8_t started;
} cp_rtp_unwrapper;

void cp_rtp_unwrapper_init(cp_rtp_unwrapper *u, unsigned bits);
/* The extended value nearest to the last one (the first value maps to itself). */
int64_t cp_rtp_unwrap_peek(const cp_rtp_unwrapper *u, uint32_t value);
int64_t cp_rtp_unwrap(cp_rtp_unwrapper *u, uint32_t value);

/* ---- VP8 payload descriptor (RFC 7741 section 4.2) ---- */
typedef struct cp_vp8_descriptor {
    uint8_t extended;          /* X set even when no optional field follows */
    uint8_t non_reference;     /* N */
    uint8_t start;             /* S */
    uint8_t partition_id;      /* PID 0..7 */
    uint8_t picture_id_bits;   /* 0 (absent), 7 or 15 (M bit) */
    uint16_t picture_id;
    uint8_t has_tl0_pic_idx;   /* L */
    uint8_t tl0_pic_idx;
    uint8_t has_tid;           /* T */
    uint8_t tid;               /* 0..3 */
    uint8_t layer_sync;        /* Y */
    uint8_t has_key_idx;       /* K */
    uint8_t key_idx;           /* 0..31 */
    size_t size;               /* descriptor bytes (set by parse / len) */
} cp_vp8_descriptor;

int cp_vp8_descriptor_parse(const uint8_t *data, size_t len, cp_vp8_descriptor *d);
size_t cp_vp8_descriptor_len(const cp_vp8_descriptor *d);
/* Writes cp_vp8_descriptor_len(d) bytes (at most 6); CP_RTP_ERR_ARG on bad fields. */
int cp_vp8_descriptor_write(const cp_vp8_descriptor *d, uint8_t *out);
/* VP8 keyframe test on the start of a frame (RFC 6386 9.1: P bit 0 + start code). */
int cp_vp8_is_keyframe(const uint8_t *data, size_t len);

/* ---- VP8 packetizer ---- */
typedef struct cp_vp8_packetizer_params {
    const uint8_t *header;       /* RTP header template (marker clear), NULL: payloads only */
    size_t header_len;
    size_t transport_cc_offset;  /* of the 2-byte value in header; 0 = none */
    uint16_t transport_cc_seq;   /* for the first packet, +1 per packet */
    size_t frame_marking_offset; /* of the first frame-marking byte in header; 0 = none */
    cp_vp8_descriptor descriptor;  /* of the first packet; S is set only there */
    size_t mtu;                  /* largest packet (header + descriptor + data), bytes */
} cp_vp8_packetizer_params;

/* Packets needed for frame_len bytes: balanced split, every packet <= mtu. */
int cp_vp8_packet_count(const cp_vp8_packetizer_params *p, size_t frame_len, size_t *count);
size_t cp_vp8_packet_size(const cp_vp8_packetizer_params *p, size_t frame_len, size_t count,
                          size_t index);
/* Writes packet i into out[i] (each cp_vp8_packet_size bytes).  Sequence numbers count up
 * from the template's; the marker is set on the last packet. */
int cp_vp8_packetize(const cp_vp8_packetizer_params *p, const uint8_t *frame, size_t frame_len,
                     uint8_t *const *out, size_t count);

/* ---- VP8 frame assembler ---- */
enum cp_vp8_loss_reason {
    CP_VP8_LOSS_GAP = 1,       /* gave up waiting for missing packets (frame/time limit) */
    CP_VP8_LOSS_KEYFRAME = 2,  /* a complete keyframe made the older packets useless */
    CP_VP8_LOSS_WINDOW = 3,    /* a packet too far ahead pushed them out of the window */
    CP_VP8_LOSS_PARTIAL = 4,   /* a frame whose first packet was never seen */
    CP_VP8_LOSS_SKIP = 5,      /* the caller gave up (skip / flush) */
    CP_VP8_LOSS_RESET = 6      /* the caller reset the assembler */
};

enum cp_vp8_push_outcome {
    CP_VP8_PUSH_INSERTED = 1,
    CP_VP8_PUSH_DUPLICATE = 2,
    CP_VP8_PUSH_LATE = 3
};

typedef struct cp_vp8_assembler_config {
    size_t capacity;           /* packets in the window (rounded up to a power of two) */
    uint8_t has_ssrc;
    uint32_t ssrc;             /* accepted SSRC; without has_ssrc the first packet's */
    uint8_t frame_marking_id;  /* extension id of RFC 9626 frame marking, 0 = none */
    uint8_t encrypted;         /* never read the payload (keyframe unknown without marking) */
    uint32_t max_wait_frames;  /* complete frames held behind a gap before giving it up */
    double max_wait_ms;        /* time a complete frame waits behind a gap; < 0: no limit */
} cp_vp8_assembler_config;

typedef struct cp_vp8_frame_info {
    uint32_t ssrc;
    uint8_t payload_type;
    uint32_t timestamp;
    int64_t extended_timestamp;
    int64_t first_seq;         /* extended sequence numbers */
    int64_t last_seq;
    uint32_t packets;
    size_t size;               /* bytes of VP8 data (descriptors removed) */
    int8_t keyframe;           /* 1, 0, or -1 unknown (encrypted without frame marking) */
    uint8_t continuous;        /* nothing was given up since the previous frame */
    uint8_t marker;            /* ended by the RTP marker (else by a timestamp change) */
    uint8_t has_frame_marking;
    cp_rtp_frame_marking frame_marking;
    cp_vp8_descriptor descriptor;  /* of the first packet */
    double arrival_ms;         /* latest arrival among its packets; < 0 unknown */
} cp_vp8_frame_info;

typedef struct cp_vp8_loss {
    int reason;                /* cp_vp8_loss_reason */
    int64_t first_seq;         /* extended sequence numbers given up, inclusive */
    int64_t last_seq;
    uint32_t packets_received; /* how many of them had arrived */
    uint32_t timestamps;       /* distinct RTP timestamps among those (0: none arrived) */
    uint32_t first_timestamp;  /* of the first received one (when timestamps > 0) */
    uint32_t last_timestamp;   /* of the last received one (when timestamps > 0) */
} cp_vp8_loss;

typedef struct cp_vp8_assembler_stats {
    uint64_t packets;          /* accepted into the window */
    uint64_t bytes;            /* payload bytes accepted */
    uint64_t duplicates;
    uint64_t late;             /* behind the window (already emitted or given up) */
    uint64_t invalid;          /* not RTP, bad VP8 descriptor or bad frame marking */
    uint64_t foreign;          /* another SSRC */
    uint64_t frames;           /* emitted */
    uint64_t keyframes;        /* emitted keyframes */
    uint64_t losses;           /* loss records (a loss continuing the last one widens it) */
    uint64_t packets_dropped;  /* received packets given up in losses */
    uint64_t padding;          /* padding-only packets (no payload; keep the sequence) */
} cp_vp8_assembler_stats;

typedef struct cp_vp8_assembler cp_vp8_assembler;

cp_vp8_assembler *cp_vp8_assembler_new(const cp_vp8_assembler_config *cfg, int *status);
void cp_vp8_assembler_free(cp_vp8_assembler *a);
/* Forget everything (held packets become a RESET loss); keeps the SSRC lock unless unlock. */
void cp_vp8_assembler_reset(cp_vp8_assembler *a, int unlock_ssrc);
/* One RTP packet; arrival_ms < 0 if unknown.  outcome: cp_vp8_push_outcome.  64 late
 * packets in a row mean the sender started over: the assembler resets itself (a RESET loss)
 * and follows the new numbering.  A packet of another SSRC is refused (CP_RTP_ERR_SSRC). */
int cp_vp8_assembler_push(cp_vp8_assembler *a, const uint8_t *data, size_t len,
                          double arrival_ms, int *outcome);
/* Push packets until a frame is ready or all are consumed; invalid ones are counted and
 * skipped.  *consumed: how many were taken. */
void cp_vp8_assembler_push_batch(cp_vp8_assembler *a, const uint8_t *const *data,
                                 const size_t *lens, size_t n, double arrival_ms,
                                 size_t *consumed);
/* Apply the time limit at now_ms (no packet needed). */
void cp_vp8_assembler_advance(cp_vp8_assembler *a, double now_ms);
/* Give up the gap at the head now; with all, also every incomplete frame behind it. */
void cp_vp8_assembler_skip(cp_vp8_assembler *a, int all);
/* 1 when a complete frame is ready (info filled), else 0. */
int cp_vp8_assembler_ready(cp_vp8_assembler *a, cp_vp8_frame_info *info);
/* Copy the ready frame (info->size bytes) into out and release it. */
int cp_vp8_assembler_take(cp_vp8_assembler *a, uint8_t *out, size_t cap);
/* Pop the oldest loss record: 1 with *loss filled, 0 when none. */
int cp_vp8_assembler_pop_loss(cp_vp8_assembler *a, cp_vp8_loss *loss);
void cp_vp8_assembler_get_stats(const cp_vp8_assembler *a, cp_vp8_assembler_stats *s);
size_t cp_vp8_assembler_held(const cp_vp8_assembler *a);

#endif
