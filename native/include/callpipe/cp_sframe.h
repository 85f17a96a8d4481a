/* SFrame (RFC 9605) over OpenSSL 3 EVP: header codec, key/salt derivation, the five RFC cipher
 * suites (AES-CTR+HMAC compound AEAD with 80/64/32-bit tags, AES-128-GCM, AES-256-GCM) and a
 * per-KID key object that caches the derived key, salt and initialised EVP contexts so that one
 * frame costs about one AEAD call.
 *
 * Kept in cffi's parsable C subset (plain prototypes, enums for constants, no macros).
 * None of these functions touch global state; a cp_sframe_key is not thread-safe (callers
 * serialise use of one key; different keys may be used from different threads).
 */
#ifndef CALLPIPE_CP_SFRAME_H
#define CALLPIPE_CP_SFRAME_H

#include <stddef.h>
#include <stdint.h>

/* Cipher suite identifiers (IANA "SFrame Cipher Suites", RFC 9605 section 8.1). */
enum cp_sframe_suite_id {
    CP_SFRAME_AES_128_CTR_HMAC_SHA256_80 = 1,
    CP_SFRAME_AES_128_CTR_HMAC_SHA256_64 = 2,
    CP_SFRAME_AES_128_CTR_HMAC_SHA256_32 = 3,
    CP_SFRAME_AES_128_GCM_SHA256_128 = 4,
    CP_SFRAME_AES_256_GCM_SHA512_128 = 5
};

/* Return codes.  0 is success; every failure is a distinct positive code. */
enum cp_sframe_status {
    CP_SFRAME_OK = 0,
    CP_SFRAME_ERR_AUTH = 1,      /* tag did not verify */
    CP_SFRAME_ERR_HEADER = 2,    /* truncated or non-minimal header, or frame shorter than a tag */
    CP_SFRAME_ERR_SUITE = 3,     /* unknown cipher suite */
    CP_SFRAME_ERR_ARG = 4,       /* bad argument (NULL, too long, wrong key length, ...) */
    CP_SFRAME_ERR_BUFFER = 5,    /* output buffer too small */
    CP_SFRAME_ERR_NOMEM = 6,     /* allocation failed */
    CP_SFRAME_ERR_CRYPTO = 7,    /* an OpenSSL call failed (see its error queue) */
    CP_SFRAME_ERR_REPLAY = 8,    /* counter already accepted by this key's replay window */
    CP_SFRAME_ERR_TOO_OLD = 9,   /* counter below this key's replay window */
    CP_SFRAME_ERR_KID = 10,      /* header KID is not this key's KID */
    CP_SFRAME_ERR_DIRECTION = 11 /* encrypt on a decrypt-only key or the reverse */
};

enum cp_sframe_limits {
    CP_SFRAME_MAX_HEADER = 17,   /* bytes: config + 8 KID + 8 CTR */
    CP_SFRAME_NONCE_LEN = 12,    /* bytes (Nn of every suite) */
    CP_SFRAME_MAX_KEY = 48,      /* bytes (largest Nk) */
    CP_SFRAME_MAX_HASH = 64,     /* bytes (largest Nh) */
    CP_SFRAME_MAX_TAG = 16,      /* bytes (largest Nt) */
    CP_SFRAME_MAX_WINDOW = 65536 /* counters in a replay window */
};

enum cp_sframe_direction {
    CP_SFRAME_ENCRYPT = 1,
    CP_SFRAME_DECRYPT = 2
};

/* The RFC 9605 constants of one suite, all in bytes (nka = 0 for the GCM suites). */
typedef struct cp_sframe_suite_info {
    uint16_t id;
    size_t nh;
    size_t nka;
    size_t nk;
    size_t nn;
    size_t nt;
} cp_sframe_suite_info;

typedef struct cp_sframe_key cp_sframe_key;
typedef struct cp_sframe_aead cp_sframe_aead;

/* Fill *info for suite; CP_SFRAME_ERR_SUITE when unknown. */
int cp_sframe_suite(int suite, cp_sframe_suite_info *info);

/* Length in bytes of the header for (kid, ctr): 1..17. */
size_t cp_sframe_header_len(uint64_t kid, uint64_t ctr);

/* Write the header for (kid, ctr) to out (room for CP_SFRAME_MAX_HEADER bytes); returns its
 * length in bytes. */
size_t cp_sframe_encode_header(uint64_t kid, uint64_t ctr, uint8_t *out);

/* Parse the header at the start of data[0..len).  Rejects truncated headers and non-minimal
 * encodings (a value below 8 in extended form, or a leading zero byte) with CP_SFRAME_ERR_HEADER. */
int cp_sframe_decode_header(const uint8_t *data, size_t len, uint64_t *kid, uint64_t *ctr,
                            size_t *header_len);

/* RFC 9605 section 4.4.2.  secret_out (Nh bytes) may be NULL; key_out gets Nk bytes, salt_out
 * Nn bytes.  base_key may be empty (len 0). */
int cp_sframe_derive_key_salt(int suite, const uint8_t *base_key, size_t base_key_len,
                              uint64_t kid, uint8_t *secret_out, uint8_t *key_out,
                              uint8_t *salt_out);

/* The suite's AEAD on raw inputs (RFC 9605 section 4.5; Appendix C.2 checks these).
 * key is Nk bytes, nonce Nn bytes.  seal writes pt_len + Nt bytes to out; open reads
 * ct_len >= Nt bytes and writes ct_len - Nt bytes to out (nothing usable on failure). */
int cp_sframe_aead_seal(int suite, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                        size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out);
int cp_sframe_aead_open(int suite, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                        size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out);

/* The suite's AEAD with a key fixed at creation and cached EVP contexts (the "raw AEAD call"
 * that per-frame SFrame cost is compared with).  direction as for cp_sframe_key_new. */
cp_sframe_aead *cp_sframe_aead_new(int suite, int direction, const uint8_t *key, int *status);
void cp_sframe_aead_free(cp_sframe_aead *aead);
int cp_sframe_aead_ctx_seal(cp_sframe_aead *aead, const uint8_t *nonce, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out);
int cp_sframe_aead_ctx_open(cp_sframe_aead *aead, const uint8_t *nonce, const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out);

/* A derived key for one KID, for one direction.  window (decrypt keys only) is the replay
 * window in counters (0 disables replay checking, at most CP_SFRAME_MAX_WINDOW).
 * Returns NULL and sets *status on failure. */
cp_sframe_key *cp_sframe_key_new(int suite, int direction, const uint8_t *base_key,
                                 size_t base_key_len, uint64_t kid, uint32_t window,
                                 int *status);
/* Zeroises the key material and frees everything; NULL is accepted. */
void cp_sframe_key_free(cp_sframe_key *key);

/* Output size in bytes of encrypting pt_len bytes at ctr with this key. */
size_t cp_sframe_key_ciphertext_len(const cp_sframe_key *key, uint64_t ctr, size_t pt_len);

/* header(kid, ctr) || AEAD(key, salt ^ ctr, header || metadata, pt) into out. */
int cp_sframe_key_encrypt(cp_sframe_key *key, uint64_t ctr, const uint8_t *metadata,
                          size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                          size_t out_cap, size_t *out_len);

/* Parse, check the replay window, authenticate and decrypt one SFrame ciphertext.  The window
 * is updated only after the tag verified.  *ctr_out gets the header's CTR whenever the header
 * parsed.  out needs frame_len bytes at most. */
int cp_sframe_key_decrypt(cp_sframe_key *key, const uint8_t *frame, size_t frame_len,
                          const uint8_t *metadata, size_t metadata_len, uint8_t *out,
                          size_t out_cap, size_t *out_len, uint64_t *ctr_out);

#endif
