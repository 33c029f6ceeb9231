/* Multi-lane SHA-256 of whole 4 KiB granules with the x86 SHA extensions.
 *
 * A granule's content hash depends on nothing but its bytes, so several
 * granules can be hashed at once. sha256rnds2 has a latency of several
 * cycles but issues every cycle: one message stream waits on itself, while
 * interleaving independent streams ("lanes") keeps the unit busy.
 *
 * Written from FIPS 180-4 and Intel's description of the SHA extensions:
 * state is kept as the register pair (ABEF, CDGH) that sha256rnds2 works on,
 * the message schedule uses sha256msg1 / sha256msg2. Each lane's rounds are
 * issued step by step across all lanes, so the compiler interleaves them.
 *
 * Compiled with per-function target attributes, so the extension builds and
 * runs on any x86-64: fr_lanes_sha256_supported() tells at run time whether
 * the instructions exist; on other architectures it is always 0.
 */
#include <stdint.h>
#include <string.h>

#include "lanes.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H256[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* The last block of every 4096-byte message: 0x80, zeros, the bit length. */
static const uint8_t PAD_4096[64] = {
    0x80, [62] = 0x80, [63] = 0x00,
};

int fr_lanes_sha256_supported(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ssse3 && sse41 && ((b >> 29) & 1);
}

/* One 64-byte block for L lanes: state (ABEF, CDGH) per lane, blk[l] the
 * lane's 64 bytes. The loops over lanes have a constant trip count and are
 * unrolled, so the rounds of different lanes interleave and each lane's
 * sha256rnds2 hides the others' latency. (Computing the schedules first and
 * the rounds after was slower here: 1.1-1.2x hashlib against 1.47x.) */
#define DEFINE_BLOCK(L)                                                                           \
SHANI static inline void block_x##L(__m128i *abef, __m128i *cdgh, const uint8_t *const *blk)       \
{                                                                                                 \
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);           \
    __m128i m[L][4], save0[L], save1[L], msg[L];                                                  \
    for (int l = 0; l < L; l++) { save0[l] = abef[l]; save1[l] = cdgh[l]; }                       \
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {                                     \
        const __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * j]);                         \
        _Pragma("GCC unroll 4") for (int l = 0; l < L; l++) {                                    \
            if (j < 4)                                                                            \
                m[l][j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[l] + 16 * j)), bswap); \
            msg[l] = _mm_add_epi32(m[l][j & 3], k);                                               \
            cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], msg[l]);                            \
        }                                                                                         \
        if (j >= 3 && j <= 14) {  /* W[4j+4..4j+7] from sigma0'd older words and sigma1 */       \
            _Pragma("GCC unroll 4") for (int l = 0; l < L; l++) {                                \
                __m128i t = _mm_alignr_epi8(m[l][j & 3], m[l][(j + 3) & 3], 4);                   \
                m[l][(j + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[l][(j + 1) & 3], t), m[l][j & 3]); \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int l = 0; l < L; l++)                                      \
            abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(msg[l], 0x0E));   \
        if (j >= 1 && j <= 12) {                                                                  \
            _Pragma("GCC unroll 4") for (int l = 0; l < L; l++)                                  \
                m[l][(j + 3) & 3] = _mm_sha256msg1_epu32(m[l][(j + 3) & 3], m[l][j & 3]);         \
        }                                                                                         \
    }                                                                                             \
    for (int l = 0; l < L; l++) {                                                                 \
        abef[l] = _mm_add_epi32(abef[l], save0[l]);                                               \
        cdgh[l] = _mm_add_epi32(cdgh[l], save1[l]);                                               \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
SHANI static void granules_x##L(const uint8_t *const *src, uint8_t *out)                          \
{                                                                                                 \
    __m128i abef[L], cdgh[L];                                                                     \
    const __m128i h0 = _mm_loadu_si128((const __m128i *)&H256[0]);                               \
    const __m128i h1 = _mm_loadu_si128((const __m128i *)&H256[4]);                               \
    for (int l = 0; l < L; l++) {                                                                 \
        __m128i t = _mm_shuffle_epi32(h0, 0xB1);          /* CDAB */                              \
        __m128i s = _mm_shuffle_epi32(h1, 0x1B);          /* EFGH */                              \
        abef[l] = _mm_alignr_epi8(t, s, 8);               /* ABEF */                              \
        cdgh[l] = _mm_blend_epi16(s, t, 0xF0);            /* CDGH */                              \
    }                                                                                             \
    const uint8_t *blk[L];                                                                        \
    for (int b = 0; b < 64; b++) {                                                                \
        for (int l = 0; l < L; l++) {                                                             \
            blk[l] = src[l] + 64 * b;                                                             \
            _mm_prefetch((const char *)blk[l] + 512, _MM_HINT_T0);                                \
        }                                                                                         \
        block_x##L(abef, cdgh, blk);                                                              \
    }                                                                                             \
    for (int l = 0; l < L; l++) blk[l] = PAD_4096;                                                \
    block_x##L(abef, cdgh, blk);                                                                  \
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);           \
    for (int l = 0; l < L; l++) {                                                                 \
        __m128i t = _mm_shuffle_epi32(abef[l], 0x1B);     /* FEBA */                              \
        __m128i s = _mm_shuffle_epi32(cdgh[l], 0xB1);     /* DCHG */                              \
        __m128i dcba = _mm_blend_epi16(t, s, 0xF0);                                               \
        __m128i hgfe = _mm_alignr_epi8(s, t, 8);                                                  \
        _mm_storeu_si128((__m128i *)(out + 32 * l), _mm_shuffle_epi8(dcba, bswap));               \
        _mm_storeu_si128((__m128i *)(out + 32 * l + 16), _mm_shuffle_epi8(hgfe, bswap));          \
    }                                                                                             \
}

DEFINE_BLOCK(1)
DEFINE_BLOCK(2)
DEFINE_BLOCK(3)
DEFINE_BLOCK(4)

void fr_lanes_sha256_granules(const uint8_t *const *src, size_t n, uint8_t *out, int lanes)
{
    size_t i = 0;
    if (lanes >= 4)
        for (; i + 4 <= n; i += 4) granules_x4(src + i, out + 32 * i);
    if (lanes >= 3)
        for (; i + 3 <= n; i += 3) granules_x3(src + i, out + 32 * i);
    if (lanes >= 2)
        for (; i + 2 <= n; i += 2) granules_x2(src + i, out + 32 * i);
    for (; i < n; i++) granules_x1(src + i, out + 32 * i);
}

#else

int fr_lanes_sha256_supported(void) { return 0; }

void fr_lanes_sha256_granules(const uint8_t *const *src, size_t n, uint8_t *out, int lanes)
{
    (void)src; (void)n; (void)out; (void)lanes;
}

#endif
