/* TCG constants and little-endian readers shared by the C core (internal).
 * The Python side names the same numbers in fastrim/algorithms.py,
 * fastrim/tcgdefs.py and fastrim/backend/contract.py. */
#ifndef FASTRIM_TCG_H
#define FASTRIM_TCG_H

#include <stdint.h>

#define ALG_SHA1 0x0004
#define ALG_SHA256 0x000B
#define ALG_SHA384 0x000C
#define ALG_SHA512 0x000D
#define ALG_SM3_256 0x0012

#define EV_NO_ACTION 0x3u
#define EV_EFI_HCRTM_EVENT 0x80000010u

#define MAX_PCR 23
#define PCR_COUNT (MAX_PCR + 1)
#define PCR_NONE 0xFFFFFFFFu
#define MAX_DIGEST 64           /* the largest digest in a log or a RIM field */
#define MEASUREMENT_SIZE 64     /* the RMM keeps every measurement in 64 bytes */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

#endif
