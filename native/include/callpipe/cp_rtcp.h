/* RTCP (RFC 3550 section 6, RFC 4585, RFC 5104, RFC 5506): a validating walk over a compound
 * or reduced-size packet, accessors that decode the validated parts, and writers for SR, RR,
 * SDES, BYE, APP, generic NACK, PLI, FIR, REMB and opaque packets.
 *
 * Parsing is two steps.  cp_rtcp_parse() checks the whole buffer (every packet, every length,
 * every SDES item, every feedback FCI) and fills one cp_rtcp_packet per packet.  After it
 * returned CP_RTCP_OK the accessors below read the validated bytes and cannot fail; they must
 * only be given a packet that cp_rtcp_parse() produced from the same buffer.
 *
 * Writers append nothing: each writes one packet at out[0..) and reports its size in bytes;
 * CP_RTCP_ERR_BUFFER when out_cap is too small (nothing useful is written then).
 *
 * Kept in cffi's parsable C subset (plain prototypes, enums for constants, no macros).
 * No function touches global state; all are thread-safe on distinct buffers.
 */
#ifndef CALLPIPE_CP_RTCP_H
#define CALLPIPE_CP_RTCP_H

#include <stddef.h>
#include <stdint.h>

/* Return codes.  0 is success; every failure is a distinct positive code. */
enum cp_rtcp_status {
    CP_RTCP_OK = 0,
    CP_RTCP_ERR_EMPTY = 1,      /* no bytes at all */
    CP_RTCP_ERR_TRUNCATED = 2,  /* shorter than a header, or than a header's length field */
    CP_RTCP_ERR_VERSION = 3,    /* version field is not 2 */
    CP_RTCP_ERR_TYPE = 4,       /* packet type outside 192..223 (not RTCP) */
    CP_RTCP_ERR_PADDING = 5,    /* P bit on a packet that is not last, or a bad padding count */
    CP_RTCP_ERR_FIRST = 6,      /* compound does not start with SR or RR (reduced size off) */
    CP_RTCP_ERR_LENGTH = 7,     /* length too short for the counted report blocks / SSRCs */
    CP_RTCP_ERR_SDES = 8,       /* SDES chunk: item overruns, no terminator, bad padding, excess */
    CP_RTCP_ERR_BYE = 9,        /* BYE reason overruns the packet or has non-zero padding */
    CP_RTCP_ERR_FEEDBACK = 10,  /* feedback FCI: empty NACK, PLI with FCI, FIR/REMB size */
    CP_RTCP_ERR_RESERVED = 11,  /* a reserved field is not zero (FIR entry) */
    CP_RTCP_ERR_TOO_MANY = 12,  /* more packets than the caller's array holds */
    CP_RTCP_ERR_BUFFER = 13,    /* output buffer too small */
    CP_RTCP_ERR_ARG = 14        /* bad argument to a writer (count > 31, value out of range) */
};

/* Packet types (RFC 3550 section 12.1, RFC 4585 section 6.1). */
enum cp_rtcp_type {
    CP_RTCP_SR = 200,
    CP_RTCP_RR = 201,
    CP_RTCP_SDES = 202,
    CP_RTCP_BYE = 203,
    CP_RTCP_APP = 204,
    CP_RTCP_RTPFB = 205,
    CP_RTCP_PSFB = 206
};

/* Feedback message types (the FMT field). */
enum cp_rtcp_fmt {
    CP_RTCP_FMT_NACK = 1,  /* RTPFB: generic NACK, RFC 4585 section 6.2.1 */
    CP_RTCP_FMT_PLI = 1,   /* PSFB: picture loss indication, RFC 4585 section 6.3.1 */
    CP_RTCP_FMT_FIR = 4,   /* PSFB: full intra request, RFC 5104 section 4.3.1 */
    CP_RTCP_FMT_AFB = 15   /* PSFB: application layer feedback (REMB when it says "REMB") */
};

/* What cp_rtcp_parse() recognised a packet as. */
enum cp_rtcp_kind {
    CP_RTCP_KIND_SR = 1,
    CP_RTCP_KIND_RR = 2,
    CP_RTCP_KIND_SDES = 3,
    CP_RTCP_KIND_BYE = 4,
    CP_RTCP_KIND_APP = 5,
    CP_RTCP_KIND_NACK = 6,
    CP_RTCP_KIND_PLI = 7,
    CP_RTCP_KIND_FIR = 8,
    CP_RTCP_KIND_REMB = 9,
    CP_RTCP_KIND_FEEDBACK = 10, /* RTPFB/PSFB with another FMT: sender, media SSRC, raw FCI */
    CP_RTCP_KIND_OTHER = 11     /* any other type 192..223 (XR, ...): raw body */
};

enum cp_rtcp_flags {
    CP_RTCP_REDUCED_SIZE = 1 /* accept a first packet that is not SR/RR (RFC 5506) */
};

enum cp_rtcp_limits {
    CP_RTCP_MAX_COUNT = 31,       /* report blocks, SDES chunks, BYE SSRCs per packet */
    CP_RTCP_HEADER = 4,           /* bytes of the common header */
    CP_RTCP_REPORT_BLOCK = 24,    /* bytes of one report block */
    CP_RTCP_SENDER_INFO = 20,     /* bytes of the SR sender info */
    CP_RTCP_MAX_PACKET = 262144,  /* bytes: 4 * (65535 + 1), the largest single packet */
    CP_RTCP_MAX_REMB_SSRCS = 255
};

/* One packet of a compound, as found by cp_rtcp_parse().  Offsets are bytes from the start
 * of the buffer given to cp_rtcp_parse(). */
typedef struct cp_rtcp_packet {
    uint32_t offset;     /* start of this packet's header */
    uint32_t size;       /* whole packet in bytes: header, body and padding */
    uint32_t body;       /* start of the variable part: report blocks, SDES chunks, BYE SSRCs,
                          * NACK/FIR FCI entries, REMB SSRCs, APP data, opaque FCI / body */
    uint32_t body_len;   /* bytes of the variable part */
    uint32_t ext;        /* SR/RR: profile-specific extension; BYE: reason text */
    uint32_t ext_len;    /* bytes of ext (BYE: reason length, 0..255) */
    uint32_t items;      /* report blocks, SDES chunks, BYE SSRCs, NACK items, FIR entries,
                          * REMB SSRCs (0 for the others) */
    uint32_t ssrc;       /* SR/RR/APP/feedback: sender SSRC (packet sender) */
    uint32_t media_ssrc; /* feedback: SSRC of the media source */
    uint32_t padding;    /* bytes of padding at the end (only the last packet has any) */
    uint8_t type;        /* packet type, 192..223 */
    uint8_t count;       /* the 5-bit RC / SC / FMT / subtype field */
    uint8_t kind;        /* enum cp_rtcp_kind */
    uint8_t has_reason;  /* BYE: 1 when a reason is present (even an empty one) */
} cp_rtcp_packet;

/* SR sender info (RFC 3550 section 6.4.1). */
typedef struct cp_rtcp_sender_info {
    uint64_t ntp_timestamp; /* 32.32 fixed point seconds since 1900 */
    uint32_t rtp_timestamp;
    uint32_t packet_count;  /* packets sent */
    uint32_t octet_count;   /* payload bytes sent */
} cp_rtcp_sender_info;

/* A reception report block (RFC 3550 section 6.4.1). */
typedef struct cp_rtcp_report_block {
    uint32_t ssrc;
    uint8_t fraction_lost;   /* lost / expected since the last report, in 1/256 */
    int32_t cumulative_lost; /* signed 24-bit */
    uint32_t highest_seq;    /* extended highest sequence number received */
    uint32_t jitter;         /* interarrival jitter, RTP timestamp units */
    uint32_t lsr;            /* middle 32 bits of the last SR's NTP timestamp */
    uint32_t dlsr;           /* delay since that SR, 1/65536 s */
} cp_rtcp_report_block;

/* One SDES item with its chunk's index (0..30) and SSRC.  offset/length locate the text in
 * the parsed buffer (parse) or in the text buffer given to the writer.  type 0 stands for a
 * chunk without items (its SSRC and the terminator only). */
typedef struct cp_rtcp_sdes_item {
    uint32_t ssrc;
    uint32_t offset;
    uint8_t chunk;
    uint8_t type;
    uint8_t length;
} cp_rtcp_sdes_item;

/* One FIR entry (RFC 5104 section 4.3.1.1). */
typedef struct cp_rtcp_fir_entry {
    uint32_t ssrc;
    uint8_t seq_nr;
} cp_rtcp_fir_entry;

/* ---- parsing ---------------------------------------------------------------------------- */

/* Validate data[0..len) as a compound RTCP packet (flags: CP_RTCP_REDUCED_SIZE to also accept
 * a reduced-size packet) and describe each packet in out[0..*n).  out needs at most len / 4
 * entries; CP_RTCP_ERR_TOO_MANY when cap is smaller than the number of packets.  On failure
 * *n is the number of packets that were valid before the bad one, and *where is the byte
 * offset of the bad packet (both may be NULL). */
int cp_rtcp_parse(const uint8_t *data, size_t len, int flags, cp_rtcp_packet *out, size_t cap,
                  size_t *n, size_t *where);

/* SR only: the sender info. */
void cp_rtcp_sender_info_get(const uint8_t *data, const cp_rtcp_packet *p,
                             cp_rtcp_sender_info *out);

/* SR/RR: report block i (i < p->items). */
void cp_rtcp_report_block_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                              cp_rtcp_report_block *out);

/* BYE / REMB: SSRC i of the list (i < p->items). */
uint32_t cp_rtcp_ssrc_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i);

/* SDES: all items of all chunks, in order, into out[0..*n) (a chunk without items gives one
 * entry of type 0).  Needs at most p->body_len / 2 entries; CP_RTCP_ERR_TOO_MANY otherwise. */
int cp_rtcp_sdes_items(const uint8_t *data, const cp_rtcp_packet *p, cp_rtcp_sdes_item *out,
                       size_t cap, size_t *n);

/* NACK: item i as (PID, BLP). */
void cp_rtcp_nack_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i, uint16_t *pid,
                      uint16_t *blp);

/* FIR: entry i. */
void cp_rtcp_fir_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                     cp_rtcp_fir_entry *out);

/* REMB: the bitrate as mantissa * 2^exponent bits per second. */
void cp_rtcp_remb_get(const uint8_t *data, const cp_rtcp_packet *p, uint8_t *exponent,
                      uint32_t *mantissa);

/* ---- generic NACK helpers (RFC 4585 section 6.2.1) --------------------------------------- */

/* Pack lost sequence numbers into (PID, BLP) items: each seq either starts an item or sets
 * bit (seq - PID - 1) of the current item's BLP when 1 <= seq - PID <= 16 (mod 2^16).  Give
 * seqs in ascending wrap-aware order for the fewest items; any order is encoded correctly.
 * At most n items; CP_RTCP_ERR_BUFFER when cap is smaller than needed. */
int cp_rtcp_nack_pack(const uint16_t *seqs, size_t n, uint16_t *pids, uint16_t *blps, size_t cap,
                      size_t *n_items);

/* Expand (PID, BLP) items back to sequence numbers, in item order (PID, then BLP bit 0..15).
 * At most 17 * n_items seqs; CP_RTCP_ERR_BUFFER when cap is smaller than needed. */
int cp_rtcp_nack_unpack(const uint16_t *pids, const uint16_t *blps, size_t n_items,
                        uint16_t *seqs, size_t cap, size_t *n);

/* ---- writers ---------------------------------------------------------------------------- */

/* SR with n report blocks (n <= 31) and an optional extension (ext_len multiple of 4). */
int cp_rtcp_write_sr(uint8_t *out, size_t out_cap, uint32_t ssrc, const cp_rtcp_sender_info *si,
                     const cp_rtcp_report_block *blocks, size_t n, const uint8_t *ext,
                     size_t ext_len, size_t *written);

/* RR with n report blocks (n <= 31) and an optional extension (ext_len multiple of 4). */
int cp_rtcp_write_rr(uint8_t *out, size_t out_cap, uint32_t ssrc,
                     const cp_rtcp_report_block *blocks, size_t n, const uint8_t *ext,
                     size_t ext_len, size_t *written);

/* SDES from items grouped into chunks by consecutive equal chunk index (type 0 = a chunk with
 * no items; it must then be the chunk's only entry; the SSRC of a chunk's first entry is
 * used).  Item text is text[offset..offset+length).  At most 31 chunks. */
int cp_rtcp_write_sdes(uint8_t *out, size_t out_cap, const cp_rtcp_sdes_item *items, size_t n,
                       const uint8_t *text, size_t text_len, size_t *written);

/* BYE for n SSRCs (n <= 31) with an optional reason (has_reason, reason_len <= 255). */
int cp_rtcp_write_bye(uint8_t *out, size_t out_cap, const uint32_t *ssrcs, size_t n,
                      int has_reason, const uint8_t *reason, size_t reason_len, size_t *written);

/* APP with a 5-bit subtype, 4-byte name and data (data_len multiple of 4). */
int cp_rtcp_write_app(uint8_t *out, size_t out_cap, uint8_t subtype, uint32_t ssrc,
                      const uint8_t *name, const uint8_t *data, size_t data_len,
                      size_t *written);

/* Generic NACK with n >= 1 (PID, BLP) items. */
int cp_rtcp_write_nack(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *pids, const uint16_t *blps, size_t n, size_t *written);

/* PLI (12 bytes). */
int cp_rtcp_write_pli(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      size_t *written);

/* FIR with n >= 1 entries; media_ssrc should be 0 (RFC 5104 section 4.3.1.2). */
int cp_rtcp_write_fir(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      const cp_rtcp_fir_entry *entries, size_t n, size_t *written);

/* REMB (draft-alvestrand-rmcat-remb): exponent <= 63, mantissa < 2^18, n <= 255 SSRCs. */
int cp_rtcp_write_remb(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint8_t exponent, uint32_t mantissa, const uint32_t *ssrcs, size_t n,
                       size_t *written);

/* Any packet from its header fields and a raw body (body_len multiple of 4): used for
 * feedback with other FMTs (body = sender SSRC, media SSRC, FCI) and unknown types. */
int cp_rtcp_write_raw(uint8_t *out, size_t out_cap, uint8_t type, uint8_t count,
                      const uint8_t *body, size_t body_len, size_t *written);

#endif
