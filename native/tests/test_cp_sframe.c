/* cp_sframe under the sanitizers: RFC 9605 C.3 (suite 4) known answer, round trips on every
 * suite, tamper/replay/direction errors, truncations, every header config byte, no leaks. */
#include "callpipe/cp_sframe.h"
#include "check.h"
#include <string.h>

static size_t tag_len(int suite) { return suite == 1 ? 10 : suite == 2 ? 8 : suite == 3 ? 4 : 16; }

static void hex(const char *s, uint8_t *out, size_t *n) {
    *n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[(*n)++] = (uint8_t)v;
    }
}

int main(void) {
    uint8_t base[16], md[14], pt[3000], out[4000], back[4000], key[48], salt[12], sec[64], hdr[17];
    for (int i = 0; i < 16; i++) base[i] = (uint8_t)i;
    memcpy(md, "IETF SFrame WG", 14);
    for (int i = 0; i < 3000; i++) pt[i] = (uint8_t)(i * 7);
    size_t n = 0, m = 0, hl = 0;
    uint64_t kid = 0, ctr = 0;
    int st = 0;

    /* RFC 9605 Appendix C.3, AES_128_GCM_SHA256_128: kid 0x123, ctr 0x4567 */
    uint8_t want[64];
    size_t want_len;
    hex("9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb", want, &want_len);
    const char *text = "draft-ietf-sframe-enc";
    cp_sframe_key *kat = cp_sframe_key_new(4, CP_SFRAME_ENCRYPT, base, 16, 0x123, 0, &st);
    CHECK(kat != NULL, "key_new status %d", st);
    CHECK(cp_sframe_key_encrypt(kat, 0x4567, md, 14, (const uint8_t *)text, strlen(text), out, sizeof out, &n) == 0,
          "KAT encrypt");
    CHECK(n == want_len && memcmp(out, want, n) == 0, "RFC 9605 C.3 suite 4 ciphertext differs");
    cp_sframe_key_free(kat);

    for (int round = 0; round < 3; round++) {
        for (int s = 1; s <= 5; s++) {
            CHECK(cp_sframe_derive_key_salt(s, base, 16, 0x123, sec, key, salt) == 0, "derive suite %d", s);
            cp_sframe_key *e = cp_sframe_key_new(s, CP_SFRAME_ENCRYPT, base, 16, 0x123, 0, &st);
            cp_sframe_key *d = cp_sframe_key_new(s, CP_SFRAME_DECRYPT, base, 16, 0x123, 128, &st);
            CHECK(e && d, "keys for suite %d", s);
            if (!e || !d) continue;
            for (uint64_t c = 0; c < 50; c++) {
                size_t len = (size_t)(c * 61) % 3000;
                CHECK(cp_sframe_key_encrypt(e, c * 3, md, 14, pt, len, out, sizeof out, &n) == 0, "encrypt");
                out[n - 1] ^= 1;
                CHECK(cp_sframe_key_decrypt(d, out, n, md, 14, back, sizeof back, &m, &ctr) == CP_SFRAME_ERR_AUTH,
                      "flipped tag must fail");
                out[n - 1] ^= 1;
                md[0] ^= 1;
                CHECK(cp_sframe_key_decrypt(d, out, n, md, 14, back, sizeof back, &m, &ctr) == CP_SFRAME_ERR_AUTH,
                      "changed metadata must fail");
                md[0] ^= 1;
                CHECK(cp_sframe_key_decrypt(d, out, n, md, 14, back, sizeof back, &m, &ctr) == 0, "decrypt");
                CHECK(m == len && memcmp(back, pt, len) == 0 && ctr == c * 3, "round trip");
                CHECK(cp_sframe_key_decrypt(d, out, n, md, 14, back, sizeof back, &m, &ctr) == CP_SFRAME_ERR_REPLAY,
                      "replay must fail");
                for (size_t t = 0; t < n; t += 7)
                    CHECK(cp_sframe_key_decrypt(d, out, t, md, 14, back, sizeof back, &m, &ctr) != 0,
                          "truncated to %zu bytes must fail", t);
            }
            CHECK(cp_sframe_key_encrypt(d, 0, md, 14, pt, 10, out, sizeof out, &n) == CP_SFRAME_ERR_DIRECTION,
                  "decrypt-only key refuses to encrypt");
            cp_sframe_key_free(e);
            cp_sframe_key_free(d);
            size_t ct_len = 100 + tag_len(s);
            CHECK(cp_sframe_aead_seal(s, key, salt, md, 14, pt, 100, out) == 0, "seal");
            CHECK(cp_sframe_aead_open(s, key, salt, md, 14, out, ct_len, back) == 0, "open");
            out[0] ^= 1;
            CHECK(cp_sframe_aead_open(s, key, salt, md, 14, out, ct_len, back) == CP_SFRAME_ERR_AUTH, "tamper");
        }
        for (int s = 1; s <= 5; s++) {
            cp_sframe_derive_key_salt(s, base, 16, 7, NULL, key, salt);
            cp_sframe_aead *ae = cp_sframe_aead_new(s, CP_SFRAME_ENCRYPT, key, &st);
            cp_sframe_aead *ad = cp_sframe_aead_new(s, CP_SFRAME_DECRYPT, key, &st);
            size_t nt = tag_len(s);
            for (size_t len = 0; len < 2000; len += 333) {
                CHECK(cp_sframe_aead_ctx_seal(ae, salt, md, 14, pt, len, out) == 0, "ctx seal");
                CHECK(cp_sframe_aead_ctx_open(ad, salt, md, 14, out, len + nt, back) == 0, "ctx open");
                CHECK(memcmp(back, pt, len) == 0, "ctx round trip");
                out[len] ^= 1;
                CHECK(cp_sframe_aead_ctx_open(ad, salt, md, 14, out, len + nt, back) == CP_SFRAME_ERR_AUTH, "ctx tamper");
                CHECK(cp_sframe_aead_ctx_open(ad, salt, md, 14, out, nt - 1, back) == CP_SFRAME_ERR_HEADER,
                      "shorter than a tag");
            }
            CHECK(cp_sframe_aead_ctx_seal(ad, salt, md, 14, pt, 5, out) == CP_SFRAME_ERR_DIRECTION, "direction");
            cp_sframe_aead_free(ae);
            cp_sframe_aead_free(ad);
        }
        cp_sframe_aead_free(NULL);
        cp_sframe_key_free(NULL);
        CHECK(cp_sframe_key_new(9, CP_SFRAME_ENCRYPT, base, 16, 1, 0, &st) == NULL && st == CP_SFRAME_ERR_SUITE,
              "unknown suite");
        CHECK(cp_sframe_key_new(4, 7, base, 16, 1, 0, &st) == NULL && st == CP_SFRAME_ERR_ARG, "bad direction");
        /* every config byte, every length: a header either parses and re-encodes to the same
         * bytes, or is refused */
        for (int b = 0; b < 256; b++) {
            hdr[0] = (uint8_t)b;
            memset(hdr + 1, 0x5a, 16);
            for (size_t l = 0; l <= 17; l++) {
                if (cp_sframe_decode_header(hdr, l, &kid, &ctr, &hl) == 0) {
                    uint8_t again[17];
                    size_t k = cp_sframe_encode_header(kid, ctr, again);
                    CHECK(k == hl && hl <= l && memcmp(again, hdr, hl) == 0, "header %02x/%zu re-encodes", b, l);
                }
            }
        }
    }
    return check_done("test_cp_sframe");
}
