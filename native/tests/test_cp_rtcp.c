/* cp_rtcp under the sanitizers: a hand-built SR + SDES compound (bytes from the RFC 3550
 * diagrams) parsed and rebuilt byte for byte, every writer round-tripped, truncation at every
 * byte, every single-bit flip, NACK pack/unpack across the 65535 -> 0 wrap, and random bytes. */
#include "callpipe/cp_rtcp.h"
#include "check.h"
#include <string.h>

/* SR, RC=1, length field 12 (52 bytes) + SDES with one chunk, CNAME "host" (16 bytes). */
static const uint8_t COMPOUND[] = {
    /* SR header: V=2 P=0 RC=1, PT=200, length=12 */
    0x81, 0xc8, 0x00, 0x0c,
    0x11, 0x22, 0x33, 0x44,                         /* SSRC of sender */
    0xe8, 0x4e, 0x3f, 0x00, 0x80, 0x00, 0x00, 0x00, /* NTP 0xe84e3f00.80000000 */
    0x00, 0x01, 0x5f, 0x90,                         /* RTP timestamp 90000 */
    0x00, 0x00, 0x00, 0x64,                         /* packet count 100 */
    0x00, 0x01, 0x86, 0xa0,                         /* octet count 100000 */
    /* report block */
    0xaa, 0xbb, 0xcc, 0xdd,                         /* SSRC_1 */
    0x40, 0xff, 0xff, 0xfe,                         /* fraction 64/256, cumulative -2 */
    0x00, 0x01, 0x00, 0x05,                         /* extended highest seq: cycle 1, seq 5 */
    0x00, 0x00, 0x01, 0x2c,                         /* jitter 300 */
    0x3f, 0x00, 0x80, 0x00,                         /* LSR */
    0x00, 0x01, 0x80, 0x00,                         /* DLSR 1.5 s */
    /* SDES header: V=2 P=0 SC=1, PT=202, length=3 */
    0x81, 0xca, 0x00, 0x03,
    0x11, 0x22, 0x33, 0x44,                         /* SSRC */
    0x01, 0x04, 'h', 'o', 's', 't', 0x00, 0x00,     /* CNAME len 4 "host", END + 1 null */
};

static void test_compound(void) {
    cp_rtcp_packet pk[32];
    size_t n = 0, where = 0;
    CHECK(cp_rtcp_parse(COMPOUND, sizeof COMPOUND, 0, pk, 32, &n, &where) == CP_RTCP_OK, "parse");
    CHECK(n == 2 && pk[0].kind == CP_RTCP_KIND_SR && pk[1].kind == CP_RTCP_KIND_SDES, "kinds");
    cp_rtcp_sender_info si;
    cp_rtcp_sender_info_get(COMPOUND, &pk[0], &si);
    CHECK(si.ntp_timestamp == 0xe84e3f0080000000ull && si.rtp_timestamp == 90000 &&
              si.packet_count == 100 && si.octet_count == 100000,
          "sender info");
    cp_rtcp_report_block b;
    cp_rtcp_report_block_get(COMPOUND, &pk[0], 0, &b);
    CHECK(b.ssrc == 0xaabbccdd && b.fraction_lost == 64 && b.cumulative_lost == -2 &&
              b.highest_seq == 0x10005 && b.jitter == 300 && b.lsr == 0x3f008000 &&
              b.dlsr == 0x18000,
          "report block");
    cp_rtcp_sdes_item items[8];
    size_t ni = 0;
    CHECK(cp_rtcp_sdes_items(COMPOUND, &pk[1], items, 8, &ni) == 0 && ni == 1, "sdes items");
    CHECK(items[0].type == 1 && items[0].length == 4 && memcmp(COMPOUND + items[0].offset, "host", 4) == 0,
          "cname");

    /* rebuild byte for byte */
    uint8_t out[256];
    size_t w1 = 0, w2 = 0;
    CHECK(cp_rtcp_write_sr(out, sizeof out, 0x11223344, &si, &b, 1, NULL, 0, &w1) == 0, "write sr");
    CHECK(cp_rtcp_write_sdes(out + w1, sizeof out - w1, items, 1, COMPOUND, sizeof COMPOUND, &w2) == 0,
          "write sdes");
    CHECK(w1 + w2 == sizeof COMPOUND && memcmp(out, COMPOUND, sizeof COMPOUND) == 0, "byte-exact rebuild");
    size_t w = 0;
    CHECK(cp_rtcp_write_sr(out, w1 - 1, 0x11223344, &si, &b, 1, NULL, 0, &w) == CP_RTCP_ERR_BUFFER,
          "small buffer");

    /* truncation at every byte: never OK except at the packet boundary (compound of one SR) */
    for (size_t len = 0; len < sizeof COMPOUND; len++) {
        int rc = cp_rtcp_parse(COMPOUND, len, 0, pk, 32, &n, &where);
        if (len == 52)
            CHECK(rc == CP_RTCP_OK && n == 1, "SR alone");
        else
            CHECK(rc != CP_RTCP_OK, "truncated at %zu accepted", len);
    }
    /* every single-bit flip: no crash, and the accessors of anything accepted stay in bounds */
    uint8_t m[sizeof COMPOUND];
    for (size_t bit = 0; bit < 8 * sizeof COMPOUND; bit++) {
        memcpy(m, COMPOUND, sizeof m);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (cp_rtcp_parse(m, sizeof m, CP_RTCP_REDUCED_SIZE, pk, 32, &n, NULL) == CP_RTCP_OK) {
            for (size_t i = 0; i < n; i++) {
                CHECK(pk[i].offset + pk[i].size <= sizeof m, "packet in bounds");
                CHECK(pk[i].body + pk[i].body_len <= sizeof m, "body in bounds");
                if (pk[i].kind == CP_RTCP_KIND_SDES)
                    CHECK(cp_rtcp_sdes_items(m, &pk[i], items, 8, &ni) == 0, "sdes items");
            }
        }
    }
    /* wrong version, not first SR/RR, too many */
    memcpy(m, COMPOUND, sizeof m);
    m[0] = 0x41;
    CHECK(cp_rtcp_parse(m, sizeof m, 0, pk, 32, &n, NULL) == CP_RTCP_ERR_VERSION, "version");
    CHECK(cp_rtcp_parse(COMPOUND + 52, 16, 0, pk, 32, &n, NULL) == CP_RTCP_ERR_FIRST, "first");
    CHECK(cp_rtcp_parse(COMPOUND + 52, 16, CP_RTCP_REDUCED_SIZE, pk, 32, &n, NULL) == 0, "reduced");
    CHECK(cp_rtcp_parse(COMPOUND, sizeof COMPOUND, 0, pk, 1, &n, &where) == CP_RTCP_ERR_TOO_MANY &&
              n == 1 && where == 52,
          "too many");
    /* padding on the first packet of two */
    memcpy(m, COMPOUND, sizeof m);
    m[0] |= 0x20;
    CHECK(cp_rtcp_parse(m, sizeof m, 0, pk, 32, &n, &where) == CP_RTCP_ERR_PADDING && where == 0,
          "padding not last");
}

static void test_writers(void) {
    uint8_t out[2048], text[] = "cnameother";
    cp_rtcp_packet pk[16];
    size_t n = 0, w = 0;
    /* RR with 0 blocks, an SDES with two chunks (one empty), BYE with reason, APP, NACK, PLI,
     * FIR, REMB, raw XR: all in one compound; parse them back. */
    size_t pos = 0;
    cp_rtcp_report_block blocks[2] = {{1, 2, -8388608, 3, 4, 5, 6}, {7, 255, 8388607, 9, 10, 11, 12}};
    CHECK(cp_rtcp_write_rr(out, sizeof out, 42, blocks, 2, NULL, 0, &w) == 0 && w == 56, "rr");
    pos += w;
    cp_rtcp_sdes_item it[3] = {{5, 0, 0, 1, 5}, {5, 5, 0, 8, 5}, {6, 0, 1, 0, 0}};
    CHECK(cp_rtcp_write_sdes(out + pos, sizeof out - pos, it, 3, text, 10, &w) == 0, "sdes");
    pos += w;
    uint32_t ss[2] = {5, 6};
    CHECK(cp_rtcp_write_bye(out + pos, sizeof out - pos, ss, 2, 1, (const uint8_t *)"bye", 3, &w) == 0 &&
              w == 16,
          "bye");
    pos += w;
    CHECK(cp_rtcp_write_app(out + pos, sizeof out - pos, 3, 5, (const uint8_t *)"TEST", text, 8, &w) == 0,
          "app");
    pos += w;
    uint16_t pids[2] = {65535, 10}, blps[2] = {0x8001, 0};
    CHECK(cp_rtcp_write_nack(out + pos, sizeof out - pos, 1, 2, pids, blps, 2, &w) == 0 && w == 20, "nack");
    pos += w;
    CHECK(cp_rtcp_write_pli(out + pos, sizeof out - pos, 1, 2, &w) == 0 && w == 12, "pli");
    pos += w;
    cp_rtcp_fir_entry fe = {0xdeadbeef, 200};
    CHECK(cp_rtcp_write_fir(out + pos, sizeof out - pos, 1, 0, &fe, 1, &w) == 0 && w == 20, "fir");
    pos += w;
    CHECK(cp_rtcp_write_remb(out + pos, sizeof out - pos, 1, 0, 63, 0x3ffff, ss, 2, &w) == 0 && w == 28,
          "remb");
    pos += w;
    CHECK(cp_rtcp_write_raw(out + pos, sizeof out - pos, 207, 0, text, 8, &w) == 0 && w == 12, "raw");
    pos += w;
    CHECK(cp_rtcp_parse(out, pos, 0, pk, 16, &n, NULL) == 0 && n == 9, "parse all (%zu)", n);
    int kinds[9] = {CP_RTCP_KIND_RR,  CP_RTCP_KIND_SDES, CP_RTCP_KIND_BYE,
                    CP_RTCP_KIND_APP, CP_RTCP_KIND_NACK, CP_RTCP_KIND_PLI,
                    CP_RTCP_KIND_FIR, CP_RTCP_KIND_REMB, CP_RTCP_KIND_OTHER};
    for (size_t i = 0; i < n && i < 9; i++) CHECK(pk[i].kind == kinds[i], "kind %zu", i);
    cp_rtcp_report_block b;
    cp_rtcp_report_block_get(out, &pk[0], 0, &b);
    CHECK(b.cumulative_lost == -8388608, "min cumulative lost");
    cp_rtcp_report_block_get(out, &pk[0], 1, &b);
    CHECK(b.cumulative_lost == 8388607 && b.fraction_lost == 255, "max cumulative lost");
    cp_rtcp_sdes_item back[8];
    size_t ni = 0;
    CHECK(cp_rtcp_sdes_items(out, &pk[1], back, 8, &ni) == 0 && ni == 3 && back[2].type == 0 &&
              back[2].ssrc == 6,
          "sdes back");
    CHECK(pk[2].has_reason && pk[2].ext_len == 3 && memcmp(out + pk[2].ext, "bye", 3) == 0, "reason");
    uint16_t pid, blp;
    cp_rtcp_nack_get(out, &pk[4], 0, &pid, &blp);
    CHECK(pid == 65535 && blp == 0x8001, "nack item");
    cp_rtcp_fir_entry fb;
    cp_rtcp_fir_get(out, &pk[6], 0, &fb);
    CHECK(fb.ssrc == 0xdeadbeef && fb.seq_nr == 200, "fir entry");
    uint8_t e;
    uint32_t mant;
    cp_rtcp_remb_get(out, &pk[7], &e, &mant);
    CHECK(e == 63 && mant == 0x3ffff && cp_rtcp_ssrc_get(out, &pk[7], 1) == 6, "remb");
    /* argument errors */
    blocks[0].cumulative_lost = 8388608;
    CHECK(cp_rtcp_write_rr(out, sizeof out, 1, blocks, 1, NULL, 0, &w) == CP_RTCP_ERR_ARG, "lost range");
    CHECK(cp_rtcp_write_nack(out, sizeof out, 1, 2, pids, blps, 0, &w) == CP_RTCP_ERR_ARG, "empty nack");
    CHECK(cp_rtcp_write_remb(out, sizeof out, 1, 0, 64, 1, NULL, 0, &w) == CP_RTCP_ERR_ARG, "remb exp");
    CHECK(cp_rtcp_write_raw(out, sizeof out, 100, 0, NULL, 0, &w) == CP_RTCP_ERR_ARG, "raw type");
}

static void test_nack(void) {
    uint16_t seqs[64], pids[64], blps[64], back[64 * 17];
    size_t k = 0, m = 0;
    /* 65530..65535, 0..5 and 40: one item (PID 65530, bits 0..10) + one for 40 */
    size_t n = 0;
    for (int i = 0; i < 12; i++) seqs[n++] = (uint16_t)(65530 + i);
    seqs[n++] = 40;
    CHECK(cp_rtcp_nack_pack(seqs, n, pids, blps, 64, &k) == 0 && k == 2, "pack items %zu", k);
    CHECK(pids[0] == 65530 && blps[0] == 0x07ff && pids[1] == 40 && blps[1] == 0, "pack wrap");
    CHECK(cp_rtcp_nack_unpack(pids, blps, k, back, sizeof back / 2, &m) == 0 && m == n &&
              memcmp(back, seqs, n * 2) == 0,
          "unpack wrap");
    CHECK(cp_rtcp_nack_pack(seqs, n, pids, blps, 1, &k) == CP_RTCP_ERR_BUFFER, "pack cap");
    CHECK(cp_rtcp_nack_unpack(pids, blps, 2, back, 3, &m) == CP_RTCP_ERR_BUFFER, "unpack cap");
    /* every PID value with a full BLP */
    for (uint32_t pid = 0; pid < 65536; pid += 1) {
        for (int i = 0; i < 17; i++) seqs[i] = (uint16_t)(pid + i);
        if (cp_rtcp_nack_pack(seqs, 17, pids, blps, 64, &k) || k != 1 || blps[0] != 0xffff ||
            cp_rtcp_nack_unpack(pids, blps, 1, back, 64, &m) || m != 17 || memcmp(back, seqs, 34)) {
            CHECK(0, "full BLP at pid %u", pid);
            break;
        }
    }
}

static unsigned next(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* Random compounds of plausible packets (valid headers and lengths, sparse random bodies),
 * sometimes with one bit flipped: the parser must stay in bounds and accept a fair share. */
static void test_random(void) {
    unsigned seed = 12345;
    cp_rtcp_packet pk[64];
    cp_rtcp_sdes_item items[256];
    uint8_t buf[400];
    size_t n, ni, accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        unsigned npk = 1 + next(&seed) % 4;
        for (unsigned k = 0; k < npk; k++) {
            unsigned words = next(&seed) % 8;
            size_t size = 4 * (words + 1);
            if (len + size > sizeof buf) break;
            buf[len] = (uint8_t)(0x80 | (next(&seed) % 3));
            buf[len + 1] = (uint8_t)(200 + next(&seed) % 8);
            buf[len + 2] = 0;
            buf[len + 3] = (uint8_t)words;
            for (size_t i = 4; i < size; i++)
                buf[len + i] = (uint8_t)(next(&seed) % 3 == 0 ? next(&seed) % 8 : 0);
            len += size;
        }
        if (next(&seed) % 2 && len) buf[next(&seed) % len] ^= (uint8_t)(1u << (next(&seed) % 8));
        if (cp_rtcp_parse(buf, len, CP_RTCP_REDUCED_SIZE, pk, 64, &n, NULL) == 0) {
            accepted++;
            for (size_t i = 0; i < n; i++) {
                CHECK(pk[i].body + pk[i].body_len <= len && pk[i].ext + pk[i].ext_len <= len, "bounds");
                if (pk[i].kind == CP_RTCP_KIND_SDES)
                    CHECK(cp_rtcp_sdes_items(buf, &pk[i], items, 256, &ni) == 0, "sdes");
            }
        }
    }
    CHECK(accepted > 1000, "random compounds should often parse (%zu did)", accepted);
}

int main(void) {
    test_compound();
    test_writers();
    test_nack();
    test_random();
    return check_done("test_cp_rtcp");
}
