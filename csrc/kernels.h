/* The selected granule hashing kernel, for rim.c (internal to the C core;
 * the cffi interface to the kernels is in fastrim.h). */
#ifndef FASTRIM_KERNELS_H
#define FASTRIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* n granules (src[i], 4096 bytes each) hashed with alg's selected kernel
 * into out (digest after digest); 0, or -1 when libcrypto failed. */
int fr_kernels_hash(uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out);

/* 1 when the SHA-256 descriptor chain runs on the SHA extensions (the CPU
 * has them, they passed their self-test, and OpenSSL was not forced). */
int fr_kernels_chain_sha_ni(void);

/* SHA-256 of one 256-byte descriptor on the SHA extensions. */
void fr_kernels_sha256_256(const uint8_t *msg, uint8_t *out);

#endif
