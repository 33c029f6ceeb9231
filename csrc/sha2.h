/* SHA-2 constants shared by the lane kernels (internal to the C core). */
#ifndef FASTRIM_SHA2_H
#define FASTRIM_SHA2_H

#include <stdint.h>

extern const uint32_t FR_K256[64], FR_H256[8];
extern const uint64_t FR_K512[80], FR_H512[8], FR_H384[8]; /* SHA-384 is SHA-512 from FR_H384, cut to 48 bytes */
extern const uint8_t FR_PAD256_4096[64], FR_PAD512_4096[128];

#endif
