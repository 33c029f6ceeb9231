/* Granule hashing kernels that hash several whole 4 KiB granules at once,
 * one per lane (lanes_shani.c, lanes_avx2.c, lanes_avx512.c). Internal to
 * the C core: kernels.c calls them, on x86 only, and only where cpuid says
 * the instructions exist and the kernel's self-test passed.
 *
 * Each takes exactly as many granules as it has lanes (src[i], 4096 bytes
 * each) and writes their digests to out, one after another. */
#ifndef FASTRIM_LANES_H
#define FASTRIM_LANES_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256, four lanes, with the SHA extensions; and one 256-byte message
 * (a RIM descriptor) the same way. */
void fr_shani_sha256_x4(const uint8_t *const *src, uint8_t *out);
void fr_shani_sha256_256(const uint8_t *msg, uint8_t *out);

/* SHA-256 in eight lanes of AVX2; SHA-512 from iv (FR_H512, or FR_H384 for
 * SHA-384) in four, keeping dlen bytes of each digest (64, or 48). */
void fr_avx2_sha256_x8(const uint8_t *const *src, uint8_t *out);
void fr_avx2_sha512_x4(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out);

/* The same in sixteen and eight lanes of AVX-512 (F and BW). */
void fr_avx512_sha256_x16(const uint8_t *const *src, uint8_t *out);
void fr_avx512_sha512_x8(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out);

#endif
