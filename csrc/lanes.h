/* Multi-lane SHA-256, SHA-384 and SHA-512 of whole 4 KiB granules (csrc/lanes.c).
 * Internal to the C core: not part of the cffi interface. */
#ifndef FASTRIM_LANES_H
#define FASTRIM_LANES_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this CPU has the SHA extensions and AVX (for the VEX forms of the
 * SSE instructions the kernel uses), and the OS saves the AVX state. */
int fr_lanes_sha256_supported(void);

/* SHA-256 of n granules of 4096 bytes, src[i] each, into out (32 bytes
 * each), four at a time. */
void fr_lanes_sha256_granules(const uint8_t *const *src, size_t n, uint8_t *out);

/* SHA-256 of one 256-byte message (a RIM descriptor) with the SHA extensions. */
void fr_lanes_sha256_256(const uint8_t *msg, uint8_t *out);

/* 1 when this CPU (and OS) run AVX2, which the SHA-512 and SHA-384 kernels use. */
int fr_lanes_sha512_supported(void);

/* SHA-512 of n granules of 4096 bytes, src[i] each, into out (64 bytes
 * each), four at a time in the lanes of AVX2 registers. */
void fr_lanes_sha512_granules(const uint8_t *const *src, size_t n, uint8_t *out);

/* SHA-384 of n granules into out (48 bytes each), as SHA-512's. */
void fr_lanes_sha384_granules(const uint8_t *const *src, size_t n, uint8_t *out);

#endif
