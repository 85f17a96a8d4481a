/* SFrame (RFC 9605) over OpenSSL 3 EVP.  See callpipe/cp_sframe.h. */
#include "callpipe/cp_sframe.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* Largest plaintext, metadata or frame accepted, in bytes: EVP lengths are ints. */
static const size_t MAX_LEN = (size_t)1 << 30;

typedef struct suite_t {
    uint16_t id;
    const char *cipher; /* EVP cipher name */
    const char *digest; /* hash for HKDF (and HMAC in the CTR suites) */
    size_t nh, nka, nk, nn, nt;
    int gcm;
} suite_t;

static const suite_t SUITES[] = {
    {1, "AES-128-CTR", "SHA256", 32, 16, 48, 12, 10, 0},
    {2, "AES-128-CTR", "SHA256", 32, 16, 48, 12, 8, 0},
    {3, "AES-128-CTR", "SHA256", 32, 16, 48, 12, 4, 0},
    {4, "AES-128-GCM", "SHA256", 32, 0, 16, 12, 16, 1},
    {5, "AES-256-GCM", "SHA512", 64, 0, 32, 12, 16, 1},
};

static const suite_t *find_suite(int id) {
    if (id < 1 || id > 5) return NULL;
    return &SUITES[id - 1];
}

int cp_sframe_suite(int suite, cp_sframe_suite_info *info) {
    const suite_t *s = find_suite(suite);
    if (!s) return CP_SFRAME_ERR_SUITE;
    if (!info) return CP_SFRAME_ERR_ARG;
    info->id = s->id;
    info->nh = s->nh;
    info->nka = s->nka;
    info->nk = s->nk;
    info->nn = s->nn;
    info->nt = s->nt;
    return CP_SFRAME_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Header (section 4.3)                                                                     */

/* Minimal big-endian length in bytes of v (1..8). */
static size_t be_len(uint64_t v) {
    size_t n = 1;
    while (n < 8 && (v >> (8 * n)) != 0) n++;
    return n;
}

size_t cp_sframe_header_len(uint64_t kid, uint64_t ctr) {
    return 1 + (kid < 8 ? 0 : be_len(kid)) + (ctr < 8 ? 0 : be_len(ctr));
}

static void put_be(uint8_t *out, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

size_t cp_sframe_encode_header(uint64_t kid, uint64_t ctr, uint8_t *out) {
    uint8_t config = 0;
    size_t pos = 1;
    if (kid < 8) {
        config |= (uint8_t)(kid << 4);
    } else {
        size_t n = be_len(kid);
        config |= (uint8_t)(0x80 | ((n - 1) << 4));
        put_be(out + pos, kid, n);
        pos += n;
    }
    if (ctr < 8) {
        config |= (uint8_t)ctr;
    } else {
        size_t n = be_len(ctr);
        config |= (uint8_t)(0x08 | (n - 1));
        put_be(out + pos, ctr, n);
        pos += n;
    }
    out[0] = config;
    return pos;
}

/* Read an extended field of n bytes at data[*pos]; rejects non-minimal encodings. */
static int read_field(const uint8_t *data, size_t len, size_t *pos, size_t n, uint64_t *v) {
    if (len - *pos < n) return CP_SFRAME_ERR_HEADER;
    const uint8_t *p = data + *pos;
    if (n > 1 && p[0] == 0) return CP_SFRAME_ERR_HEADER; /* leading zero byte */
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x = (x << 8) | p[i];
    if (x < 8) return CP_SFRAME_ERR_HEADER; /* belongs in the config byte */
    *pos += n;
    *v = x;
    return CP_SFRAME_OK;
}

int cp_sframe_decode_header(const uint8_t *data, size_t len, uint64_t *kid, uint64_t *ctr,
                            size_t *header_len) {
    if (!data || !kid || !ctr || !header_len) return CP_SFRAME_ERR_ARG;
    if (len < 1) return CP_SFRAME_ERR_HEADER;
    uint8_t config = data[0];
    size_t pos = 1;
    uint64_t k, c;
    int rc;
    if (config & 0x80) {
        rc = read_field(data, len, &pos, (size_t)((config >> 4) & 7) + 1, &k);
        if (rc) return rc;
    } else {
        k = (config >> 4) & 7;
    }
    if (config & 0x08) {
        rc = read_field(data, len, &pos, (size_t)(config & 7) + 1, &c);
        if (rc) return rc;
    } else {
        c = config & 7;
    }
    *kid = k;
    *ctr = c;
    *header_len = pos;
    return CP_SFRAME_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* HKDF over HMAC (RFC 5869), section 4.4.2                                                 */

/* HMAC(key, part0 || part1 || part2) with the named digest; out gets the full MAC. */
static int hmac3(const char *digest, const uint8_t *key, size_t key_len, const uint8_t *p0,
                 size_t l0, const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2,
                 uint8_t *out, size_t out_cap) {
    int rc = CP_SFRAME_ERR_CRYPTO;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    size_t n = 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!ctx) goto done;
    if (!EVP_MAC_init(ctx, key, key_len, params)) goto done;
    if (l0 && !EVP_MAC_update(ctx, p0, l0)) goto done;
    if (l1 && !EVP_MAC_update(ctx, p1, l1)) goto done;
    if (l2 && !EVP_MAC_update(ctx, p2, l2)) goto done;
    if (!EVP_MAC_final(ctx, out, &n, out_cap)) goto done;
    rc = CP_SFRAME_OK;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

static int hkdf_expand(const suite_t *s, const uint8_t *prk, const uint8_t *info,
                       size_t info_len, uint8_t *out, size_t out_len) {
    uint8_t t[CP_SFRAME_MAX_HASH];
    size_t t_len = 0, done = 0;
    uint8_t counter = 1;
    int rc = CP_SFRAME_OK;
    while (done < out_len) {
        rc = hmac3(s->digest, prk, s->nh, t, t_len, info, info_len, &counter, 1, t, sizeof t);
        if (rc) break;
        t_len = s->nh;
        size_t take = out_len - done < t_len ? out_len - done : t_len;
        memcpy(out + done, t, take);
        done += take;
        counter++;
    }
    OPENSSL_cleanse(t, sizeof t);
    return rc;
}

int cp_sframe_derive_key_salt(int suite, const uint8_t *base_key, size_t base_key_len,
                              uint64_t kid, uint8_t *secret_out, uint8_t *key_out,
                              uint8_t *salt_out) {
    static const char KEY_LABEL[] = "SFrame 1.0 Secret key ";
    static const char SALT_LABEL[] = "SFrame 1.0 Secret salt ";
    const suite_t *s = find_suite(suite);
    if (!s) return CP_SFRAME_ERR_SUITE;
    if ((!base_key && base_key_len) || !key_out || !salt_out || base_key_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    /* HKDF-Extract with an empty salt: HMAC keyed with Nh zero bytes (RFC 5869 2.2). */
    uint8_t zeros[CP_SFRAME_MAX_HASH] = {0};
    uint8_t prk[CP_SFRAME_MAX_HASH];
    uint8_t label[sizeof SALT_LABEL - 1 + 10];
    int rc = hmac3(s->digest, zeros, s->nh, base_key, base_key_len, NULL, 0, NULL, 0, prk,
                   sizeof prk);
    if (rc) goto done;
    size_t kl = sizeof KEY_LABEL - 1, sl = sizeof SALT_LABEL - 1;
    memcpy(label, KEY_LABEL, kl);
    put_be(label + kl, kid, 8);
    put_be(label + kl + 8, s->id, 2);
    rc = hkdf_expand(s, prk, label, kl + 10, key_out, s->nk);
    if (rc) goto done;
    memcpy(label, SALT_LABEL, sl);
    put_be(label + sl, kid, 8);
    put_be(label + sl + 8, s->id, 2);
    rc = hkdf_expand(s, prk, label, sl + 10, salt_out, s->nn);
    if (rc) goto done;
    if (secret_out) memcpy(secret_out, prk, s->nh);
done:
    OPENSSL_cleanse(prk, sizeof prk);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* AEAD with cached contexts (section 4.5)                                                  */

typedef struct aead_t {
    const suite_t *s;
    EVP_CIPHER_CTX *cctx; /* keyed; the IV is set per frame */
    EVP_MAC_CTX *mctx;    /* CTR suites: HMAC keyed with auth_key, re-initialised per frame */
} aead_t;

static void aead_free(aead_t *a) {
    EVP_CIPHER_CTX_free(a->cctx); /* cleanses its key schedule */
    EVP_MAC_CTX_free(a->mctx);
    a->cctx = NULL;
    a->mctx = NULL;
}

/* enc: 1 encrypt, 0 decrypt (only matters for GCM). */
static int aead_init(aead_t *a, const suite_t *s, const uint8_t *key, int enc) {
    int rc = CP_SFRAME_ERR_CRYPTO;
    EVP_CIPHER *cipher = NULL;
    EVP_MAC *mac = NULL;
    a->s = s;
    a->mctx = NULL;
    a->cctx = EVP_CIPHER_CTX_new();
    if (!a->cctx) {
        rc = CP_SFRAME_ERR_NOMEM;
        goto fail;
    }
    cipher = EVP_CIPHER_fetch(NULL, s->cipher, NULL);
    if (!cipher) goto fail;
    if (!EVP_CipherInit_ex(a->cctx, cipher, NULL, key, NULL, s->gcm ? enc : 1)) goto fail;
    if (!s->gcm) {
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)s->digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!mac) goto fail;
        a->mctx = EVP_MAC_CTX_new(mac);
        if (!a->mctx) goto fail;
        if (!EVP_MAC_init(a->mctx, key + s->nka, s->nh, params)) goto fail;
    }
    EVP_CIPHER_free(cipher);
    EVP_MAC_free(mac);
    return CP_SFRAME_OK;
fail:
    EVP_CIPHER_free(cipher);
    EVP_MAC_free(mac);
    aead_free(a);
    return rc;
}

static int cipher_update(EVP_CIPHER_CTX *c, uint8_t *out, const uint8_t *in, size_t len) {
    int outl = 0;
    if (len == 0) return 1;
    return EVP_CipherUpdate(c, out, &outl, in, (int)len) && (size_t)outl == len;
}

static int aad_update(EVP_CIPHER_CTX *c, const uint8_t *in, size_t len) {
    int outl = 0;
    if (len == 0) return 1;
    return EVP_CipherUpdate(c, NULL, &outl, in, (int)len);
}

/* The compound tag of section 4.5.1 over aad = a1 || a2; full HMAC into tag. */
static int ctr_tag(aead_t *a, const uint8_t *nonce, const uint8_t *a1, size_t l1,
                   const uint8_t *a2, size_t l2, const uint8_t *ct, size_t ct_len,
                   uint8_t *tag) {
    uint8_t lens[24];
    size_t n = 0;
    put_be(lens, (uint64_t)(l1 + l2), 8);
    put_be(lens + 8, (uint64_t)ct_len, 8);
    put_be(lens + 16, (uint64_t)a->s->nt, 8);
    if (!EVP_MAC_init(a->mctx, NULL, 0, NULL)) return 0; /* same key, fresh state */
    if (!EVP_MAC_update(a->mctx, lens, sizeof lens)) return 0;
    if (!EVP_MAC_update(a->mctx, nonce, a->s->nn)) return 0;
    if (l1 && !EVP_MAC_update(a->mctx, a1, l1)) return 0;
    if (l2 && !EVP_MAC_update(a->mctx, a2, l2)) return 0;
    if (ct_len && !EVP_MAC_update(a->mctx, ct, ct_len)) return 0;
    return EVP_MAC_final(a->mctx, tag, &n, CP_SFRAME_MAX_HASH) && n == a->s->nh;
}

static int ctr_iv(aead_t *a, const uint8_t *nonce) {
    uint8_t iv[16] = {0}; /* nonce || 00000000: the block counter starts at 0 */
    memcpy(iv, nonce, 12);
    return EVP_CipherInit_ex(a->cctx, NULL, NULL, NULL, iv, -1);
}

/* out = ct || tag (pt_len + Nt bytes). */
static int aead_seal(aead_t *a, const uint8_t *nonce, const uint8_t *a1, size_t l1,
                     const uint8_t *a2, size_t l2, const uint8_t *pt, size_t pt_len,
                     uint8_t *out) {
    const suite_t *s = a->s;
    if (s->gcm) {
        int outl = 0;
        if (!EVP_CipherInit_ex(a->cctx, NULL, NULL, NULL, nonce, -1)) return CP_SFRAME_ERR_CRYPTO;
        if (!aad_update(a->cctx, a1, l1) || !aad_update(a->cctx, a2, l2))
            return CP_SFRAME_ERR_CRYPTO;
        if (!cipher_update(a->cctx, out, pt, pt_len)) return CP_SFRAME_ERR_CRYPTO;
        if (!EVP_CipherFinal_ex(a->cctx, out + pt_len, &outl) || outl != 0)
            return CP_SFRAME_ERR_CRYPTO;
        if (!EVP_CIPHER_CTX_ctrl(a->cctx, EVP_CTRL_AEAD_GET_TAG, (int)s->nt, out + pt_len))
            return CP_SFRAME_ERR_CRYPTO;
        return CP_SFRAME_OK;
    }
    uint8_t tag[CP_SFRAME_MAX_HASH];
    if (!ctr_iv(a, nonce) || !cipher_update(a->cctx, out, pt, pt_len))
        return CP_SFRAME_ERR_CRYPTO;
    if (!ctr_tag(a, nonce, a1, l1, a2, l2, out, pt_len, tag)) return CP_SFRAME_ERR_CRYPTO;
    memcpy(out + pt_len, tag, s->nt);
    return CP_SFRAME_OK;
}

/* ct_len includes the Nt-byte tag; out gets ct_len - Nt bytes (garbage on failure). */
static int aead_open(aead_t *a, const uint8_t *nonce, const uint8_t *a1, size_t l1,
                     const uint8_t *a2, size_t l2, const uint8_t *ct, size_t ct_len,
                     uint8_t *out) {
    const suite_t *s = a->s;
    if (ct_len < s->nt) return CP_SFRAME_ERR_HEADER;
    size_t n = ct_len - s->nt;
    const uint8_t *tag = ct + n;
    if (s->gcm) {
        int outl = 0;
        if (!EVP_CipherInit_ex(a->cctx, NULL, NULL, NULL, nonce, -1)) return CP_SFRAME_ERR_CRYPTO;
        if (!aad_update(a->cctx, a1, l1) || !aad_update(a->cctx, a2, l2))
            return CP_SFRAME_ERR_CRYPTO;
        if (!cipher_update(a->cctx, out, ct, n)) return CP_SFRAME_ERR_CRYPTO;
        if (!EVP_CIPHER_CTX_ctrl(a->cctx, EVP_CTRL_AEAD_SET_TAG, (int)s->nt, (void *)tag))
            return CP_SFRAME_ERR_CRYPTO;
        /* OpenSSL compares the tag in constant time. */
        if (EVP_CipherFinal_ex(a->cctx, out + n, &outl) <= 0) return CP_SFRAME_ERR_AUTH;
        return CP_SFRAME_OK;
    }
    uint8_t expect[CP_SFRAME_MAX_HASH];
    if (!ctr_tag(a, nonce, a1, l1, a2, l2, ct, n, expect)) return CP_SFRAME_ERR_CRYPTO;
    /* Verify before decrypting (section 4.5.1), in constant time. */
    int bad = CRYPTO_memcmp(expect, tag, s->nt);
    OPENSSL_cleanse(expect, sizeof expect);
    if (bad) return CP_SFRAME_ERR_AUTH;
    if (!ctr_iv(a, nonce) || !cipher_update(a->cctx, out, ct, n)) return CP_SFRAME_ERR_CRYPTO;
    return CP_SFRAME_OK;
}

int cp_sframe_aead_seal(int suite, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                        size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out) {
    const suite_t *s = find_suite(suite);
    aead_t a;
    if (!s) return CP_SFRAME_ERR_SUITE;
    if (!key || !nonce || !out || (!aad && aad_len) || (!pt && pt_len) || aad_len > MAX_LEN ||
        pt_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    int rc = aead_init(&a, s, key, 1);
    if (rc) return rc;
    rc = aead_seal(&a, nonce, aad, aad_len, NULL, 0, pt, pt_len, out);
    aead_free(&a);
    return rc;
}

int cp_sframe_aead_open(int suite, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                        size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out) {
    const suite_t *s = find_suite(suite);
    aead_t a;
    if (!s) return CP_SFRAME_ERR_SUITE;
    if (!key || !nonce || !out || (!aad && aad_len) || (!ct && ct_len) || aad_len > MAX_LEN ||
        ct_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    int rc = aead_init(&a, s, key, 0);
    if (rc) return rc;
    rc = aead_open(&a, nonce, aad, aad_len, NULL, 0, ct, ct_len, out);
    aead_free(&a);
    return rc;
}

struct cp_sframe_aead {
    aead_t a;
    int direction;
};

cp_sframe_aead *cp_sframe_aead_new(int suite, int direction, const uint8_t *key, int *status) {
    const suite_t *s = find_suite(suite);
    int st = CP_SFRAME_OK;
    cp_sframe_aead *r = NULL;
    if (!s) {
        st = CP_SFRAME_ERR_SUITE;
    } else if (!key || (direction != CP_SFRAME_ENCRYPT && direction != CP_SFRAME_DECRYPT)) {
        st = CP_SFRAME_ERR_ARG;
    } else if (!(r = calloc(1, sizeof *r))) {
        st = CP_SFRAME_ERR_NOMEM;
    } else {
        r->direction = direction;
        st = aead_init(&r->a, s, key, direction == CP_SFRAME_ENCRYPT);
        if (st) {
            free(r);
            r = NULL;
        }
    }
    if (status) *status = st;
    return r;
}

void cp_sframe_aead_free(cp_sframe_aead *r) {
    if (!r) return;
    aead_free(&r->a);
    free(r);
}

int cp_sframe_aead_ctx_seal(cp_sframe_aead *r, const uint8_t *nonce, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out) {
    if (!r || !nonce || !out || (!aad && aad_len) || (!pt && pt_len) || aad_len > MAX_LEN ||
        pt_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    if (r->direction != CP_SFRAME_ENCRYPT) return CP_SFRAME_ERR_DIRECTION;
    return aead_seal(&r->a, nonce, aad, aad_len, NULL, 0, pt, pt_len, out);
}

int cp_sframe_aead_ctx_open(cp_sframe_aead *r, const uint8_t *nonce, const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out) {
    uint8_t dummy[1];
    if (!r || !nonce || (!aad && aad_len) || (!ct && ct_len) || aad_len > MAX_LEN ||
        ct_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    if (r->direction != CP_SFRAME_DECRYPT) return CP_SFRAME_ERR_DIRECTION;
    if (ct_len < r->a.s->nt) return CP_SFRAME_ERR_HEADER;
    if (ct_len > r->a.s->nt && !out) return CP_SFRAME_ERR_ARG;
    return aead_open(&r->a, nonce, aad, aad_len, NULL, 0, ct, ct_len, out ? out : dummy);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-KID key with a replay window (RFC 3711 section 3.3.2 style)                          */

struct cp_sframe_key {
    const suite_t *s;
    int direction;
    uint64_t kid;
    uint8_t salt[CP_SFRAME_NONCE_LEN];
    aead_t aead;
    /* Replay window: bit (ctr % (64 * words)) of bitmap, for ctr in (highest - window, highest]. */
    uint32_t window;
    size_t words;
    uint64_t *bitmap;
    uint64_t highest;
    int seen_any;
};

cp_sframe_key *cp_sframe_key_new(int suite, int direction, const uint8_t *base_key,
                                 size_t base_key_len, uint64_t kid, uint32_t window,
                                 int *status) {
    int st = CP_SFRAME_OK;
    const suite_t *s = find_suite(suite);
    uint8_t key[CP_SFRAME_MAX_KEY];
    cp_sframe_key *k = NULL;
    if (!s) {
        st = CP_SFRAME_ERR_SUITE;
        goto out;
    }
    if ((direction != CP_SFRAME_ENCRYPT && direction != CP_SFRAME_DECRYPT) ||
        window > CP_SFRAME_MAX_WINDOW) {
        st = CP_SFRAME_ERR_ARG;
        goto out;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        st = CP_SFRAME_ERR_NOMEM;
        goto out;
    }
    k->s = s;
    k->direction = direction;
    k->kid = kid;
    if (direction == CP_SFRAME_DECRYPT && window > 0) {
        k->window = window;
        k->words = (window + 63) / 64 + 1;
        k->bitmap = calloc(k->words, sizeof *k->bitmap);
        if (!k->bitmap) {
            st = CP_SFRAME_ERR_NOMEM;
            goto out;
        }
    }
    st = cp_sframe_derive_key_salt(suite, base_key, base_key_len, kid, NULL, key, k->salt);
    if (st) goto out;
    st = aead_init(&k->aead, s, key, direction == CP_SFRAME_ENCRYPT);
out:
    OPENSSL_cleanse(key, sizeof key);
    if (st && k) {
        OPENSSL_cleanse(k->salt, sizeof k->salt);
        free(k->bitmap);
        free(k);
        k = NULL;
    }
    if (status) *status = st;
    return k;
}

void cp_sframe_key_free(cp_sframe_key *k) {
    if (!k) return;
    aead_free(&k->aead);
    free(k->bitmap);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

size_t cp_sframe_key_ciphertext_len(const cp_sframe_key *k, uint64_t ctr, size_t pt_len) {
    return cp_sframe_header_len(k->kid, ctr) + pt_len + k->s->nt;
}

static void make_nonce(const cp_sframe_key *k, uint64_t ctr, uint8_t *nonce) {
    memcpy(nonce, k->salt, CP_SFRAME_NONCE_LEN);
    for (size_t i = 0; i < 8; i++) nonce[CP_SFRAME_NONCE_LEN - 1 - i] ^= (uint8_t)(ctr >> (8 * i));
}

int cp_sframe_key_encrypt(cp_sframe_key *k, uint64_t ctr, const uint8_t *metadata,
                          size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
    uint8_t nonce[CP_SFRAME_NONCE_LEN];
    if (!k || !out || !out_len || (!metadata && metadata_len) || (!pt && pt_len) ||
        metadata_len > MAX_LEN || pt_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    if (k->direction != CP_SFRAME_ENCRYPT) return CP_SFRAME_ERR_DIRECTION;
    size_t total = cp_sframe_key_ciphertext_len(k, ctr, pt_len);
    if (out_cap < total) return CP_SFRAME_ERR_BUFFER;
    size_t hlen = cp_sframe_encode_header(k->kid, ctr, out);
    make_nonce(k, ctr, nonce);
    int rc = aead_seal(&k->aead, nonce, out, hlen, metadata, metadata_len, pt, pt_len, out + hlen);
    *out_len = rc ? 0 : total;
    return rc;
}

/* 0 if ctr may be accepted, else CP_SFRAME_ERR_REPLAY / CP_SFRAME_ERR_TOO_OLD.  No side effects. */
static int window_check(const cp_sframe_key *k, uint64_t ctr) {
    if (!k->window || !k->seen_any || ctr > k->highest) return CP_SFRAME_OK;
    if (k->highest - ctr >= k->window) return CP_SFRAME_ERR_TOO_OLD;
    uint64_t bit = ctr % (64 * (uint64_t)k->words);
    if (k->bitmap[bit / 64] & ((uint64_t)1 << (bit % 64))) return CP_SFRAME_ERR_REPLAY;
    return CP_SFRAME_OK;
}

/* Record an authenticated ctr (after window_check passed). */
static void window_update(cp_sframe_key *k, uint64_t ctr) {
    if (!k->window) return;
    uint64_t nbits = 64 * (uint64_t)k->words;
    if (!k->seen_any) {
        k->seen_any = 1;
        k->highest = ctr;
    } else if (ctr > k->highest) {
        /* Clear the words the window slides over, between the old and the new top word. */
        uint64_t old_word = k->highest / 64, new_word = ctr / 64;
        uint64_t steps = new_word - old_word;
        if (steps > k->words) steps = k->words;
        for (uint64_t i = 1; i <= steps; i++) k->bitmap[(old_word + i) % k->words] = 0;
        k->highest = ctr;
    }
    uint64_t bit = ctr % nbits;
    k->bitmap[bit / 64] |= (uint64_t)1 << (bit % 64);
}

int cp_sframe_key_decrypt(cp_sframe_key *k, const uint8_t *frame, size_t frame_len,
                          const uint8_t *metadata, size_t metadata_len, uint8_t *out,
                          size_t out_cap, size_t *out_len, uint64_t *ctr_out) {
    uint64_t kid, ctr;
    size_t hlen;
    uint8_t nonce[CP_SFRAME_NONCE_LEN];
    if (!k || !frame || !out_len || (!metadata && metadata_len) || (!out && out_cap) ||
        metadata_len > MAX_LEN || frame_len > MAX_LEN)
        return CP_SFRAME_ERR_ARG;
    *out_len = 0;
    if (k->direction != CP_SFRAME_DECRYPT) return CP_SFRAME_ERR_DIRECTION;
    int rc = cp_sframe_decode_header(frame, frame_len, &kid, &ctr, &hlen);
    if (rc) return rc;
    if (ctr_out) *ctr_out = ctr;
    if (kid != k->kid) return CP_SFRAME_ERR_KID;
    if (frame_len - hlen < k->s->nt) return CP_SFRAME_ERR_HEADER;
    size_t n = frame_len - hlen - k->s->nt;
    if (out_cap < n) return CP_SFRAME_ERR_BUFFER;
    rc = window_check(k, ctr);
    if (rc) return rc;
    make_nonce(k, ctr, nonce);
    /* A zero-length plaintext still needs a valid pointer for the cipher. */
    uint8_t dummy[1];
    rc = aead_open(&k->aead, nonce, frame, hlen, metadata, metadata_len, frame + hlen,
                   frame_len - hlen, n ? out : dummy);
    if (rc) {
        if (n) OPENSSL_cleanse(out, n); /* never hand out unauthenticated plaintext */
        return rc;
    }
    window_update(k, ctr);
    *out_len = n;
    return CP_SFRAME_OK;
}
