/* RTCP packets: RFC 3550 section 6 (SR, RR, SDES, BYE, APP), RFC 4585 (generic NACK, PLI,
 * the feedback packet format), RFC 5104 (FIR), RFC 5506 (reduced-size RTCP) and REMB
 * (draft-alvestrand-rmcat-remb-03).  See callpipe/cp_rtcp.h for the contract.
 *
 * Every packet of a compound starts with the common header:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|  count  |      PT       |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * length is the packet's size in 32-bit words minus one, header and padding included.  When
 * P is set (only allowed on the last packet of a compound) the last octet is the number of
 * padding octets including itself, a multiple of four.
 */
#include "callpipe/cp_rtcp.h"

#include <string.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd24(const uint8_t *p) {
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}
static inline uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr24(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The common header for a packet of `size` bytes (a multiple of 4, >= 4). */
static inline void wr_header(uint8_t *out, uint8_t count, uint8_t type, size_t size) {
    out[0] = (uint8_t)(0x80 | (count & 0x1f));
    out[1] = type;
    wr16(out + 2, (uint16_t)(size / 4 - 1));
}

/* Check room and size limits shared by all writers. */
static inline int room(size_t size, size_t out_cap) {
    if (size > CP_RTCP_MAX_PACKET) return CP_RTCP_ERR_ARG;
    if (size > out_cap) return CP_RTCP_ERR_BUFFER;
    return CP_RTCP_OK;
}

/* ---- report blocks (RFC 3550 section 6.4.1) ----------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                 SSRC_1 (SSRC of first source)                 |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | fraction lost |       cumulative number of packets lost       |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |           extended highest sequence number received           |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                      interarrival jitter                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                         last SR (LSR)                         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                   delay since last SR (DLSR)                  |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *
 * cumulative lost is a signed 24-bit two's complement number (duplicates can make it
 * negative).
 */
static void rd_block(const uint8_t *p, cp_rtcp_report_block *b) {
    b->ssrc = rd32(p);
    b->fraction_lost = p[4];
    uint32_t lost = rd24(p + 5);
    b->cumulative_lost = (lost & 0x800000u) ? (int32_t)lost - 0x1000000 : (int32_t)lost;
    b->highest_seq = rd32(p + 8);
    b->jitter = rd32(p + 12);
    b->lsr = rd32(p + 16);
    b->dlsr = rd32(p + 20);
}

static int wr_blocks(uint8_t *p, const cp_rtcp_report_block *blocks, size_t n) {
    for (size_t i = 0; i < n; i++, p += CP_RTCP_REPORT_BLOCK) {
        const cp_rtcp_report_block *b = &blocks[i];
        if (b->cumulative_lost < -0x800000 || b->cumulative_lost > 0x7fffff) return CP_RTCP_ERR_ARG;
        wr32(p, b->ssrc);
        p[4] = b->fraction_lost;
        wr24(p + 5, (uint32_t)b->cumulative_lost & 0xffffffu);
        wr32(p + 8, b->highest_seq);
        wr32(p + 12, b->jitter);
        wr32(p + 16, b->lsr);
        wr32(p + 20, b->dlsr);
    }
    return CP_RTCP_OK;
}

void cp_rtcp_report_block_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                              cp_rtcp_report_block *out) {
    rd_block(data + p->body + i * CP_RTCP_REPORT_BLOCK, out);
}

/* ---- SR (RFC 3550 section 6.4.1) ---------------------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|    RC   |   PT=SR=200   |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                         SSRC of sender                        |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |              NTP timestamp, most significant word             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |             NTP timestamp, least significant word             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                         RTP timestamp                         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                     sender's packet count                     |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                      sender's octet count                     |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                 report blocks (RC x 24 bytes)                 |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                  profile-specific extensions                  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
void cp_rtcp_sender_info_get(const uint8_t *data, const cp_rtcp_packet *p,
                             cp_rtcp_sender_info *out) {
    const uint8_t *s = data + p->offset + 8;
    out->ntp_timestamp = ((uint64_t)rd32(s) << 32) | rd32(s + 4);
    out->rtp_timestamp = rd32(s + 8);
    out->packet_count = rd32(s + 12);
    out->octet_count = rd32(s + 16);
}

int cp_rtcp_write_sr(uint8_t *out, size_t out_cap, uint32_t ssrc, const cp_rtcp_sender_info *si,
                     const cp_rtcp_report_block *blocks, size_t n, const uint8_t *ext,
                     size_t ext_len, size_t *written) {
    if (n > CP_RTCP_MAX_COUNT || ext_len % 4 || (ext_len && !ext) || (n && !blocks) || !si)
        return CP_RTCP_ERR_ARG;
    size_t size = 8 + CP_RTCP_SENDER_INFO + n * CP_RTCP_REPORT_BLOCK + ext_len;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, (uint8_t)n, CP_RTCP_SR, size);
    wr32(out + 4, ssrc);
    wr32(out + 8, (uint32_t)(si->ntp_timestamp >> 32));
    wr32(out + 12, (uint32_t)si->ntp_timestamp);
    wr32(out + 16, si->rtp_timestamp);
    wr32(out + 20, si->packet_count);
    wr32(out + 24, si->octet_count);
    if ((rc = wr_blocks(out + 28, blocks, n))) return rc;
    if (ext_len) memcpy(out + 28 + n * CP_RTCP_REPORT_BLOCK, ext, ext_len);
    *written = size;
    return CP_RTCP_OK;
}

/* ---- RR (RFC 3550 section 6.4.2) ---------------------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|    RC   |   PT=RR=201   |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                     SSRC of packet sender                     |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                 report blocks (RC x 24 bytes)                 |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                  profile-specific extensions                  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
int cp_rtcp_write_rr(uint8_t *out, size_t out_cap, uint32_t ssrc,
                     const cp_rtcp_report_block *blocks, size_t n, const uint8_t *ext,
                     size_t ext_len, size_t *written) {
    if (n > CP_RTCP_MAX_COUNT || ext_len % 4 || (ext_len && !ext) || (n && !blocks))
        return CP_RTCP_ERR_ARG;
    size_t size = 8 + n * CP_RTCP_REPORT_BLOCK + ext_len;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, (uint8_t)n, CP_RTCP_RR, size);
    wr32(out + 4, ssrc);
    if ((rc = wr_blocks(out + 8, blocks, n))) return rc;
    if (ext_len) memcpy(out + 8 + n * CP_RTCP_REPORT_BLOCK, ext, ext_len);
    *written = size;
    return CP_RTCP_OK;
}

/* ---- SDES (RFC 3550 section 6.5) ---------------------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|    SC   |  PT=SDES=202  |             length            |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |                          SSRC/CSRC_1                          |  chunk 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |     type      |    length     |  text (length octets) ...     |  items
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  ... more items ...   | type 0 (END) | 0-3 null octets to the |
 *    |                       |              | next 32-bit boundary   |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *
 * Every chunk ends with one END octet plus the null octets that reach the next 32-bit
 * boundary (so 1 to 4 null octets); CNAME is type 1.  Unknown item types are kept.
 */
static int sdes_walk(const uint8_t *body, size_t len, unsigned chunks, cp_rtcp_sdes_item *out,
                     size_t cap, size_t *n, uint32_t base) {
    size_t pos = 0, k = 0;
    for (unsigned c = 0; c < chunks; c++) {
        if (len - pos < 4) return CP_RTCP_ERR_SDES;
        uint32_t ssrc = rd32(body + pos);
        pos += 4;
        size_t first = k;
        for (;;) {
            if (pos >= len) return CP_RTCP_ERR_SDES; /* no END octet */
            uint8_t type = body[pos];
            if (type == 0) break;
            if (len - pos < 2 || len - pos - 2 < body[pos + 1]) return CP_RTCP_ERR_SDES;
            if (out) {
                if (k == cap) return CP_RTCP_ERR_TOO_MANY;
                out[k].ssrc = ssrc;
                out[k].chunk = (uint8_t)c;
                out[k].type = type;
                out[k].length = body[pos + 1];
                out[k].offset = base + (uint32_t)(pos + 2);
            }
            k++;
            pos += 2 + (size_t)body[pos + 1];
        }
        size_t end = (pos + 4) & ~(size_t)3; /* END octet, then nulls to the boundary */
        if (end > len) return CP_RTCP_ERR_SDES;
        for (size_t i = pos; i < end; i++)
            if (body[i]) return CP_RTCP_ERR_SDES;
        pos = end;
        if (k == first) { /* a chunk without items */
            if (out) {
                if (k == cap) return CP_RTCP_ERR_TOO_MANY;
                out[k].ssrc = ssrc;
                out[k].chunk = (uint8_t)c;
                out[k].type = 0;
                out[k].length = 0;
                out[k].offset = base + (uint32_t)pos;
            }
            k++;
        }
    }
    if (pos != len) return CP_RTCP_ERR_SDES; /* bytes after the last counted chunk */
    if (n) *n = k;
    return CP_RTCP_OK;
}

int cp_rtcp_sdes_items(const uint8_t *data, const cp_rtcp_packet *p, cp_rtcp_sdes_item *out,
                       size_t cap, size_t *n) {
    return sdes_walk(data + p->body, p->body_len, p->items, out, cap, n, p->body);
}

int cp_rtcp_write_sdes(uint8_t *out, size_t out_cap, const cp_rtcp_sdes_item *items, size_t n,
                       const uint8_t *text, size_t text_len, size_t *written) {
    if (n && !items) return CP_RTCP_ERR_ARG;
    size_t size = 4, chunks = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, csize = 4;
        for (; j < n && items[j].chunk == items[i].chunk; j++) {
            if (items[j].type == 0) {
                if (j != i) return CP_RTCP_ERR_ARG; /* "no items" must stand alone */
                if (j + 1 < n && items[j + 1].chunk == items[i].chunk) return CP_RTCP_ERR_ARG;
                j++;
                break;
            }
            if ((size_t)items[j].offset + items[j].length > text_len) return CP_RTCP_ERR_ARG;
            csize += 2 + (size_t)items[j].length;
        }
        size += (csize + 4) & ~(size_t)3;
        chunks++;
        i = j;
    }
    if (chunks > CP_RTCP_MAX_COUNT) return CP_RTCP_ERR_ARG;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, (uint8_t)chunks, CP_RTCP_SDES, size);
    size_t pos = 4;
    for (size_t i = 0; i < n;) {
        size_t start = pos, j = i;
        wr32(out + pos, items[i].ssrc);
        pos += 4;
        for (; j < n && items[j].chunk == items[i].chunk; j++) {
            if (items[j].type == 0) {
                j++;
                break;
            }
            out[pos] = items[j].type;
            out[pos + 1] = items[j].length;
            if (items[j].length) memcpy(out + pos + 2, text + items[j].offset, items[j].length);
            pos += 2 + (size_t)items[j].length;
        }
        size_t end = start + (((pos - start) + 4) & ~(size_t)3);
        memset(out + pos, 0, end - pos);
        pos = end;
        i = j;
    }
    *written = size;
    return CP_RTCP_OK;
}

/* ---- BYE (RFC 3550 section 6.6) ----------------------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|    SC   |   PT=BYE=203  |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                           SSRC/CSRC                           |  x SC
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |     length    |               reason for leaving            ... (opt)
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The reason is padded with null octets to the next 32-bit boundary.
 */
int cp_rtcp_write_bye(uint8_t *out, size_t out_cap, const uint32_t *ssrcs, size_t n,
                      int has_reason, const uint8_t *reason, size_t reason_len, size_t *written) {
    if (n > CP_RTCP_MAX_COUNT || (n && !ssrcs) || (has_reason && reason_len > 255) ||
        (has_reason && reason_len && !reason))
        return CP_RTCP_ERR_ARG;
    size_t size = 4 + 4 * n + (has_reason ? ((1 + reason_len + 3) & ~(size_t)3) : 0);
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, (uint8_t)n, CP_RTCP_BYE, size);
    for (size_t i = 0; i < n; i++) wr32(out + 4 + 4 * i, ssrcs[i]);
    if (has_reason) {
        uint8_t *r = out + 4 + 4 * n;
        r[0] = (uint8_t)reason_len;
        if (reason_len) memcpy(r + 1, reason, reason_len);
        memset(r + 1 + reason_len, 0, (size_t)(out + size - (r + 1 + reason_len)));
    }
    *written = size;
    return CP_RTCP_OK;
}

uint32_t cp_rtcp_ssrc_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i) {
    return rd32(data + p->body + 4 * i);
}

/* ---- APP (RFC 3550 section 6.7) ----------------------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P| subtype |   PT=APP=204  |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                           SSRC/CSRC                           |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                          name (ASCII)                         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                   application-dependent data                ...
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
int cp_rtcp_write_app(uint8_t *out, size_t out_cap, uint8_t subtype, uint32_t ssrc,
                      const uint8_t *name, const uint8_t *data, size_t data_len,
                      size_t *written) {
    if (subtype > 31 || data_len % 4 || !name || (data_len && !data)) return CP_RTCP_ERR_ARG;
    size_t size = 12 + data_len;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, subtype, CP_RTCP_APP, size);
    wr32(out + 4, ssrc);
    memcpy(out + 8, name, 4);
    if (data_len) memcpy(out + 12, data, data_len);
    *written = size;
    return CP_RTCP_OK;
}

/* ---- feedback messages (RFC 4585 section 6.1) --------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|   FMT   |  PT=205/206   |             length            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                  SSRC of packet sender                        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                  SSRC of media source                         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    :            Feedback Control Information (FCI)                 :
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
static inline void wr_fb(uint8_t *out, uint8_t fmt, uint8_t type, size_t size, uint32_t sender,
                         uint32_t media) {
    wr_header(out, fmt, type, size);
    wr32(out + 4, sender);
    wr32(out + 8, media);
}

/* ---- generic NACK (RFC 4585 section 6.2.1): RTPFB, FMT 1 ---------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |            PID                |             BLP               |  x N (N >= 1)
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * PID is a lost packet's sequence number; bit i of BLP (bit 0 = least significant) set means
 * packet PID + i + 1 (mod 2^16) is lost too.
 */
void cp_rtcp_nack_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i, uint16_t *pid,
                      uint16_t *blp) {
    const uint8_t *q = data + p->body + 4 * i;
    *pid = rd16(q);
    *blp = rd16(q + 2);
}

int cp_rtcp_write_nack(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *pids, const uint16_t *blps, size_t n, size_t *written) {
    if (n == 0 || !pids || !blps) return CP_RTCP_ERR_ARG;
    if (n > (CP_RTCP_MAX_PACKET - 12) / 4) return CP_RTCP_ERR_ARG;
    size_t size = 12 + 4 * n;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_fb(out, CP_RTCP_FMT_NACK, CP_RTCP_RTPFB, size, sender_ssrc, media_ssrc);
    for (size_t i = 0; i < n; i++) {
        wr16(out + 12 + 4 * i, pids[i]);
        wr16(out + 14 + 4 * i, blps[i]);
    }
    *written = size;
    return CP_RTCP_OK;
}

int cp_rtcp_nack_pack(const uint16_t *seqs, size_t n, uint16_t *pids, uint16_t *blps, size_t cap,
                      size_t *n_items) {
    size_t k = 0;
    if (n && (!seqs || !pids || !blps)) return CP_RTCP_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        uint16_t s = seqs[i];
        if (k) {
            uint16_t d = (uint16_t)(s - pids[k - 1]); /* distance mod 2^16 */
            if (d == 0) continue;
            if (d <= 16) {
                blps[k - 1] = (uint16_t)(blps[k - 1] | (1u << (d - 1)));
                continue;
            }
        }
        if (k == cap) return CP_RTCP_ERR_BUFFER;
        pids[k] = s;
        blps[k] = 0;
        k++;
    }
    *n_items = k;
    return CP_RTCP_OK;
}

int cp_rtcp_nack_unpack(const uint16_t *pids, const uint16_t *blps, size_t n_items,
                        uint16_t *seqs, size_t cap, size_t *n) {
    size_t k = 0;
    if (n_items && (!pids || !blps)) return CP_RTCP_ERR_ARG;
    for (size_t i = 0; i < n_items; i++) {
        if (k == cap) return CP_RTCP_ERR_BUFFER;
        seqs[k++] = pids[i];
        for (unsigned b = 0; b < 16; b++) {
            if (blps[i] & (1u << b)) {
                if (k == cap) return CP_RTCP_ERR_BUFFER;
                seqs[k++] = (uint16_t)(pids[i] + b + 1);
            }
        }
    }
    *n = k;
    return CP_RTCP_OK;
}

/* ---- PLI (RFC 4585 section 6.3.1): PSFB, FMT 1, no FCI (length field 2) ------------------ */
int cp_rtcp_write_pli(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      size_t *written) {
    int rc = room(12, out_cap);
    if (rc) return rc;
    wr_fb(out, CP_RTCP_FMT_PLI, CP_RTCP_PSFB, 12, sender_ssrc, media_ssrc);
    *written = 12;
    return CP_RTCP_OK;
}

/* ---- FIR (RFC 5104 section 4.3.1): PSFB, FMT 4 --------------------------------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                              SSRC                             |  x N (N >= 1)
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Seq nr.       |    Reserved (0)                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The header's "SSRC of media source" is unused and set to 0 (section 4.3.1.2).
 */
void cp_rtcp_fir_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                     cp_rtcp_fir_entry *out) {
    const uint8_t *q = data + p->body + 8 * i;
    out->ssrc = rd32(q);
    out->seq_nr = q[4];
}

int cp_rtcp_write_fir(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      const cp_rtcp_fir_entry *entries, size_t n, size_t *written) {
    if (n == 0 || !entries || n > (CP_RTCP_MAX_PACKET - 12) / 8) return CP_RTCP_ERR_ARG;
    size_t size = 12 + 8 * n;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_fb(out, CP_RTCP_FMT_FIR, CP_RTCP_PSFB, size, sender_ssrc, media_ssrc);
    for (size_t i = 0; i < n; i++) {
        wr32(out + 12 + 8 * i, entries[i].ssrc);
        wr32(out + 16 + 8 * i, (uint32_t)entries[i].seq_nr << 24);
    }
    *written = size;
    return CP_RTCP_OK;
}

/* ---- REMB (draft-alvestrand-rmcat-remb-03 section 2.2): PSFB, FMT 15 ---------------------
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Unique identifier 'R' 'E' 'M' 'B'                            |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Num SSRC     | BR Exp    |  BR Mantissa                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |   SSRC feedback                                               |  x Num SSRC
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * bitrate = mantissa * 2^exp bits per second.
 */
void cp_rtcp_remb_get(const uint8_t *data, const cp_rtcp_packet *p, uint8_t *exponent,
                      uint32_t *mantissa) {
    const uint8_t *q = data + p->offset + 16;
    *exponent = (uint8_t)(q[1] >> 2);
    *mantissa = ((uint32_t)(q[1] & 3) << 16) | rd16(q + 2);
}

int cp_rtcp_write_remb(uint8_t *out, size_t out_cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint8_t exponent, uint32_t mantissa, const uint32_t *ssrcs, size_t n,
                       size_t *written) {
    if (exponent > 63 || mantissa >= (1u << 18) || n > CP_RTCP_MAX_REMB_SSRCS || (n && !ssrcs))
        return CP_RTCP_ERR_ARG;
    size_t size = 20 + 4 * n;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_fb(out, CP_RTCP_FMT_AFB, CP_RTCP_PSFB, size, sender_ssrc, media_ssrc);
    memcpy(out + 12, "REMB", 4);
    out[16] = (uint8_t)n;
    out[17] = (uint8_t)((exponent << 2) | (mantissa >> 16));
    wr16(out + 18, (uint16_t)mantissa);
    for (size_t i = 0; i < n; i++) wr32(out + 20 + 4 * i, ssrcs[i]);
    *written = size;
    return CP_RTCP_OK;
}

int cp_rtcp_write_raw(uint8_t *out, size_t out_cap, uint8_t type, uint8_t count,
                      const uint8_t *body, size_t body_len, size_t *written) {
    if (type < 192 || type > 223 || count > 31 || body_len % 4 || (body_len && !body))
        return CP_RTCP_ERR_ARG;
    size_t size = 4 + body_len;
    int rc = room(size, out_cap);
    if (rc) return rc;
    wr_header(out, count, type, size);
    if (body_len) memcpy(out + 4, body, body_len);
    *written = size;
    return CP_RTCP_OK;
}

/* ---- the validating walk -------------------------------------------------------------- */

/* Validate one packet's contents (header already checked) and fill the type-specific parts of
 * *p.  pl: bytes after the header, without padding. */
static int check_packet(const uint8_t *data, cp_rtcp_packet *p) {
    const uint8_t *q = data + p->offset;
    size_t pl = p->size - CP_RTCP_HEADER - p->padding;
    size_t c = p->count;
    p->body = p->offset + CP_RTCP_HEADER;
    p->body_len = (uint32_t)pl;
    switch (p->type) {
    case CP_RTCP_SR:
    case CP_RTCP_RR: {
        size_t fixed = p->type == CP_RTCP_SR ? 4 + CP_RTCP_SENDER_INFO : 4;
        if (pl < fixed + c * CP_RTCP_REPORT_BLOCK) return CP_RTCP_ERR_LENGTH;
        p->kind = p->type == CP_RTCP_SR ? CP_RTCP_KIND_SR : CP_RTCP_KIND_RR;
        p->ssrc = rd32(q + 4);
        p->body = p->offset + 4 + (uint32_t)fixed;
        p->body_len = (uint32_t)(c * CP_RTCP_REPORT_BLOCK);
        p->ext = p->body + p->body_len;
        p->ext_len = (uint32_t)(pl - fixed - p->body_len);
        p->items = (uint32_t)c;
        return CP_RTCP_OK;
    }
    case CP_RTCP_SDES: {
        p->kind = CP_RTCP_KIND_SDES;
        p->items = (uint32_t)c;
        int rc = sdes_walk(q + 4, pl, (unsigned)c, NULL, 0, NULL, 0);
        if (rc) return rc;
        p->ssrc = c ? rd32(q + 4) : 0;
        return CP_RTCP_OK;
    }
    case CP_RTCP_BYE: {
        if (pl < 4 * c) return CP_RTCP_ERR_LENGTH;
        p->kind = CP_RTCP_KIND_BYE;
        p->items = (uint32_t)c;
        p->ssrc = c ? rd32(q + 4) : 0;
        p->body_len = (uint32_t)(4 * c);
        size_t rest = pl - 4 * c;
        if (rest) {
            const uint8_t *r = q + 4 + 4 * c;
            size_t rlen = r[0];
            if (rlen + 1 > rest || ((rlen + 1 + 3) & ~(size_t)3) != rest) return CP_RTCP_ERR_BYE;
            for (size_t i = 1 + rlen; i < rest; i++)
                if (r[i]) return CP_RTCP_ERR_BYE;
            p->has_reason = 1;
            p->ext = p->body + p->body_len + 1;
            p->ext_len = (uint32_t)rlen;
        }
        return CP_RTCP_OK;
    }
    case CP_RTCP_APP:
        if (pl < 8) return CP_RTCP_ERR_LENGTH;
        p->kind = CP_RTCP_KIND_APP;
        p->ssrc = rd32(q + 4);
        p->ext = p->offset + 8;
        p->ext_len = 4;
        p->body = p->offset + 12;
        p->body_len = (uint32_t)(pl - 8);
        return CP_RTCP_OK;
    case CP_RTCP_RTPFB:
    case CP_RTCP_PSFB: {
        if (pl < 8) return CP_RTCP_ERR_LENGTH;
        p->ssrc = rd32(q + 4);
        p->media_ssrc = rd32(q + 8);
        p->body = p->offset + 12;
        size_t fci = pl - 8;
        p->body_len = (uint32_t)fci;
        p->kind = CP_RTCP_KIND_FEEDBACK;
        if (p->type == CP_RTCP_RTPFB && c == CP_RTCP_FMT_NACK) {
            if (fci == 0) return CP_RTCP_ERR_FEEDBACK;
            p->kind = CP_RTCP_KIND_NACK;
            p->items = (uint32_t)(fci / 4);
        } else if (p->type == CP_RTCP_PSFB && c == CP_RTCP_FMT_PLI) {
            if (fci != 0) return CP_RTCP_ERR_FEEDBACK;
            p->kind = CP_RTCP_KIND_PLI;
        } else if (p->type == CP_RTCP_PSFB && c == CP_RTCP_FMT_FIR) {
            if (fci == 0 || fci % 8) return CP_RTCP_ERR_FEEDBACK;
            for (size_t i = 0; i < fci; i += 8)
                if (rd24(q + 12 + i + 5)) return CP_RTCP_ERR_RESERVED;
            p->kind = CP_RTCP_KIND_FIR;
            p->items = (uint32_t)(fci / 8);
        } else if (p->type == CP_RTCP_PSFB && c == CP_RTCP_FMT_AFB && fci >= 4 &&
                   memcmp(q + 12, "REMB", 4) == 0) {
            if (fci < 8 || fci != 8 + 4 * (size_t)q[16]) return CP_RTCP_ERR_FEEDBACK;
            p->kind = CP_RTCP_KIND_REMB;
            p->items = q[16];
            p->body = p->offset + 20;
            p->body_len = (uint32_t)(4 * p->items);
        }
        return CP_RTCP_OK;
    }
    default:
        p->kind = CP_RTCP_KIND_OTHER;
        return CP_RTCP_OK;
    }
}

int cp_rtcp_parse(const uint8_t *data, size_t len, int flags, cp_rtcp_packet *out, size_t cap,
                  size_t *n, size_t *where) {
    size_t pos = 0, k = 0;
    int rc = CP_RTCP_OK;
    if (n) *n = 0;
    if (where) *where = 0;
    if (len == 0 || !data) return CP_RTCP_ERR_EMPTY;
    if (len > 0x7fffffffu) return CP_RTCP_ERR_ARG; /* offsets are 32-bit */
    while (pos < len) {
        const uint8_t *q = data + pos;
        if (len - pos < CP_RTCP_HEADER) {
            rc = CP_RTCP_ERR_TRUNCATED;
            break;
        }
        if ((q[0] >> 6) != 2) {
            rc = CP_RTCP_ERR_VERSION;
            break;
        }
        if (q[1] < 192 || q[1] > 223) {
            rc = CP_RTCP_ERR_TYPE;
            break;
        }
        size_t size = 4 * ((size_t)rd16(q + 2) + 1);
        if (size > len - pos) {
            rc = CP_RTCP_ERR_TRUNCATED;
            break;
        }
        if (k == 0 && !(flags & CP_RTCP_REDUCED_SIZE) && q[1] != CP_RTCP_SR && q[1] != CP_RTCP_RR) {
            rc = CP_RTCP_ERR_FIRST;
            break;
        }
        uint32_t padding = 0;
        if (q[0] & 0x20) {
            padding = q[size - 1];
            if (pos + size != len || padding == 0 || padding % 4 || padding > size - 4) {
                rc = CP_RTCP_ERR_PADDING;
                break;
            }
        }
        if (k == cap) {
            rc = CP_RTCP_ERR_TOO_MANY;
            break;
        }
        cp_rtcp_packet *p = &out[k];
        memset(p, 0, sizeof *p);
        p->offset = (uint32_t)pos;
        p->size = (uint32_t)size;
        p->padding = padding;
        p->type = q[1];
        p->count = q[0] & 0x1f;
        if ((rc = check_packet(data, p))) break;
        k++;
        pos += size;
    }
    if (n) *n = k;
    if (where) *where = pos;
    return rc;
}
