/* RTP core: see callpipe/cp_rtp.h.
 *
 * Every read is bounds-checked against the length given; multi-byte fields are assembled from
 * bytes through uint32_t (never shifting a promoted int into its sign bit).
 */
#include "callpipe/cp_rtp.h"

#include <stdlib.h>
#include <string.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(((uint32_t)p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ===================================================================================== */
/* RTP fixed header (RFC 3550 section 5.1) and header extension (section 5.3.1)
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                           timestamp                           |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           synchronization source (SSRC) identifier            |
 *   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *   |            contributing source (CSRC) identifiers  (CC x 32)  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |      defined by profile       |        length (32-bit words)  |  (X = 1)
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 header extension (length x 32)                |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 payload  ...                                  |
 *   |                               | padding (0..) | padding count |  (P = 1)
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The checks run in this order (the pure-Python model in tests/models/rtp_model.py follows
 * it, so both report the same error for the same bytes).
 */
int cp_rtp_parse(const uint8_t *data, size_t len, cp_rtp_header *h) {
    if (len < CP_RTP_FIXED_HEADER) return CP_RTP_ERR_TRUNCATED;
    uint8_t b0 = data[0];
    if ((b0 >> 6) != 2) return CP_RTP_ERR_VERSION;
    h->marker = (uint8_t)(data[1] >> 7);
    h->payload_type = (uint8_t)(data[1] & 0x7f);
    h->sequence_number = rd16(data + 2);
    h->timestamp = rd32(data + 4);
    h->ssrc = rd32(data + 8);
    h->csrc_count = (uint8_t)(b0 & 0x0f);
    size_t off = CP_RTP_FIXED_HEADER;
    if (len - off < (size_t)h->csrc_count * 4) return CP_RTP_ERR_CSRC;
    for (unsigned i = 0; i < h->csrc_count; i++, off += 4) h->csrcs[i] = rd32(data + off);
    h->has_extension = (uint8_t)((b0 >> 4) & 1);
    h->extension_profile = 0;
    h->extension_offset = 0;
    h->extension_len = 0;
    if (h->has_extension) {
        if (len - off < 4) return CP_RTP_ERR_EXT_HEADER;
        h->extension_profile = rd16(data + off);
        size_t words = rd16(data + off + 2);
        off += 4;
        if (len - off < words * 4) return CP_RTP_ERR_EXT_LENGTH;
        h->extension_offset = off;
        h->extension_len = words * 4;
        int rc = cp_rtp_ext_validate(h->extension_profile, data + off, h->extension_len);
        if (rc != CP_RTP_OK) return rc;
        off += h->extension_len;
    }
    h->padding_len = 0;
    if (b0 & 0x20) {
        if (len == off) return CP_RTP_ERR_PADDING_LENGTH;
        uint8_t pad = data[len - 1];
        if (pad == 0) return CP_RTP_ERR_PADDING_ZERO;
        if (pad > len - off) return CP_RTP_ERR_PADDING_LENGTH;
        h->padding_len = pad;
    }
    h->payload_offset = off;
    h->payload_len = len - off - h->padding_len;
    return CP_RTP_OK;
}

size_t cp_rtp_header_len(const cp_rtp_header *h) {
    return CP_RTP_FIXED_HEADER + (size_t)h->csrc_count * 4 +
           (h->has_extension ? 4 + h->extension_len : 0);
}

static int check_header(const cp_rtp_header *h) {
    if (h->payload_type > 127 || h->csrc_count > CP_RTP_MAX_CSRC || h->padding_len > 255 ||
        h->extension_len % 4 != 0 || h->extension_len / 4 > 0xffff ||
        (!h->has_extension && h->extension_len != 0))
        return CP_RTP_ERR_ARG;
    return CP_RTP_OK;
}

int cp_rtp_write_header(const cp_rtp_header *h, const uint8_t *ext_block, uint8_t *out,
                        size_t cap, size_t *written) {
    int rc = check_header(h);
    if (rc != CP_RTP_OK) return rc;
    size_t n = cp_rtp_header_len(h);
    if (cap < n) return CP_RTP_ERR_BUFFER;
    out[0] = (uint8_t)(0x80 | (h->padding_len ? 0x20 : 0) | (h->has_extension ? 0x10 : 0) |
                       h->csrc_count);
    out[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->payload_type);
    wr16(out + 2, h->sequence_number);
    wr32(out + 4, h->timestamp);
    wr32(out + 8, h->ssrc);
    size_t off = CP_RTP_FIXED_HEADER;
    for (unsigned i = 0; i < h->csrc_count; i++, off += 4) wr32(out + off, h->csrcs[i]);
    if (h->has_extension) {
        wr16(out + off, h->extension_profile);
        wr16(out + off + 2, (uint16_t)(h->extension_len / 4));
        off += 4;
        if (h->extension_len) memcpy(out + off, ext_block, h->extension_len);
        off += h->extension_len;
    }
    *written = off;
    return CP_RTP_OK;
}

int cp_rtp_write(const cp_rtp_header *h, const uint8_t *ext_block, const uint8_t *payload,
                 const uint8_t *padding, uint8_t *out, size_t cap, size_t *written) {
    size_t n = 0;
    int rc = check_header(h);
    if (rc != CP_RTP_OK) return rc;
    if (padding && h->padding_len && padding[h->padding_len - 1] != h->padding_len)
        return CP_RTP_ERR_ARG;
    size_t hl = cp_rtp_header_len(h);
    if (cap < hl || cap - hl < h->payload_len || cap - hl - h->payload_len < h->padding_len)
        return CP_RTP_ERR_BUFFER;
    rc = cp_rtp_write_header(h, ext_block, out, cap, &n);
    if (rc != CP_RTP_OK) return rc;
    if (h->payload_len) memcpy(out + n, payload, h->payload_len);
    n += h->payload_len;
    if (h->padding_len) {
        if (padding) {
            memcpy(out + n, padding, h->padding_len);
        } else {
            memset(out + n, 0, h->padding_len - 1);
            out[n + h->padding_len - 1] = (uint8_t)h->padding_len;
        }
        n += h->padding_len;
    }
    *written = n;
    return CP_RTP_OK;
}

/* ===================================================================================== */
/* Header extension elements (RFC 8285).
 *
 * One-byte form (section 4.2), profile 0xBEDE:
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |       0xBE    |    0xDE       |           length=3            |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  ID   | L=0   |     data      |  ID   |  L=1  |   data...
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *         ...data   |    0 (pad)    |    0 (pad)    |  ID   | L=3   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                          data                                 |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   ID 1..14, L = data bytes - 1 (1..16 bytes); a 0x00 byte is padding; ID 15 ends
 *   processing (its length is ignored); ID 0 with L != 0 is invalid.
 *
 * Two-byte form (section 4.3), profile 0x100 + 4 "appbits":
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |       0x10    |    0x00       |           length=3            |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |      ID       |     L=0       |     ID        |     L=1       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |       data    |    0 (pad)    |       ID      |      L=4      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                          data                                 |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   ID 1..255, L = data bytes (0..255); a 0x00 byte is padding.
 */
int cp_rtp_ext_form(uint16_t profile) {
    if (profile == CP_RTP_ONE_BYTE_PROFILE) return CP_RTP_EXT_FORM_ONE_BYTE;
    if ((profile & 0xfff0) == CP_RTP_TWO_BYTE_PROFILE) return CP_RTP_EXT_FORM_TWO_BYTE;
    return CP_RTP_EXT_FORM_OTHER;
}

int cp_rtp_ext_next(uint16_t profile, const uint8_t *block, size_t len, size_t *pos,
                    uint8_t *id, size_t *data_offset, size_t *data_len) {
    int form = cp_rtp_ext_form(profile);
    if (form == CP_RTP_EXT_FORM_OTHER) return 0;
    while (*pos < len) {
        size_t p = *pos;
        uint8_t b = block[p];
        if (b == 0) { /* padding */
            *pos = p + 1;
            continue;
        }
        size_t l, hdr;
        if (form == CP_RTP_EXT_FORM_ONE_BYTE) {
            uint8_t eid = (uint8_t)(b >> 4);
            if (eid == 15) { /* reserved: stop processing here */
                *pos = len;
                return 0;
            }
            if (eid == 0) return -CP_RTP_ERR_EXT_ID;
            hdr = 1;
            l = (size_t)(b & 0x0f) + 1;
            *id = eid;
        } else {
            if (len - p < 2) return -CP_RTP_ERR_EXT_ELEMENT;
            hdr = 2;
            l = block[p + 1];
            *id = b;
        }
        if (len - p - hdr < l) return -CP_RTP_ERR_EXT_ELEMENT;
        *data_offset = p + hdr;
        *data_len = l;
        *pos = p + hdr + l;
        return 1;
    }
    return 0;
}

int cp_rtp_ext_validate(uint16_t profile, const uint8_t *block, size_t len) {
    size_t pos = 0, off, l;
    uint8_t id;
    int rc;
    while ((rc = cp_rtp_ext_next(profile, block, len, &pos, &id, &off, &l)) == 1) {
    }
    return -rc;  /* 0 = CP_RTP_OK at the end, else the status */
}

int cp_rtp_ext_find(uint16_t profile, const uint8_t *block, size_t len, uint8_t id,
                    size_t *data_offset, size_t *data_len) {
    size_t pos = 0, off, l;
    uint8_t eid;
    int rc;
    while ((rc = cp_rtp_ext_next(profile, block, len, &pos, &eid, &off, &l)) == 1) {
        if (eid == id) {
            *data_offset = off;
            *data_len = l;
            return 1;
        }
    }
    return rc;
}

int cp_rtp_ext_choose_form(const cp_rtp_ext_element *elems, size_t n) {
    int one = 1;
    for (size_t i = 0; i < n; i++) {
        if (elems[i].id == 0 || elems[i].len > 255) return 0;
        if (elems[i].id > 14 || elems[i].len < 1 || elems[i].len > 16) one = 0;
    }
    return one ? CP_RTP_EXT_FORM_ONE_BYTE : CP_RTP_EXT_FORM_TWO_BYTE;
}

size_t cp_rtp_ext_block_len(int form, const cp_rtp_ext_element *elems, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (form == CP_RTP_EXT_FORM_ONE_BYTE ? 1 : 2) + elems[i].len;
    return (total + 3) & ~(size_t)3;
}

int cp_rtp_ext_build(int form, const cp_rtp_ext_element *elems, size_t n, uint8_t *out,
                     size_t cap, size_t *written, uint16_t *profile) {
    if (form != CP_RTP_EXT_FORM_ONE_BYTE && form != CP_RTP_EXT_FORM_TWO_BYTE)
        return CP_RTP_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        const cp_rtp_ext_element *e = &elems[i];
        if (form == CP_RTP_EXT_FORM_ONE_BYTE
                ? (e->id < 1 || e->id > 14 || e->len < 1 || e->len > 16)
                : (e->id < 1 || e->len > 255))
            return CP_RTP_ERR_EXT_FORM;
    }
    size_t total = cp_rtp_ext_block_len(form, elems, n);
    if (total / 4 > 0xffff) return CP_RTP_ERR_ARG;
    if (cap < total) return CP_RTP_ERR_BUFFER;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const cp_rtp_ext_element *e = &elems[i];
        if (form == CP_RTP_EXT_FORM_ONE_BYTE) {
            out[off++] = (uint8_t)((e->id << 4) | (e->len - 1));
        } else {
            out[off++] = e->id;
            out[off++] = (uint8_t)e->len;
        }
        if (e->len) memcpy(out + off, e->data, e->len);
        off += e->len;
    }
    memset(out + off, 0, total - off);
    *written = total;
    *profile = form == CP_RTP_EXT_FORM_ONE_BYTE ? CP_RTP_ONE_BYTE_PROFILE : CP_RTP_TWO_BYTE_PROFILE;
    return CP_RTP_OK;
}

/* ===================================================================================== */
/* Typed extension values.
 *
 * abs-send-time (webrtc.org/experiments/rtp-hdrext/abs-send-time), 3 bytes:
 *    0                   1                   2
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | seconds (6) |      fraction of a second (18)    |   6.18 fixed point, modulo 64 s
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01), 2 bytes,
 * big endian.
 * RFC 6464 audio level, 1 byte:
 *   +-+-+-+-+-+-+-+-+
 *   |V|   level     |   V: voice activity; level: 0..127 = -dBov (127 = silence)
 *   +-+-+-+-+-+-+-+-+
 * RFC 9626 video frame marking, 1 byte (non-scalable) or 2/3 bytes (scalable):
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |S|E|I|D|B| TID |      LID      |   TL0PICIDX   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
uint32_t cp_rtp_abs_send_time_from_us(uint64_t time_us) {
    uint64_t t = time_us % 64000000u;
    return (uint32_t)(((t << 18) / 1000000u) & 0xffffff);
}

uint64_t cp_rtp_abs_send_time_to_us(uint32_t value) {
    /* rounded up, so that from_us(to_us(v)) == v for every 24-bit v */
    return (((uint64_t)(value & 0xffffff)) * 1000000u + ((1u << 18) - 1)) >> 18;
}

void cp_rtp_abs_send_time_encode(uint32_t value, uint8_t *out) {
    out[0] = (uint8_t)(value >> 16);
    out[1] = (uint8_t)(value >> 8);
    out[2] = (uint8_t)value;
}

int cp_rtp_abs_send_time_decode(const uint8_t *data, size_t len, uint32_t *value) {
    if (len != 3) return CP_RTP_ERR_EXT_VALUE;
    *value = ((uint32_t)data[0] << 16) | ((uint32_t)data[1] << 8) | data[2];
    return CP_RTP_OK;
}

void cp_rtp_transport_cc_encode(uint16_t seq, uint8_t *out) { wr16(out, seq); }

int cp_rtp_transport_cc_decode(const uint8_t *data, size_t len, uint16_t *seq) {
    if (len != 2) return CP_RTP_ERR_EXT_VALUE;
    *seq = rd16(data);
    return CP_RTP_OK;
}

uint8_t cp_rtp_audio_level_encode(int voice, int level) {
    return (uint8_t)((voice ? 0x80 : 0) | (level & 0x7f));
}

int cp_rtp_audio_level_decode(const uint8_t *data, size_t len, int *voice, int *level) {
    if (len != 1) return CP_RTP_ERR_EXT_VALUE;
    *voice = data[0] >> 7;
    *level = data[0] & 0x7f;
    return CP_RTP_OK;
}

int cp_rtp_frame_marking_decode(const uint8_t *data, size_t len, cp_rtp_frame_marking *fm) {
    if (len < 1 || len > 3) return CP_RTP_ERR_EXT_VALUE;
    uint8_t b = data[0];
    fm->start = (uint8_t)(b >> 7);
    fm->end = (uint8_t)((b >> 6) & 1);
    fm->independent = (uint8_t)((b >> 5) & 1);
    fm->discardable = (uint8_t)((b >> 4) & 1);
    fm->base_layer_sync = (uint8_t)((b >> 3) & 1);
    fm->tid = (uint8_t)(b & 7);
    fm->size = (uint8_t)len;
    fm->layer_id = len >= 2 ? data[1] : 0;
    fm->tl0_pic_idx = len == 3 ? data[2] : 0;
    return CP_RTP_OK;
}

size_t cp_rtp_frame_marking_encode(const cp_rtp_frame_marking *fm, uint8_t *out) {
    out[0] = (uint8_t)((fm->start ? 0x80 : 0) | (fm->end ? 0x40 : 0) |
                       (fm->independent ? 0x20 : 0) | (fm->discardable ? 0x10 : 0) |
                       (fm->base_layer_sync ? 0x08 : 0) | (fm->tid & 7));
    size_t n = fm->size >= 1 && fm->size <= 3 ? fm->size : 1;
    if (n >= 2) out[1] = fm->layer_id;
    if (n == 3) out[2] = fm->tl0_pic_idx;
    return n;
}

/* ===================================================================================== */
/* Wrap-safe sequence number / timestamp arithmetic.  A difference of exactly half the range
 * counts as backwards (a - b = -2^15 / -2^31), so that diff(a, b) and diff(b, a) never both
 * claim "newer". */
int32_t cp_rtp_seq_diff(uint16_t a, uint16_t b) {
    int32_t d = (int32_t)((uint32_t)(a - b) & 0xffffu);
    return d >= 0x8000 ? d - 0x10000 : d;
}

int64_t cp_rtp_ts_diff(uint32_t a, uint32_t b) {
    uint32_t d = a - b;
    return d >= 0x80000000u ? (int64_t)d - (int64_t)0x100000000 : (int64_t)d;
}

void cp_rtp_unwrapper_init(cp_rtp_unwrapper *u, unsigned bits) {
    u->last = 0;
    u->bits = (uint8_t)(bits == 16 ? 16 : 32);
    u->started = 0;
}

int64_t cp_rtp_unwrap_peek(const cp_rtp_unwrapper *u, uint32_t value) {
    if (u->bits == 16) {
        uint16_t v = (uint16_t)value;
        if (!u->started) return v;
        return u->last + cp_rtp_seq_diff(v, (uint16_t)(uint64_t)u->last);
    }
    if (!u->started) return value;
    return u->last + cp_rtp_ts_diff(value, (uint32_t)(uint64_t)u->last);
}

int64_t cp_rtp_unwrap(cp_rtp_unwrapper *u, uint32_t value) {
    int64_t v = cp_rtp_unwrap_peek(u, value);
    u->last = v;
    u->started = 1;
    return v;
}

/* ===================================================================================== */
/* VP8 payload descriptor (RFC 7741 section 4.2)
 *
 *         0 1 2 3 4 5 6 7
 *        +-+-+-+-+-+-+-+-+
 *        |X|R|N|S|R| PID | (REQUIRED)
 *        +-+-+-+-+-+-+-+-+
 *   X:   |I|L|T|K| RSV   | (OPTIONAL)
 *        +-+-+-+-+-+-+-+-+
 *   I:   |M| PictureID   | (OPTIONAL)   M = 1: 15-bit PictureID, the next octet follows
 *        +-+-+-+-+-+-+-+-+
 *        |   PictureID   |
 *        +-+-+-+-+-+-+-+-+
 *   L:   |   TL0PICIDX   | (OPTIONAL)
 *        +-+-+-+-+-+-+-+-+
 *   T/K: |TID|Y| KEYIDX  | (OPTIONAL)   TID/Y read when T = 1, KEYIDX when K = 1
 *        +-+-+-+-+-+-+-+-+
 *
 * R and RSV bits are ignored on receipt (section 4.2: "MUST be ignored by receivers") and
 * written as 0, as are TID/Y when T = 0 and KEYIDX when K = 0.
 */
int cp_vp8_descriptor_parse(const uint8_t *data, size_t len, cp_vp8_descriptor *d) {
    if (len == 0) return CP_RTP_ERR_VP8_EMPTY;
    memset(d, 0, sizeof *d);
    uint8_t b = data[0];
    size_t off = 1;
    d->extended = (uint8_t)(b >> 7);
    d->non_reference = (uint8_t)((b >> 5) & 1);
    d->start = (uint8_t)((b >> 4) & 1);
    d->partition_id = (uint8_t)(b & 7);
    if (d->extended) {
        if (off >= len) return CP_RTP_ERR_VP8_TRUNCATED;
        uint8_t x = data[off++];
        if (x & 0x80) { /* I */
            if (off >= len) return CP_RTP_ERR_VP8_TRUNCATED;
            uint8_t p = data[off++];
            if (p & 0x80) {
                if (off >= len) return CP_RTP_ERR_VP8_TRUNCATED;
                d->picture_id = (uint16_t)(((uint32_t)(p & 0x7f) << 8) | data[off++]);
                d->picture_id_bits = 15;
            } else {
                d->picture_id = p;
                d->picture_id_bits = 7;
            }
        }
        if (x & 0x40) { /* L */
            if (off >= len) return CP_RTP_ERR_VP8_TRUNCATED;
            d->has_tl0_pic_idx = 1;
            d->tl0_pic_idx = data[off++];
        }
        if (x & 0x30) { /* T or K */
            if (off >= len) return CP_RTP_ERR_VP8_TRUNCATED;
            uint8_t tk = data[off++];
            if (x & 0x20) {
                d->has_tid = 1;
                d->tid = (uint8_t)(tk >> 6);
                d->layer_sync = (uint8_t)((tk >> 5) & 1);
            }
            if (x & 0x10) {
                d->has_key_idx = 1;
                d->key_idx = (uint8_t)(tk & 0x1f);
            }
        }
    }
    d->size = off;
    if (off >= len) return CP_RTP_ERR_VP8_NO_DATA;
    return CP_RTP_OK;
}

static int descriptor_has_x(const cp_vp8_descriptor *d) {
    return d->extended || d->picture_id_bits || d->has_tl0_pic_idx || d->has_tid ||
           d->has_key_idx;
}

size_t cp_vp8_descriptor_len(const cp_vp8_descriptor *d) {
    size_t n = 1;
    if (descriptor_has_x(d)) {
        n++;
        if (d->picture_id_bits) n += d->picture_id_bits == 15 ? 2 : 1;
        if (d->has_tl0_pic_idx) n++;
        if (d->has_tid || d->has_key_idx) n++;
    }
    return n;
}

int cp_vp8_descriptor_write(const cp_vp8_descriptor *d, uint8_t *out) {
    if (d->partition_id > 7 || d->tid > 3 || d->key_idx > 31 ||
        (d->picture_id_bits != 0 && d->picture_id_bits != 7 && d->picture_id_bits != 15) ||
        (d->picture_id_bits == 7 && d->picture_id > 127) ||
        (d->picture_id_bits == 15 && d->picture_id > 32767))
        return CP_RTP_ERR_ARG;
    int x = descriptor_has_x(d);
    size_t off = 0;
    out[off++] = (uint8_t)((x ? 0x80 : 0) | (d->non_reference ? 0x20 : 0) |
                           (d->start ? 0x10 : 0) | d->partition_id);
    if (x) {
        out[off++] = (uint8_t)((d->picture_id_bits ? 0x80 : 0) | (d->has_tl0_pic_idx ? 0x40 : 0) |
                               (d->has_tid ? 0x20 : 0) | (d->has_key_idx ? 0x10 : 0));
        if (d->picture_id_bits == 15) {
            out[off++] = (uint8_t)(0x80 | (d->picture_id >> 8));
            out[off++] = (uint8_t)d->picture_id;
        } else if (d->picture_id_bits == 7) {
            out[off++] = (uint8_t)d->picture_id;
        }
        if (d->has_tl0_pic_idx) out[off++] = d->tl0_pic_idx;
        if (d->has_tid || d->has_key_idx)
            out[off++] = (uint8_t)((d->has_tid ? (d->tid << 6) | (d->layer_sync ? 0x20 : 0) : 0) |
                                   (d->has_key_idx ? d->key_idx : 0));
    }
    return CP_RTP_OK;
}

/* VP8 frame tag (RFC 6386 section 9.1): P (inverse key frame flag) is bit 0 of the first
 * byte; a key frame continues with the start code 9d 01 2a and 4 bytes of dimensions. */
int cp_vp8_is_keyframe(const uint8_t *data, size_t len) {
    return len >= 10 && (data[0] & 1) == 0 && data[3] == 0x9d && data[4] == 0x01 &&
           data[5] == 0x2a;
}

/* ===================================================================================== */
/* VP8 packetizer: one frame into ceil(frame / (mtu - overhead)) packets of balanced size
 * (sizes differ by at most one byte), header template patched per packet. */
static size_t packetizer_overhead(const cp_vp8_packetizer_params *p) {
    return (p->header ? p->header_len : 0) + cp_vp8_descriptor_len(&p->descriptor);
}

int cp_vp8_packet_count(const cp_vp8_packetizer_params *p, size_t frame_len, size_t *count) {
    if (frame_len == 0) return CP_RTP_ERR_ARG;
    if (p->header) {
        if (p->header_len < CP_RTP_FIXED_HEADER) return CP_RTP_ERR_ARG;
        if (p->transport_cc_offset &&
            (p->transport_cc_offset < CP_RTP_FIXED_HEADER || p->transport_cc_offset + 2 > p->header_len))
            return CP_RTP_ERR_ARG;
        if (p->frame_marking_offset &&
            (p->frame_marking_offset < CP_RTP_FIXED_HEADER || p->frame_marking_offset >= p->header_len))
            return CP_RTP_ERR_ARG;
    }
    size_t overhead = packetizer_overhead(p);
    if (p->mtu <= overhead) return CP_RTP_ERR_MTU;
    size_t room = p->mtu - overhead;
    *count = frame_len / room + (frame_len % room != 0);
    return CP_RTP_OK;
}

size_t cp_vp8_packet_size(const cp_vp8_packetizer_params *p, size_t frame_len, size_t count,
                          size_t index) {
    return packetizer_overhead(p) + frame_len / count + (index < frame_len % count ? 1 : 0);
}

int cp_vp8_packetize(const cp_vp8_packetizer_params *p, const uint8_t *frame, size_t frame_len,
                     uint8_t *const *out, size_t count) {
    size_t want = 0;
    int rc = cp_vp8_packet_count(p, frame_len, &want);
    if (rc != CP_RTP_OK) return rc;
    if (count != want) return CP_RTP_ERR_ARG;
    uint8_t desc[CP_VP8_MAX_DESCRIPTOR];
    cp_vp8_descriptor d = p->descriptor;
    d.start = 1;
    rc = cp_vp8_descriptor_write(&d, desc);
    if (rc != CP_RTP_OK) return rc;
    size_t dlen = cp_vp8_descriptor_len(&d);
    size_t hlen = p->header ? p->header_len : 0;
    uint16_t seq0 = p->header ? rd16(p->header + 2) : 0;
    size_t base = frame_len / count, rem = frame_len % count, src = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *o = out[i];
        size_t chunk = base + (i < rem ? 1 : 0);
        if (hlen) {
            memcpy(o, p->header, hlen);
            wr16(o + 2, (uint16_t)(seq0 + i));
            o[1] = (uint8_t)((o[1] & 0x7f) | (i + 1 == count ? 0x80 : 0));
            if (p->transport_cc_offset)
                wr16(o + p->transport_cc_offset, (uint16_t)(p->transport_cc_seq + i));
            if (p->frame_marking_offset) {
                uint8_t *fm = o + p->frame_marking_offset;
                *fm = (uint8_t)((*fm & 0x3f) | (i == 0 ? 0x80 : 0) | (i + 1 == count ? 0x40 : 0));
            }
        }
        memcpy(o + hlen, desc, dlen);
        if (i == 0) desc[0] &= (uint8_t)~0x10; /* S only on the first packet */
        memcpy(o + hlen + dlen, frame + src, chunk);
        src += chunk;
    }
    return CP_RTP_OK;
}

/* ===================================================================================== */
/* VP8 frame assembler.
 *
 * A window of `capacity` slots indexed by extended sequence number.  `head` is the first
 * sequence number not yet emitted or given up.  Frames are emitted in sequence order: the
 * frame starting at `head` is ready when its packets from the start packet (S = 1, PID = 0)
 * to the marker packet are all present (or, for senders that omit the marker, when a packet
 * with another timestamp follows without a gap).  A gap at the head is given up (reported as
 * a loss) when a complete keyframe follows it, when max_wait_frames complete frames wait
 * behind it, when the first of them has waited max_wait_ms, when a packet lands beyond the
 * window, or when the caller asks (skip).  Packets behind `head` are late; a packet already
 * present is a duplicate.  Padding-only packets hold their sequence number and are dropped
 * silently. */
enum {
    LOSS_QUEUE = 64,
    DEFAULT_CAPACITY = 1024,
    MAX_CAPACITY = 16384,
    MIN_SLOT_BUF = 1280,
    LATE_RESET = 64 /* consecutive late packets that mean the sender started over */
};

typedef struct slot {
    int64_t seq;
    int64_t ext_ts;
    uint32_t ts;
    uint8_t used, marker, start, padding, has_fm, pt;
    int8_t keyframe;
    cp_vp8_descriptor desc;
    cp_rtp_frame_marking fm;
    double arrival;
    uint8_t *buf;
    size_t len, cap;
} slot;

struct cp_vp8_assembler {
    cp_vp8_assembler_config cfg;
    size_t cap, mask;
    slot *slots;
    cp_rtp_unwrapper seq_u, ts_u;
    uint8_t locked;
    uint32_t ssrc;
    uint8_t started, emitted_any, gap_pending, lost_any, scan_valid;
    int64_t head, highest, scan;
    uint32_t late_run;
    size_t held;
    double now;
    uint8_t ready;
    int64_t ready_end;
    uint8_t ready_marker;
    cp_vp8_loss losses[LOSS_QUEUE];
    size_t loss_first, loss_count;
    cp_vp8_assembler_stats stats;
};

static inline slot *slot_of(cp_vp8_assembler *a, int64_t seq) {
    return &a->slots[(size_t)((uint64_t)seq & a->mask)];
}

static inline slot *present(cp_vp8_assembler *a, int64_t seq) {
    slot *s = slot_of(a, seq);
    return s->used && s->seq == seq ? s : NULL;
}

cp_vp8_assembler *cp_vp8_assembler_new(const cp_vp8_assembler_config *cfg, int *status) {
    size_t want = cfg->capacity ? cfg->capacity : DEFAULT_CAPACITY;
    if (want > MAX_CAPACITY) {
        *status = CP_RTP_ERR_ARG;
        return NULL;
    }
    size_t cap = 16;
    while (cap < want) cap <<= 1;
    cp_vp8_assembler *a = calloc(1, sizeof *a);
    if (!a) {
        *status = CP_RTP_ERR_NOMEM;
        return NULL;
    }
    a->slots = calloc(cap, sizeof *a->slots);
    if (!a->slots) {
        free(a);
        *status = CP_RTP_ERR_NOMEM;
        return NULL;
    }
    a->cfg = *cfg;
    a->cfg.capacity = cap;
    a->cap = cap;
    a->mask = cap - 1;
    a->locked = cfg->has_ssrc;
    a->ssrc = cfg->ssrc;
    cp_rtp_unwrapper_init(&a->seq_u, 16);
    cp_rtp_unwrapper_init(&a->ts_u, 32);
    a->now = -1;
    *status = CP_RTP_OK;
    return a;
}

void cp_vp8_assembler_free(cp_vp8_assembler *a) {
    if (!a) return;
    for (size_t i = 0; i < a->cap; i++) free(a->slots[i].buf);
    free(a->slots);
    free(a);
}

static void release(cp_vp8_assembler *a, slot *s) {
    s->used = 0;
    a->held--;
}

static void set_head(cp_vp8_assembler *a, int64_t head) {
    a->head = head;
    a->scan_valid = 0;
    a->ready = 0;
}

static void add_loss(cp_vp8_assembler *a, const cp_vp8_loss *l) {
    a->stats.packets_dropped += l->packets_received;
    a->gap_pending = 1;
    a->lost_any = 1;
    cp_vp8_loss *last =
        a->loss_count ? &a->losses[(a->loss_first + a->loss_count - 1) % LOSS_QUEUE] : NULL;
    /* widen the newest record when full, or when this one continues it for the same reason */
    if (last && (a->loss_count == LOSS_QUEUE ||
                 (last->reason == l->reason && last->last_seq + 1 == l->first_seq))) {
        if (last->timestamps == 0) last->first_timestamp = l->first_timestamp;
        if (last->timestamps && l->timestamps && last->last_timestamp == l->first_timestamp)
            last->timestamps--; /* the same frame on both sides of the seam */
        if (l->timestamps) last->last_timestamp = l->last_timestamp;
        last->last_seq = l->last_seq;
        last->packets_received += l->packets_received;
        last->timestamps += l->timestamps;
        return;
    }
    a->stats.losses++;
    a->losses[(a->loss_first + a->loss_count) % LOSS_QUEUE] = *l;
    a->loss_count++;
}

/* Give up [from, to): release what arrived there, record the loss, move the head to `to`. */
static void drop_to(cp_vp8_assembler *a, int64_t to, int reason) {
    int64_t from = a->head;
    if (to <= from) return;
    cp_vp8_loss l = {reason, from, to - 1, 0, 0, 0, 0};
    int64_t end = to;
    if (end - from > (int64_t)a->cap) end = from + (int64_t)a->cap;
    uint32_t last_ts = 0;
    int silent = 1; /* only padding: nothing was lost */
    for (int64_t q = from; q < end; q++) {
        slot *s = present(a, q);
        if (!s) {
            silent = 0;
            continue;
        }
        if (!s->padding) {
            silent = 0;
            l.packets_received++;
            if (l.timestamps == 0 || s->ts != last_ts) {
                if (l.timestamps == 0) l.first_timestamp = s->ts;
                l.timestamps++;
                last_ts = s->ts;
                l.last_timestamp = s->ts;
            }
        }
        release(a, s);
    }
    if (end < to) silent = 0;
    if (!silent) add_loss(a, &l);
    set_head(a, to);
}

/* Is a complete frame at `start`?  On return *end is its last packet (complete) or the last
 * contiguous packet checked (incomplete); *arrival the latest arrival among its packets. */
static int frame_complete(cp_vp8_assembler *a, int64_t start, int64_t from, int64_t *end,
                          uint8_t *marker, double *arrival) {
    slot *s = present(a, start);
    uint32_t ts = s->ts;
    double arr = s->arrival;
    int64_t q = from;
    for (;;) {
        slot *t = present(a, q);
        if (t->arrival > arr) arr = t->arrival;
        if (t->marker) {
            *end = q;
            *marker = 1;
            *arrival = arr;
            return 1;
        }
        slot *n = present(a, q + 1);
        if (!n) {
            *end = q;
            *arrival = arr;
            return 0;
        }
        if (n->ts != ts || n->padding || n->start) {
            *end = q;
            *marker = 0;
            *arrival = arr;
            return 1;
        }
        q++;
    }
}

/* Bring the head to a ready frame if one is there: skip padding, give up partial frames. */
static int try_ready(cp_vp8_assembler *a) {
    while (!a->ready) {
        slot *s = present(a, a->head);
        if (!s) return 0;
        if (s->padding) {
            release(a, s);
            set_head(a, a->head + 1);
            continue;
        }
        if (!s->start) {
            /* At the very start its first packet may still come (reordered): wait, the skip
             * policy decides.  Later the first packet is behind the head: never completes. */
            if (!a->emitted_any && !a->lost_any) return 0;
            int64_t q = a->head + 1;
            slot *t;
            while ((t = present(a, q)) && !t->start && !t->padding) q++;
            drop_to(a, q, CP_VP8_LOSS_PARTIAL);
            continue;
        }
        int64_t end;
        uint8_t marker = 0;
        double arr;
        int64_t from = a->scan_valid ? a->scan : a->head;
        if (!frame_complete(a, a->head, from, &end, &marker, &arr)) {
            a->scan = end;
            a->scan_valid = 1;
            return 0;
        }
        a->ready = 1;
        a->ready_end = end;
        a->ready_marker = marker;
    }
    return 1;
}

/* The head is blocked: decide whether to give up the gap. */
static int maybe_skip(cp_vp8_assembler *a, int force, int all) {
    if (!a->started || a->held == 0) return 0;
    int64_t first = 0, key = 0;
    int have_first = 0, have_key = 0;
    double first_arr = -1;
    uint32_t complete = 0;
    for (int64_t q = a->head; q <= a->highest;) {
        slot *s = present(a, q);
        if (!s || !s->start) {
            q++;
            continue;
        }
        int64_t end;
        uint8_t marker;
        double arr;
        int ok = frame_complete(a, q, q, &end, &marker, &arr);
        if (ok && q != a->head) {
            complete++;
            if (!have_first) {
                have_first = 1;
                first = q;
                first_arr = arr;
            }
            if (s->keyframe == 1) {
                have_key = 1;
                key = q;
                break;
            }
        }
        q = end + 1;
    }
    if (have_key) {
        drop_to(a, key, CP_VP8_LOSS_KEYFRAME);
        return 1;
    }
    if (have_first) {
        int timed = a->cfg.max_wait_ms >= 0 && a->now >= 0 && first_arr >= 0 &&
                    a->now - first_arr >= a->cfg.max_wait_ms;
        if (force || complete >= a->cfg.max_wait_frames || timed) {
            drop_to(a, first, force ? CP_VP8_LOSS_SKIP : CP_VP8_LOSS_GAP);
            return 1;
        }
        return 0;
    }
    if (force && all) {
        drop_to(a, a->highest + 1, CP_VP8_LOSS_SKIP);
        return 1;
    }
    return 0;
}

static void settle(cp_vp8_assembler *a) {
    while (!try_ready(a)) {
        if (!maybe_skip(a, 0, 0)) break;
    }
}

void cp_vp8_assembler_reset(cp_vp8_assembler *a, int unlock_ssrc) {
    if (a->started && a->held) drop_to(a, a->highest + 1, CP_VP8_LOSS_RESET);
    for (size_t i = 0; i < a->cap; i++) a->slots[i].used = 0;
    a->held = 0;
    a->started = 0;
    a->emitted_any = 0;
    a->gap_pending = 0;
    a->lost_any = 0;
    a->late_run = 0;
    set_head(a, 0);
    a->highest = 0;
    a->now = -1;
    cp_rtp_unwrapper_init(&a->seq_u, 16);
    cp_rtp_unwrapper_init(&a->ts_u, 32);
    if (unlock_ssrc && !a->cfg.has_ssrc) a->locked = 0;
}

int cp_vp8_assembler_push(cp_vp8_assembler *a, const uint8_t *data, size_t len,
                          double arrival_ms, int *outcome) {
    cp_rtp_header h;
    cp_vp8_descriptor d;
    cp_rtp_frame_marking fm;
    uint8_t has_fm = 0;
    *outcome = 0;
    int rc = cp_rtp_parse(data, len, &h);
    if (rc != CP_RTP_OK) {
        a->stats.invalid++;
        return rc;
    }
    if (a->locked && h.ssrc != a->ssrc) {
        a->stats.foreign++;
        return CP_RTP_ERR_SSRC;
    }
    int padding = h.payload_len == 0;
    if (!padding) {
        rc = cp_vp8_descriptor_parse(data + h.payload_offset, h.payload_len, &d);
        if (rc != CP_RTP_OK) {
            a->stats.invalid++;
            return rc;
        }
    } else {
        memset(&d, 0, sizeof d);
    }
    if (a->cfg.frame_marking_id && h.has_extension) {
        size_t off, l;
        int found = cp_rtp_ext_find(h.extension_profile, data + h.extension_offset,
                                    h.extension_len, a->cfg.frame_marking_id, &off, &l);
        if (found == 1) {
            rc = cp_rtp_frame_marking_decode(data + h.extension_offset + off, l, &fm);
            if (rc != CP_RTP_OK) {
                a->stats.invalid++;
                return rc;
            }
            has_fm = 1;
        }
    }
    if (!a->locked) {
        a->locked = 1;
        a->ssrc = h.ssrc;
    }
    if (arrival_ms >= 0 && arrival_ms > a->now) a->now = arrival_ms;
    int64_t seq = cp_rtp_unwrap(&a->seq_u, h.sequence_number);
    if (!a->started) {
        a->started = 1;
        set_head(a, seq);
        a->highest = seq;
    }
    if (seq < a->head) {
        if (!a->emitted_any && !a->lost_any && a->highest - seq < (int64_t)a->cap) {
            set_head(a, seq); /* reordered before the first packet seen: start earlier */
        } else if (++a->late_run > LATE_RESET) {
            /* the sender's sequence jumped back (restart) or a stray packet jumped us ahead */
            cp_vp8_assembler_reset(a, 0);
            if (arrival_ms >= 0) a->now = arrival_ms;
            seq = cp_rtp_unwrap(&a->seq_u, h.sequence_number);
            a->started = 1;
            set_head(a, seq);
            a->highest = seq;
        } else {
            a->stats.late++;
            *outcome = CP_VP8_PUSH_LATE;
            return CP_RTP_OK;
        }
    }
    a->late_run = 0;
    if (seq - a->head >= (int64_t)a->cap) drop_to(a, seq - (int64_t)a->cap + 1, CP_VP8_LOSS_WINDOW);
    slot *s = slot_of(a, seq);
    if (s->used) {
        if (s->seq == seq) {
            a->stats.duplicates++;
            *outcome = CP_VP8_PUSH_DUPLICATE;
            return CP_RTP_OK;
        }
        release(a, s); /* cannot happen: every used slot lies in [head, head + capacity) */
    }
    size_t dlen = padding ? 0 : h.payload_len - d.size;
    if (s->cap < dlen) {
        size_t ncap = dlen < MIN_SLOT_BUF ? MIN_SLOT_BUF : dlen;
        uint8_t *nb = realloc(s->buf, ncap);
        if (!nb) return CP_RTP_ERR_NOMEM;
        s->buf = nb;
        s->cap = ncap;
    }
    if (dlen) memcpy(s->buf, data + h.payload_offset + d.size, dlen);
    s->len = dlen;
    s->seq = seq;
    s->ts = h.timestamp;
    s->ext_ts = cp_rtp_unwrap(&a->ts_u, h.timestamp);
    s->pt = h.payload_type;
    s->marker = h.marker;
    s->padding = (uint8_t)padding;
    s->start = (uint8_t)(!padding && d.start && d.partition_id == 0);
    s->desc = d;
    s->has_fm = has_fm;
    if (has_fm) s->fm = fm;
    if (has_fm)
        s->keyframe = (int8_t)fm.independent;
    else if (a->cfg.encrypted)
        s->keyframe = -1;
    else
        s->keyframe = (int8_t)(s->start && cp_vp8_is_keyframe(s->buf, dlen));
    s->arrival = arrival_ms >= 0 ? arrival_ms : -1;
    s->used = 1;
    a->held++;
    if (seq > a->highest) a->highest = seq;
    if (padding)
        a->stats.padding++;
    else {
        a->stats.packets++;
        a->stats.bytes += dlen;
    }
    *outcome = CP_VP8_PUSH_INSERTED;
    settle(a);
    return CP_RTP_OK;
}

void cp_vp8_assembler_push_batch(cp_vp8_assembler *a, const uint8_t *const *data,
                                 const size_t *lens, size_t n, double arrival_ms,
                                 size_t *consumed) {
    size_t i = 0;
    int outcome;
    while (i < n) {
        (void)cp_vp8_assembler_push(a, data[i], lens[i], arrival_ms, &outcome);
        i++;
        if (a->ready) break;
    }
    *consumed = i;
}

void cp_vp8_assembler_advance(cp_vp8_assembler *a, double now_ms) {
    if (now_ms > a->now) a->now = now_ms;
    settle(a);
}

void cp_vp8_assembler_skip(cp_vp8_assembler *a, int all) {
    if (!try_ready(a)) maybe_skip(a, 1, all);
    settle(a);
}

int cp_vp8_assembler_ready(cp_vp8_assembler *a, cp_vp8_frame_info *info) {
    if (!try_ready(a)) return 0;
    slot *s = present(a, a->head);
    info->ssrc = a->ssrc;
    info->payload_type = s->pt;
    info->timestamp = s->ts;
    info->extended_timestamp = s->ext_ts;
    info->first_seq = a->head;
    info->last_seq = a->ready_end;
    info->packets = (uint32_t)(a->ready_end - a->head + 1);
    info->keyframe = s->keyframe;
    info->continuous = (uint8_t)!a->gap_pending;
    info->marker = a->ready_marker;
    info->has_frame_marking = s->has_fm;
    if (s->has_fm)
        info->frame_marking = s->fm;
    else
        memset(&info->frame_marking, 0, sizeof info->frame_marking);
    info->descriptor = s->desc;
    size_t size = 0;
    double arr = -1;
    for (int64_t q = a->head; q <= a->ready_end; q++) {
        slot *t = present(a, q);
        size += t->len;
        if (t->arrival > arr) arr = t->arrival;
    }
    info->size = size;
    info->arrival_ms = arr;
    return 1;
}

int cp_vp8_assembler_take(cp_vp8_assembler *a, uint8_t *out, size_t cap) {
    if (!try_ready(a)) return CP_RTP_ERR_ARG;
    size_t off = 0;
    for (int64_t q = a->head; q <= a->ready_end; q++) {
        slot *t = present(a, q);
        if (cap - off < t->len) return CP_RTP_ERR_BUFFER;
        if (t->len) memcpy(out + off, t->buf, t->len);
        off += t->len;
    }
    slot *s = present(a, a->head);
    a->stats.frames++;
    if (s->keyframe == 1) a->stats.keyframes++;
    for (int64_t q = a->head; q <= a->ready_end; q++) release(a, present(a, q));
    a->emitted_any = 1;
    a->gap_pending = 0;
    set_head(a, a->ready_end + 1);
    settle(a);
    return CP_RTP_OK;
}

int cp_vp8_assembler_pop_loss(cp_vp8_assembler *a, cp_vp8_loss *loss) {
    if (a->loss_count == 0) return 0;
    *loss = a->losses[a->loss_first];
    a->loss_first = (a->loss_first + 1) % LOSS_QUEUE;
    a->loss_count--;
    return 1;
}

void cp_vp8_assembler_get_stats(const cp_vp8_assembler *a, cp_vp8_assembler_stats *s) {
    *s = a->stats;
}

size_t cp_vp8_assembler_held(const cp_vp8_assembler *a) { return a->held; }
