/* SHA-256 of four 4 KiB granules at once with the x86 SHA extensions, and
 * of one 256-byte RIM descriptor.
 *
 * A granule's content hash depends on nothing but its bytes, so several
 * granules can be hashed at once. sha256rnds2 has a latency of 4 cycles but
 * issues every cycle on Zen 3 (measured): one message stream waits on
 * itself, while interleaving independent streams ("lanes") keeps it busy.
 *
 * Written from FIPS 180-4 and Intel's description of the SHA extensions:
 * state is kept as the register pair (ABEF, CDGH) that sha256rnds2 works on,
 * the message schedule uses sha256msg1 / sha256msg2. Per-function target
 * attributes: it builds on any x86-64, and kernels.c calls it only where
 * cpuid says the instructions exist (and its self-test passed).
 */
#include <stdint.h>

#include "lanes.h"
#include "sha2.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* AVX for the VEX (three-operand) forms of the SSE instructions around the
 * SHA ones: without the register copies that the two-operand forms need,
 * the four-lane kernel ran at 93-96 ms per 256 MiB instead of 86-87. */
#define SHANI __attribute__((target("sha,avx")))

static const __m128i *k_quad(int j) { return (const __m128i *)&FR_K256[4 * j]; }

SHANI static inline __m128i bswap32(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL));
}

SHANI static inline void state_init(__m128i *abef, __m128i *cdgh)
{
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&FR_H256[0]), 0xB1); /* CDAB */
    __m128i s = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&FR_H256[4]), 0x1B); /* EFGH */
    *abef = _mm_alignr_epi8(t, s, 8);
    *cdgh = _mm_blend_epi16(s, t, 0xF0);
}

SHANI static inline void state_store(__m128i abef, __m128i cdgh, uint8_t *out)
{
    __m128i t = _mm_shuffle_epi32(abef, 0x1B); /* FEBA */
    __m128i s = _mm_shuffle_epi32(cdgh, 0xB1); /* DCHG */
    _mm_storeu_si128((__m128i *)out, bswap32(_mm_blend_epi16(t, s, 0xF0)));
    _mm_storeu_si128((__m128i *)(out + 16), bswap32(_mm_alignr_epi8(s, t, 8)));
}

/* Message schedule, a quad (4 words) at a time: m[4] holds the last four
 * quads of W; quad j's W + K goes to wk for the rounds to load. */
SHANI static inline void schedule_load(__m128i *m, const uint8_t *blk)
{
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) m[i] = bswap32(_mm_loadu_si128((const __m128i *)(blk + 16 * i)));
}

/* After quad j has been used: finish quad j+1 (sigma1 and the W[t-7]
 * terms) and start quad j+3 (sigma0). */
SHANI static inline void schedule_advance(__m128i *m, int j)
{
    if (j >= 3 && j <= 14) {
        __m128i t = _mm_alignr_epi8(m[j & 3], m[(j + 3) & 3], 4);
        m[(j + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(j + 1) & 3], t), m[j & 3]);
    }
    if (j >= 1 && j <= 12) m[(j + 3) & 3] = _mm_sha256msg1_epu32(m[(j + 3) & 3], m[j & 3]);
}

SHANI static inline void schedule_quad(__m128i *m, uint32_t *wk, int j)
{
    _mm_store_si128((__m128i *)(wk + 4 * j), _mm_add_epi32(m[j & 3], _mm_loadu_si128(k_quad(j))));
    schedule_advance(m, j);
}

SHANI static void schedule_block(const uint8_t *blk, uint32_t *wk)
{
    __m128i m[4];
    schedule_load(m, blk);
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) schedule_quad(m, wk, j);
}

/* ---- one message: the RIM descriptor chain ---- */

/* One 64-byte block, W + K computed in registers (the shortest path for a
 * single stream, whose rounds wait on each other anyway). */
SHANI static inline void block_x1(__m128i *state, const uint8_t *blk)
{
    __m128i m[4], abef = state[0], cdgh = state[1];
    schedule_load(m, blk);
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {
        __m128i msg = _mm_add_epi32(m[j & 3], _mm_loadu_si128(k_quad(j)));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(msg, 0x0E));
        schedule_advance(m, j);
    }
    state[0] = _mm_add_epi32(state[0], abef);
    state[1] = _mm_add_epi32(state[1], cdgh);
}

/* The last block of every 256-byte message (a RIM descriptor). */
static const uint8_t PAD_256[64] = { 0x80, [62] = 0x08, [63] = 0x00 };

SHANI void fr_shani_sha256_256(const uint8_t *msg, uint8_t *out)
{
    __m128i state[2]; /* ABEF, CDGH */
    state_init(&state[0], &state[1]);
    for (int b = 0; b < 4; b++) block_x1(state, msg + 64 * b);
    block_x1(state, PAD_256);
    state_store(state[0], state[1], out);
}

/* ---- four granules at once ----
 *
 * With 16 xmm registers, four lanes cannot each keep their state (2
 * registers) and their message quads (4) in registers, and computing W + K
 * next to the rounds made them wait. So the rounds of a block read W + K
 * with plain 8-byte loads from a small buffer, written while the rounds of
 * the block before ran: the schedule of block b+1 is interleaved quad by
 * quad with the rounds of block b (the compiler keeps some of its quads on
 * the stack), and the rounds wait on nothing but themselves. 256 MiB took 86 ms this way, against 99 ms for
 * two lanes computing W + K in registers and 171 ms for one lane. An explicit
 * prefetch of each lane's next block made it slower (89 ms): the hardware
 * follows the four sequential streams by itself. */
#define LANES 4

/* The rounds of one block per lane (W + K from wk_cur), the schedule of the
 * next one (from nxt, into wk_nxt) interleaved; nxt NULL: none. */
SHANI static inline void step_x4(__m128i *abef, __m128i *cdgh, const uint32_t *const *wk_cur,
                                 const uint8_t *const *nxt, uint32_t *const *wk_nxt)
{
    __m128i m[LANES][4], save0[LANES], save1[LANES];
    for (int l = 0; l < LANES; l++) {
        save0[l] = abef[l];
        save1[l] = cdgh[l];
        if (nxt) schedule_load(m[l], nxt[l]);
    }
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {
        _Pragma("GCC unroll 4") for (int l = 0; l < LANES; l++) {
            const uint32_t *wk = wk_cur[l] + 4 * j;
            cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], _mm_loadl_epi64((const __m128i *)wk));
            abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_loadl_epi64((const __m128i *)(wk + 2)));
        }
        if (nxt) {
            _Pragma("GCC unroll 4") for (int l = 0; l < LANES; l++) schedule_quad(m[l], wk_nxt[l], j);
        }
    }
    for (int l = 0; l < LANES; l++) {
        abef[l] = _mm_add_epi32(abef[l], save0[l]);
        cdgh[l] = _mm_add_epi32(cdgh[l], save1[l]);
    }
}

SHANI void fr_shani_sha256_x4(const uint8_t *const *src, uint8_t *out)
{
    _Alignas(16) uint32_t wk[2][LANES][64], pad[64];
    __m128i abef[LANES], cdgh[LANES];
    const uint8_t *nxt[LANES];
    const uint32_t *cur[LANES];
    uint32_t *next[LANES];
    for (int l = 0; l < LANES; l++) {
        state_init(&abef[l], &cdgh[l]);
        schedule_block(src[l], wk[0][l]);
    }
    for (int b = 0; b < 63; b++) {
        for (int l = 0; l < LANES; l++) {
            nxt[l] = src[l] + 64 * (b + 1);
            cur[l] = wk[b & 1][l];
            next[l] = wk[(b + 1) & 1][l];
        }
        step_x4(abef, cdgh, cur, nxt, next);
    }
    for (int l = 0; l < LANES; l++) cur[l] = wk[1][l];
    step_x4(abef, cdgh, cur, NULL, NULL);
    schedule_block(FR_PAD256_4096, pad);
    for (int l = 0; l < LANES; l++) cur[l] = pad;
    step_x4(abef, cdgh, cur, NULL, NULL);
    for (int l = 0; l < LANES; l++) state_store(abef[l], cdgh[l], out + 32 * l);
}

#endif
