/* Hashing with OpenSSL's libcrypto (internal to the C core). Every call
 * reports libcrypto's failures: 0 on success, -1 otherwise. */
#ifndef FASTRIM_HASH_H
#define FASTRIM_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

typedef struct {
    uint16_t alg;
    union {
        SHA_CTX sha1;
        SHA256_CTX sha256;
        SHA512_CTX sha512;
    } u;
    EVP_MD_CTX *evp; /* algorithms without a low-level API (SM3) */
} fr_hash_ctx;

/* Any PCR bank algorithm: SHA-1, SHA-256, SHA-384, SHA-512, SM3. A failed
 * init frees what it took; after init, final must be called (it frees). */
int fr_hash_init(fr_hash_ctx *h, uint16_t alg);
int fr_hash_update(fr_hash_ctx *h, const void *p, size_t n);
int fr_hash_final(fr_hash_ctx *h, uint8_t *out);

/* The digest size of an algorithm fr_hash_init knows, 0 for any other. */
uint32_t fr_digest_size(uint16_t alg);

/* The digest size of a RIM algorithm (SHA-256, SHA-384, SHA-512), 0 for any other. */
uint32_t fr_rim_digest_size(uint16_t alg);

/* One message hashed with a RIM algorithm; 0, or -1 for another algorithm
 * or a libcrypto failure. */
int fr_rim_hash(uint16_t alg, const uint8_t *p, size_t n, uint8_t *out);

#endif
