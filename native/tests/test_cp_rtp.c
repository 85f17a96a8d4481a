/* cp_rtp under the sanitizers: hand-built RTP packets and the RFC 8285 examples byte for byte,
 * every malformed case with its own status, typed extension values, sequence arithmetic at
 * every wrap value, VP8 descriptors in every flag combination, packetize -> assemble with
 * loss / reordering / duplicates, and random bytes into every parser (no crash, no leak). */
#include "callpipe/cp_rtp.h"
#include "check.h"
#include <string.h>

static int parse_status(const uint8_t *p, size_t n) {
    cp_rtp_header h;
    return cp_rtp_parse(p, n, &h);
}

/* A hand-built packet:
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |1 0|1|1|0 0 0 1|1|  PT=96      |       seq = 0x1234            |  b1 e0 12 34
 *   |                     timestamp = 0xdeadbeef                    |  de ad be ef
 *   |                     SSRC = 0x01020304                         |  01 02 03 04
 *   |                     CSRC = 0xcafebabe                         |  ca fe ba be
 *   |        0xBEDE                 |        length = 1             |  be de 00 01
 *   | ID=1  | L=1   |  0xaa         |  0xbb         |  0 (pad)      |  11 aa bb 00
 *   |  'h'  |  'i'  |  0 (pad)      |  count = 2    |                  68 69 00 02
 */
static const uint8_t HAND[] = {0xb1, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
                               0x03, 0x04, 0xca, 0xfe, 0xba, 0xbe, 0xbe, 0xde, 0x00, 0x01,
                               0x11, 0xaa, 0xbb, 0x00, 'h',  'i',  0x00, 0x02};

static void test_hand_built(void) {
    cp_rtp_header h;
    CHECK(cp_rtp_parse(HAND, sizeof HAND, &h) == CP_RTP_OK, "hand-built packet parses");
    CHECK(h.marker == 1 && h.payload_type == 96, "M/PT %d %d", h.marker, h.payload_type);
    CHECK(h.sequence_number == 0x1234 && h.timestamp == 0xdeadbeef && h.ssrc == 0x01020304,
          "seq/ts/ssrc");
    CHECK(h.csrc_count == 1 && h.csrcs[0] == 0xcafebabe, "csrc");
    CHECK(h.has_extension && h.extension_profile == 0xBEDE && h.extension_len == 4 &&
              h.extension_offset == 20,
          "extension block");
    CHECK(h.payload_offset == 24 && h.payload_len == 2 && h.padding_len == 2, "payload/padding");
    size_t off = 0, len = 0;
    CHECK(cp_rtp_ext_find(h.extension_profile, HAND + 20, 4, 1, &off, &len) == 1 && off == 1 &&
              len == 2 && HAND[20 + off] == 0xaa,
          "element 1");
    CHECK(cp_rtp_ext_find(h.extension_profile, HAND + 20, 4, 2, &off, &len) == 0, "no element 2");
    uint8_t out[64];
    size_t n = 0;
    CHECK(cp_rtp_write(&h, HAND + 20, HAND + 24, HAND + 26, out, sizeof out, &n) == CP_RTP_OK &&
              n == sizeof HAND && memcmp(out, HAND, n) == 0,
          "re-serialised byte for byte");
    CHECK(cp_rtp_write(&h, HAND + 20, HAND + 24, NULL, out, sizeof out, &n) == CP_RTP_OK &&
              memcmp(out, HAND, n) == 0,
          "zero filler written when no padding octets given");
    CHECK(cp_rtp_write(&h, HAND + 20, HAND + 24, NULL, out, n - 1, &n) == CP_RTP_ERR_BUFFER,
          "short buffer refused");
    /* every truncation of it fails with a status, never reads past the end */
    for (size_t k = 0; k < sizeof HAND; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, HAND, k);
        CHECK(parse_status(cut, k) != CP_RTP_OK, "truncated to %zu parsed", k);
        free(cut);
    }
}

/* RFC 8285 section 4.2 / 4.3 examples (the figures), as whole packets. */
static void test_rfc8285_examples(void) {
    uint8_t one[] = {0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                     /* |0xBE|0xDE| length=3 | */ 0xbe, 0xde, 0x00, 0x03,
                     /* |ID=1 L=0| data | ID=2 L=1 | data... */ 0x10, 0x01, 0x21, 0x02,
                     /* ...data | 0 pad | 0 pad | ID=3 L=3 | */ 0x03, 0x00, 0x00, 0x33,
                     /* data (4 bytes) */ 0x04, 0x05, 0x06, 0x07, 'p'};
    cp_rtp_header h;
    CHECK(cp_rtp_parse(one, sizeof one, &h) == CP_RTP_OK, "one-byte example parses");
    size_t pos = 0, off, len;
    uint8_t id;
    const uint8_t *b = one + h.extension_offset;
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 1 && len == 1 && b[off] == 0x01,
          "one-byte element 1");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 2 && len == 2 && b[off] == 0x02 && b[off + 1] == 0x03,
          "one-byte element 2");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 3 && len == 4 && b[off] == 0x04 && b[off + 3] == 0x07,
          "one-byte element 3 after two padding bytes");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 0,
          "one-byte end");
    CHECK(h.payload_len == 1, "payload after the block");

    uint8_t two[] = {0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                     /* |0x10|0x00| length=3 | */ 0x10, 0x00, 0x00, 0x03,
                     /* | ID=1 | L=0 | ID=2 | L=1 | */ 0x01, 0x00, 0x02, 0x01,
                     /* | data | 0 pad | ID=3 | L=4 | */ 0x42, 0x00, 0x03, 0x04,
                     /* data */ 0x0a, 0x0b, 0x0c, 0x0d, 'p'};
    CHECK(cp_rtp_parse(two, sizeof two, &h) == CP_RTP_OK, "two-byte example parses");
    b = two + h.extension_offset;
    pos = 0;
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 1 && len == 0,
          "two-byte empty element");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 2 && len == 1 && b[off] == 0x42,
          "two-byte element 2");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 1 &&
              id == 3 && len == 4 && b[off + 3] == 0x0d,
          "two-byte element 3");
    CHECK(cp_rtp_ext_next(h.extension_profile, b, h.extension_len, &pos, &id, &off, &len) == 0,
          "two-byte end");

    /* building the one-byte example's elements gives the same lengths (no inner padding) */
    uint8_t d1[] = {1}, d2[] = {2, 3}, d3[] = {4, 5, 6, 7};
    cp_rtp_ext_element e[3] = {{1, d1, 1}, {2, d2, 2}, {3, d3, 4}};
    uint8_t blk[32];
    size_t w = 0;
    uint16_t prof = 0;
    CHECK(cp_rtp_ext_choose_form(e, 3) == CP_RTP_EXT_FORM_ONE_BYTE, "auto form one-byte");
    CHECK(cp_rtp_ext_build(CP_RTP_EXT_FORM_ONE_BYTE, e, 3, blk, sizeof blk, &w, &prof) == 0 &&
              w == 12 && prof == 0xBEDE,
          "one-byte build %zu", w);
    const uint8_t want1[] = {0x10, 1, 0x21, 2, 3, 0x33, 4, 5, 6, 7, 0, 0};
    CHECK(memcmp(blk, want1, 12) == 0, "one-byte block bytes");
    CHECK(cp_rtp_ext_build(CP_RTP_EXT_FORM_TWO_BYTE, e, 3, blk, sizeof blk, &w, &prof) == 0 &&
              w == 16 && prof == 0x1000,
          "two-byte build");
    cp_rtp_ext_element big = {15, d3, 4};
    CHECK(cp_rtp_ext_choose_form(&big, 1) == CP_RTP_EXT_FORM_TWO_BYTE, "id 15 needs two-byte");
    CHECK(cp_rtp_ext_build(CP_RTP_EXT_FORM_ONE_BYTE, &big, 1, blk, sizeof blk, &w, &prof) ==
              CP_RTP_ERR_EXT_FORM,
          "id 15 refused in one-byte form");
    cp_rtp_ext_element empty = {3, d1, 0};
    CHECK(cp_rtp_ext_choose_form(&empty, 1) == CP_RTP_EXT_FORM_TWO_BYTE, "empty needs two-byte");
}

static void test_malformed(void) {
    uint8_t p[64];
    memset(p, 0, sizeof p);
    p[0] = 0x80;
    CHECK(parse_status(p, 11) == CP_RTP_ERR_TRUNCATED, "11 bytes");
    CHECK(parse_status(p, 12) == CP_RTP_OK, "12 bytes, empty payload");
    p[0] = 0x40;
    CHECK(parse_status(p, 20) == CP_RTP_ERR_VERSION, "version 1");
    p[0] = 0xc0;
    CHECK(parse_status(p, 20) == CP_RTP_ERR_VERSION, "version 3");
    p[0] = 0x83; /* CC = 3: 24 bytes needed */
    CHECK(parse_status(p, 23) == CP_RTP_ERR_CSRC, "csrc truncated");
    CHECK(parse_status(p, 24) == CP_RTP_OK, "csrc fits");
    p[0] = 0x90; /* X */
    CHECK(parse_status(p, 15) == CP_RTP_ERR_EXT_HEADER, "ext header truncated");
    p[12] = 0xbe, p[13] = 0xde, p[14] = 0, p[15] = 2;
    CHECK(parse_status(p, 23) == CP_RTP_ERR_EXT_LENGTH, "ext block past the end");
    CHECK(parse_status(p, 24) == CP_RTP_OK, "ext block of zeros (padding only)");
    p[16] = 0x1f; /* id 1, 16 bytes: past an 8-byte block */
    CHECK(parse_status(p, 24) == CP_RTP_ERR_EXT_ELEMENT, "element past the block");
    p[16] = 0x05; /* id 0, L=5 */
    CHECK(parse_status(p, 24) == CP_RTP_ERR_EXT_ID, "id 0 with a length");
    p[16] = 0xf5; /* id 15: stop, the rest is ignored */
    p[17] = 0x0f;
    CHECK(parse_status(p, 24) == CP_RTP_OK, "id 15 ends the block");
    p[12] = 0x10, p[13] = 0x07; /* two-byte, appbits 7 */
    p[16] = 0x01, p[17] = 0x07; /* id 1, 7 bytes from offset 18: past */
    CHECK(parse_status(p, 24) == CP_RTP_ERR_EXT_ELEMENT, "two-byte element past the block");
    p[17] = 0x06;
    CHECK(parse_status(p, 24) == CP_RTP_OK, "two-byte element fills the block");
    memset(p + 16, 0, 7);
    p[23] = 0x09; /* last byte of the block: an id without its length byte */
    CHECK(parse_status(p, 24) == CP_RTP_ERR_EXT_ELEMENT, "two-byte header cut");
    p[12] = 0x12, p[13] = 0x34; /* another profile: opaque, anything goes */
    CHECK(parse_status(p, 24) == CP_RTP_OK, "opaque profile");
    p[0] = 0xa0; /* P */
    p[19] = 0;
    CHECK(parse_status(p, 20) == CP_RTP_ERR_PADDING_ZERO, "padding count 0");
    p[19] = 9;
    CHECK(parse_status(p, 20) == CP_RTP_ERR_PADDING_LENGTH, "padding count > 8");
    p[19] = 8;
    CHECK(parse_status(p, 20) == CP_RTP_OK, "padding = whole payload");
    CHECK(parse_status(p, 12) == CP_RTP_ERR_PADDING_LENGTH, "P set, nothing after the header");
    p[0] = 0xb0; /* P + X: padding may not reach into the extension */
    p[12] = 0xbe, p[13] = 0xde, p[14] = 0, p[15] = 1;
    memset(p + 16, 0, 4);
    p[19] = 0;
    p[21] = 2;
    CHECK(parse_status(p, 22) == CP_RTP_OK, "padding = the 2 payload bytes");
    p[21] = 3;
    CHECK(parse_status(p, 22) == CP_RTP_ERR_PADDING_LENGTH, "padding into the extension");

    /* writer argument checks */
    cp_rtp_header h;
    memset(&h, 0, sizeof h);
    uint8_t out[64];
    size_t n;
    h.payload_type = 128;
    CHECK(cp_rtp_write(&h, NULL, NULL, NULL, out, sizeof out, &n) == CP_RTP_ERR_ARG, "PT 128");
    h.payload_type = 0;
    h.csrc_count = 16;
    CHECK(cp_rtp_write(&h, NULL, NULL, NULL, out, sizeof out, &n) == CP_RTP_ERR_ARG, "CC 16");
    h.csrc_count = 0;
    h.has_extension = 1;
    h.extension_len = 3;
    CHECK(cp_rtp_write(&h, out, NULL, NULL, out, sizeof out, &n) == CP_RTP_ERR_ARG, "ext len 3");
    h.has_extension = 0;
    h.extension_len = 0;
    h.padding_len = 3;
    uint8_t badpad[3] = {0, 0, 2};
    CHECK(cp_rtp_write(&h, NULL, NULL, badpad, out, sizeof out, &n) == CP_RTP_ERR_ARG,
          "padding octets with a wrong count");
}

static void test_typed_values(void) {
    /* abs-send-time: 1.5 s = 0x060000 (6.18: 1 s = 1 << 18) */
    CHECK(cp_rtp_abs_send_time_from_us(1500000) == 0x060000, "1.5 s");
    CHECK(cp_rtp_abs_send_time_from_us(64000000 + 250000) == 0x010000, "modulo 64 s");
    int bad = 0;
    for (uint32_t v = 0; v < (1u << 24); v++)
        if (cp_rtp_abs_send_time_from_us(cp_rtp_abs_send_time_to_us(v)) != v) bad++;
    CHECK(bad == 0, "%d abs-send-time values do not round trip", bad);
    uint8_t b[3];
    uint32_t v = 0;
    cp_rtp_abs_send_time_encode(0xabcdef, b);
    CHECK(b[0] == 0xab && b[1] == 0xcd && b[2] == 0xef, "abs-send-time bytes");
    CHECK(cp_rtp_abs_send_time_decode(b, 3, &v) == 0 && v == 0xabcdef, "abs decode");
    CHECK(cp_rtp_abs_send_time_decode(b, 2, &v) == CP_RTP_ERR_EXT_VALUE, "abs 2 bytes");
    uint16_t s = 0;
    cp_rtp_transport_cc_encode(0xbeef, b);
    CHECK(cp_rtp_transport_cc_decode(b, 2, &s) == 0 && s == 0xbeef && b[0] == 0xbe, "tcc");
    CHECK(cp_rtp_transport_cc_decode(b, 3, &s) == CP_RTP_ERR_EXT_VALUE, "tcc 3 bytes");
    int voice = 0, level = 0;
    uint8_t lv = cp_rtp_audio_level_encode(1, 42);
    CHECK(lv == 0xaa, "audio level byte %#x", lv);
    CHECK(cp_rtp_audio_level_decode(&lv, 1, &voice, &level) == 0 && voice == 1 && level == 42,
          "audio level decode");
    CHECK(cp_rtp_audio_level_decode(&lv, 0, &voice, &level) == CP_RTP_ERR_EXT_VALUE, "level 0 B");
    cp_rtp_frame_marking fm = {1, 0, 1, 0, 1, 5, 3, 9, 200}, back;
    uint8_t fb[3];
    CHECK(cp_rtp_frame_marking_encode(&fm, fb) == 3 && fb[0] == 0xad && fb[1] == 9 && fb[2] == 200,
          "frame marking bytes %#x", fb[0]);
    CHECK(cp_rtp_frame_marking_decode(fb, 3, &back) == 0 && memcmp(&back, &fm, sizeof fm) == 0,
          "frame marking round trip");
    CHECK(cp_rtp_frame_marking_decode(fb, 4, &back) == CP_RTP_ERR_EXT_VALUE, "frame marking 4 B");
}

static void test_seqnum(void) {
    int bad_diff = 0, bad_unwrap = 0;
    for (uint32_t a = 0; a < 65536; a++) {
        uint16_t s = (uint16_t)a;
        if (cp_rtp_seq_diff((uint16_t)(s + 1), s) != 1 || cp_rtp_seq_diff(s, (uint16_t)(s + 1)) != -1 ||
            cp_rtp_seq_diff((uint16_t)(s + 32767), s) != 32767 ||
            cp_rtp_seq_diff((uint16_t)(s + 32768), s) != -32768 || cp_rtp_seq_diff(s, s) != 0)
            bad_diff++;
        /* unwrap starting at every value: forward over the wrap, one step back, reordering */
        cp_rtp_unwrapper u;
        cp_rtp_unwrapper_init(&u, 16);
        int64_t e0 = cp_rtp_unwrap(&u, s);
        int64_t e1 = cp_rtp_unwrap(&u, (uint16_t)(s + 1));
        int64_t e2 = cp_rtp_unwrap(&u, (uint16_t)(s + 3));
        int64_t e3 = cp_rtp_unwrap(&u, (uint16_t)(s + 2)); /* reordered */
        int64_t e4 = cp_rtp_unwrap(&u, (uint16_t)(s - 1)); /* late, before the first */
        int64_t e5 = cp_rtp_unwrap(&u, (uint16_t)(s + 4));
        if (e0 != s || e1 != e0 + 1 || e2 != e0 + 3 || e3 != e0 + 2 || e4 != e0 - 1 || e5 != e0 + 4)
            bad_unwrap++;
    }
    CHECK(bad_diff == 0, "%d seq_diff failures", bad_diff);
    CHECK(bad_unwrap == 0, "%d unwrap failures", bad_unwrap);
    cp_rtp_unwrapper u;
    cp_rtp_unwrapper_init(&u, 16);
    int64_t e = 0;
    for (uint32_t i = 0; i < 5 * 65536; i += 1000) e = cp_rtp_unwrap(&u, (uint16_t)i);
    CHECK(e == 327000, "five cycles in steps of 1000: %lld", (long long)e);
    cp_rtp_unwrapper_init(&u, 32);
    CHECK(cp_rtp_unwrap(&u, 0xfffffff0u) == 0xfffffff0LL, "ts first");
    CHECK(cp_rtp_unwrap(&u, 0x10) == 0x100000010LL, "ts over the wrap");
    CHECK(cp_rtp_unwrap(&u, 0xffffff00u) == 0xffffff00LL, "ts back over the wrap");
    CHECK(cp_rtp_ts_diff(0, 0x80000000u) == -2147483648LL, "ts half range is backwards");
    CHECK(cp_rtp_ts_diff(5, 0xfffffffbu) == 10, "ts diff over the wrap");
}

static void test_descriptor(void) {
    /* every flag combination and field width round trips through write -> parse */
    int bad = 0;
    for (int mask = 0; mask < 256; mask++) {
        cp_vp8_descriptor d, back;
        memset(&d, 0, sizeof d);
        d.extended = (uint8_t)(mask & 1);
        d.non_reference = (uint8_t)((mask >> 1) & 1);
        d.start = (uint8_t)((mask >> 2) & 1);
        d.partition_id = (uint8_t)(mask % 8);
        d.picture_id_bits = (uint8_t)((mask >> 3) & 1 ? ((mask >> 4) & 1 ? 15 : 7) : 0);
        d.picture_id = d.picture_id_bits == 15 ? 0x7abc : d.picture_id_bits == 7 ? 0x55 : 0;
        d.has_tl0_pic_idx = (uint8_t)((mask >> 5) & 1);
        d.tl0_pic_idx = d.has_tl0_pic_idx ? 0xa5 : 0;
        d.has_tid = (uint8_t)((mask >> 6) & 1);
        d.tid = d.has_tid ? 2 : 0;
        d.layer_sync = d.has_tid ? 1 : 0;
        d.has_key_idx = (uint8_t)((mask >> 7) & 1);
        d.key_idx = d.has_key_idx ? 0x13 : 0;
        if (d.picture_id_bits || d.has_tl0_pic_idx || d.has_tid || d.has_key_idx) d.extended = 1;
        uint8_t buf[8];
        size_t n = cp_vp8_descriptor_len(&d);
        if (cp_vp8_descriptor_write(&d, buf) != 0) bad++;
        buf[n] = 0x42; /* one byte of VP8 data */
        if (cp_vp8_descriptor_parse(buf, n + 1, &back) != 0) bad++;
        d.size = n;
        if (memcmp(&d, &back, sizeof d) != 0) bad++;
        if (cp_vp8_descriptor_parse(buf, n, &back) != CP_RTP_ERR_VP8_NO_DATA) bad++;
        for (size_t k = 1; k < n; k++)
            if (cp_vp8_descriptor_parse(buf, k, &back) != CP_RTP_ERR_VP8_TRUNCATED) bad++;
    }
    CHECK(bad == 0, "%d descriptor round-trip failures", bad);
    cp_vp8_descriptor d;
    CHECK(cp_vp8_descriptor_parse(NULL, 0, &d) == CP_RTP_ERR_VP8_EMPTY, "empty payload");
    /* RFC 7741 layout: X=1 S=1, I=1 M=1 PictureID 0x1234, L, T/K: TID 1 Y 1 KEYIDX 7 */
    const uint8_t rfc[] = {0x90, 0xf0, 0x92, 0x34, 0x07, 0x77, 0x00};
    CHECK(cp_vp8_descriptor_parse(rfc, sizeof rfc, &d) == 0 && d.size == 6 && d.start &&
              d.picture_id_bits == 15 && d.picture_id == 0x1234 && d.tl0_pic_idx == 7 &&
              d.tid == 1 && d.layer_sync && d.key_idx == 0x17,
          "hand-built descriptor");
    cp_vp8_descriptor bad_d;
    memset(&bad_d, 0, sizeof bad_d);
    bad_d.picture_id_bits = 7;
    bad_d.picture_id = 128;
    uint8_t o[8];
    CHECK(cp_vp8_descriptor_write(&bad_d, o) == CP_RTP_ERR_ARG, "7-bit PictureID 128");
    const uint8_t key[] = {0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
    CHECK(cp_vp8_is_keyframe(key, sizeof key), "keyframe tag");
    CHECK(!cp_vp8_is_keyframe(key, 9), "keyframe too short");
    const uint8_t delta[] = {0x51, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
    CHECK(!cp_vp8_is_keyframe(delta, sizeof delta), "delta frame tag");
}

/* Packetize a frame with a header template into freshly allocated packets. */
static size_t make_packets(const uint8_t *frame, size_t flen, uint16_t seq, uint32_t ts,
                           size_t mtu, uint8_t **pkts, size_t *lens, uint16_t pid) {
    uint8_t hdr[12] = {0x80, 96, (uint8_t)(seq >> 8), (uint8_t)seq, (uint8_t)(ts >> 24),
                       (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts, 0, 0, 0, 7};
    cp_vp8_packetizer_params p;
    memset(&p, 0, sizeof p);
    p.header = hdr;
    p.header_len = 12;
    p.descriptor.picture_id_bits = 15;
    p.descriptor.picture_id = pid;
    p.descriptor.extended = 1;
    p.mtu = mtu;
    size_t count = 0;
    if (cp_vp8_packet_count(&p, flen, &count) != 0) return 0;
    for (size_t i = 0; i < count; i++) {
        lens[i] = cp_vp8_packet_size(&p, flen, count, i);
        pkts[i] = malloc(lens[i]);
    }
    if (cp_vp8_packetize(&p, frame, flen, pkts, count) != 0) return 0;
    return count;
}

static void test_packetize_assemble(unsigned *seed) {
    enum { FRAMES = 40, MAXP = 64 };
    uint8_t *frames[FRAMES];
    size_t flen[FRAMES];
    uint8_t *pkts[FRAMES * MAXP];
    size_t lens[FRAMES * MAXP], npk = 0;
    size_t first[FRAMES], count[FRAMES];
    for (int f = 0; f < FRAMES; f++) {
        flen[f] = 200 + (size_t)(f * 997) % 9000;
        frames[f] = random_bytes(flen[f], seed);
        frames[f][0] = (uint8_t)(f == 0 ? 0x00 : 0x01); /* P bit: frame 0 a keyframe */
        if (f == 0) frames[f][3] = 0x9d, frames[f][4] = 0x01, frames[f][5] = 0x2a;
        first[f] = npk;
        count[f] = make_packets(frames[f], flen[f], (uint16_t)(65500 + npk), (uint32_t)(f * 3000),
                                500, pkts + npk, lens + npk, (uint16_t)(32760 + f) & 0x7fff);
        npk += count[f];
    }
    CHECK(count[0] > 0 && npk < FRAMES * MAXP, "packetized %zu packets", npk);
    /* sizes are balanced and within the MTU; S only on the first, marker only on the last */
    int bad = 0;
    for (int f = 0; f < FRAMES; f++)
        for (size_t i = 0; i < count[f]; i++) {
            const uint8_t *p = pkts[first[f] + i];
            size_t l = lens[first[f] + i];
            if (l > 500 || l + 1 < lens[first[f] + count[f] - 1]) bad++;
            if (((p[12] & 0x10) != 0) != (i == 0)) bad++;
            if (((p[1] & 0x80) != 0) != (i + 1 == count[f])) bad++;
        }
    CHECK(bad == 0, "%d packet layout errors", bad);

    /* 1) in order, each packet twice */
    int st = 0;
    cp_vp8_assembler_config cfg = {0, 0, 0, 0, 0, 3, -1};
    cp_vp8_assembler *a = cp_vp8_assembler_new(&cfg, &st);
    CHECK(a != NULL && st == 0, "new");
    int got = 0, outcome;
    uint8_t *buf = malloc(20000);
    cp_vp8_frame_info info;
    for (size_t i = 0; i < npk; i++) {
        for (int rep = 0; rep < 2; rep++) {
            CHECK(cp_vp8_assembler_push(a, pkts[i], lens[i], (double)i, &outcome) == 0, "push");
            while (cp_vp8_assembler_ready(a, &info)) {
                CHECK(info.size == flen[got] && info.continuous && info.marker &&
                          info.packets == count[got] && info.timestamp == (uint32_t)(got * 3000) &&
                          info.keyframe == (got == 0) &&
                          info.descriptor.picture_id == ((32760 + got) & 0x7fff),
                      "frame %d info", got);
                CHECK(cp_vp8_assembler_take(a, buf, 20000) == 0 &&
                          memcmp(buf, frames[got], flen[got]) == 0,
                      "frame %d bytes", got);
                got++;
            }
        }
    }
    cp_vp8_assembler_stats s;
    cp_vp8_assembler_get_stats(a, &s);
    /* the second copy of a frame's last packet comes after the frame went out: late */
    CHECK(got == FRAMES && s.duplicates == npk - FRAMES && s.late == FRAMES &&
              s.frames == FRAMES && s.keyframes == 1 &&
              cp_vp8_assembler_held(a) == 0,
          "in order: %d frames, %llu dups", got, (unsigned long long)s.duplicates);
    cp_vp8_assembler_free(a);

    /* 2) shuffled within a window of 8 packets, packet 0 of frame 5 lost, garbage between */
    a = cp_vp8_assembler_new(&cfg, &st);
    size_t order[FRAMES * MAXP];
    for (size_t i = 0; i < npk; i++) order[i] = i;
    /* (the first 8 stay in order: a frame that arrives after a later one was already
     * emitted at start-up is late -- nothing said it existed) */
    for (size_t i = 8; i + 8 < npk; i += 8)
        for (size_t k = 7; k > 0; k--) {
            *seed = *seed * 1103515245u + 12345u;
            size_t j = (*seed >> 16) % (k + 1);
            size_t t = order[i + k];
            order[i + k] = order[i + j];
            order[i + j] = t;
        }
    got = 0;
    int emitted[FRAMES] = {0};
    for (size_t i = 0; i < npk; i++) {
        if (order[i] == first[5]) continue;
        uint8_t *junk = random_bytes(i % 40, seed);
        cp_vp8_assembler_push(a, junk, i % 40, -1, &outcome);
        free(junk);
        CHECK(cp_vp8_assembler_push(a, pkts[order[i]], lens[order[i]], -1, &outcome) == 0, "push");
        while (cp_vp8_assembler_ready(a, &info)) {
            int f = (int)(info.timestamp / 3000);
            CHECK(f < FRAMES && info.size == flen[f], "frame size");
            CHECK(cp_vp8_assembler_take(a, buf, 20000) == 0 && memcmp(buf, frames[f], flen[f]) == 0,
                  "shuffled frame %d bytes", f);
            CHECK(f > got - 1 || got == 0, "order");
            CHECK(info.continuous == (f != 6), "frame %d continuous=%d", f, info.continuous);
            emitted[f] = 1;
            got = f + 1;
        }
    }
    int missing = 0;
    for (int f = 0; f < FRAMES; f++) missing += !emitted[f] && f != 5;
    CHECK(!emitted[5] && missing == 0, "all frames but 5 (missing %d)", missing);
    cp_vp8_loss loss;
    CHECK(cp_vp8_assembler_pop_loss(a, &loss) == 1 && loss.reason == CP_VP8_LOSS_GAP &&
              loss.timestamps == 1 && loss.first_timestamp == 15000 &&
              loss.packets_received == count[5] - 1,
          "loss of frame 5: reason %d ts %u", loss.reason, loss.first_timestamp);
    CHECK(cp_vp8_assembler_pop_loss(a, &loss) == 0, "one loss");
    cp_vp8_assembler_get_stats(a, &s);
    CHECK(s.invalid > 0 && s.frames == FRAMES - 1, "stats: invalid %llu",
          (unsigned long long)s.invalid);
    cp_vp8_assembler_free(a);

    /* 3) a sequence restart (64+ late packets) is followed after a RESET loss */
    a = cp_vp8_assembler_new(&cfg, &st);
    for (size_t i = npk / 2; i < npk; i++) cp_vp8_assembler_push(a, pkts[i], lens[i], -1, &outcome);
    while (cp_vp8_assembler_ready(a, &info)) cp_vp8_assembler_take(a, buf, 20000);
    got = 0;
    for (size_t i = 0; i < npk / 2; i++) {
        cp_vp8_assembler_push(a, pkts[i], lens[i], -1, &outcome);
        while (cp_vp8_assembler_ready(a, &info)) {
            cp_vp8_assembler_take(a, buf, 20000);
            got++;
        }
    }
    CHECK(got > 0, "frames after the restart: %d", got);
    cp_vp8_assembler_reset(a, 1);
    cp_vp8_assembler_free(a);

    /* 4) random bytes and random mutations of valid packets: no crash, no leak */
    a = cp_vp8_assembler_new(&cfg, &st);
    for (int round = 0; round < 20000; round++) {
        size_t i = (size_t)round % npk;
        uint8_t *m = malloc(lens[i]);
        memcpy(m, pkts[i], lens[i]);
        *seed = *seed * 1103515245u + 12345u;
        m[(*seed >> 16) % lens[i]] ^= (uint8_t)(1u << ((*seed >> 8) & 7));
        cp_vp8_assembler_push(a, m, lens[i] - ((*seed >> 4) & 3), (double)round, &outcome);
        while (cp_vp8_assembler_ready(a, &info)) {
            uint8_t *f = malloc(info.size ? info.size : 1);
            CHECK(cp_vp8_assembler_take(a, f, info.size) == 0, "take");
            free(f);
        }
        if (round % 1000 == 0) cp_vp8_assembler_skip(a, 1);
        while (cp_vp8_assembler_pop_loss(a, &loss)) {
        }
        free(m);
    }
    cp_vp8_assembler_free(a);

    for (int f = 0; f < FRAMES; f++) free(frames[f]);
    for (size_t i = 0; i < npk; i++) free(pkts[i]);
    free(buf);
}

static void test_packetizer_limits(void) {
    uint8_t frame[100] = {0};
    uint8_t hdr[20] = {0x80, 96};
    cp_vp8_packetizer_params p;
    memset(&p, 0, sizeof p);
    p.header = hdr;
    p.header_len = 12;
    p.mtu = 13; /* header + 1-byte descriptor: no room */
    size_t n;
    CHECK(cp_vp8_packet_count(&p, 100, &n) == CP_RTP_ERR_MTU, "mtu 13");
    p.mtu = 14; /* one byte per packet */
    CHECK(cp_vp8_packet_count(&p, 100, &n) == 0 && n == 100, "100 one-byte packets");
    CHECK(cp_vp8_packet_count(&p, 0, &n) == CP_RTP_ERR_ARG, "empty frame");
    p.transport_cc_offset = 11;
    CHECK(cp_vp8_packet_count(&p, 100, &n) == CP_RTP_ERR_ARG, "tcc offset inside fixed header");
    p.transport_cc_offset = 0;
    uint8_t *outs[3];
    uint8_t store[3][64];
    for (int i = 0; i < 3; i++) outs[i] = store[i];
    p.mtu = 60;
    CHECK(cp_vp8_packet_count(&p, 100, &n) == 0 && n == 3, "3 packets");
    CHECK(cp_vp8_packetize(&p, frame, 100, outs, 2) == CP_RTP_ERR_ARG, "wrong count refused");
    CHECK(cp_vp8_packetize(&p, frame, 100, outs, 3) == 0, "3 packets written");
    CHECK(cp_vp8_packet_size(&p, 100, 3, 0) == 47 && cp_vp8_packet_size(&p, 100, 3, 2) == 46,
          "balanced 34/33/33");
    cp_vp8_assembler_config big = {100000, 0, 0, 0, 0, 3, -1};
    int st = 0;
    CHECK(cp_vp8_assembler_new(&big, &st) == NULL && st == CP_RTP_ERR_ARG, "capacity too big");
}

static void test_random_bytes(unsigned *seed) {
    int crashes_would_show = 0;
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(round % 80);
        uint8_t *p = random_bytes(n, seed);
        if (n) p[0] = (uint8_t)((p[0] & 0x3f) | 0x80); /* mostly version 2 */
        cp_rtp_header h;
        if (cp_rtp_parse(p, n, &h) == CP_RTP_OK) {
            uint8_t out[128];
            size_t w = 0;
            CHECK(h.payload_offset + h.payload_len + h.padding_len == n, "lengths add up");
            CHECK(cp_rtp_write(&h, p + h.extension_offset, p + h.payload_offset,
                               p + h.payload_offset + h.payload_len, out, sizeof out, &w) == 0 &&
                      w == n && memcmp(out, p, n) == 0,
                  "parse -> write is the identity");
        }
        cp_vp8_descriptor d;
        if (cp_vp8_descriptor_parse(p, n, &d) == CP_RTP_OK)
            crashes_would_show += d.size < n ? 0 : 1;
        cp_rtp_frame_marking fm;
        cp_rtp_frame_marking_decode(p, n % 5, &fm);
        free(p);
    }
    CHECK(crashes_would_show == 0, "descriptor size must leave data");
}

int main(void) {
    unsigned seed = 12345;
    test_hand_built();
    test_rfc8285_examples();
    test_malformed();
    test_typed_values();
    test_seqnum();
    test_descriptor();
    test_packetize_assemble(&seed);
    test_packetizer_limits();
    test_random_bytes(&seed);
    return check_done("test_cp_rtp");
}
