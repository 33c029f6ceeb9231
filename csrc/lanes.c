/* Multi-lane SHA-256 of whole 4 KiB granules with the x86 SHA extensions,
 * and multi-lane SHA-512 with AVX2.
 *
 * A granule's content hash depends on nothing but its bytes, so several
 * granules can be hashed at once. sha256rnds2 has a latency of 4 cycles but
 * issues every cycle on this Zen 3 (measured): one message stream waits on
 * itself, while interleaving independent streams ("lanes") keeps it busy.
 *
 * Written from FIPS 180-4 and Intel's description of the SHA extensions:
 * state is kept as the register pair (ABEF, CDGH) that sha256rnds2 works on,
 * the message schedule uses sha256msg1 / sha256msg2.
 *
 * Compiled with per-function target attributes, so the extension builds and
 * runs on any x86-64: fr_lanes_sha256_supported() tells at run time whether
 * the instructions exist; on other architectures it is always 0, and the
 * functions fall back to libcrypto's single stream.
 */
#include <stdint.h>
#include <string.h>

#include "lanes.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

/* AVX for the VEX (three-operand) forms of the SSE instructions around the
 * SHA ones: without the register copies that the two-operand forms need,
 * the four-lane kernel ran at 93-96 ms per 256 MiB instead of 86-87. */
#define SHANI __attribute__((target("sha,avx")))

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

/* 1 when the OS saves the xmm and ymm registers (needed by any VEX code). */
static int os_saves_avx_state(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1) || !((c >> 28) & 1)) return 0; /* OSXSAVE, AVX */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
}

int fr_lanes_sha256_supported(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((b >> 29) & 1)) return 0; /* SHA */
    return os_saves_avx_state();
}

static const __m128i *k_quad(int j) { return (const __m128i *)&K256[4 * j]; }

SHANI static inline __m128i bswap32(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL));
}

SHANI static inline void state_init(__m128i *abef, __m128i *cdgh)
{
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&H256[0]), 0xB1); /* CDAB */
    __m128i s = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&H256[4]), 0x1B); /* EFGH */
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

SHANI void fr_lanes_sha256_256(const uint8_t *msg, uint8_t *out)
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

/* The last block of every 4096-byte message: 0x80, zeros, the bit length. */
static const uint8_t PAD_4096[64] = { 0x80, [62] = 0x80, [63] = 0x00 };

SHANI static void granules_x4(const uint8_t *const *src, uint8_t *out)
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
    schedule_block(PAD_4096, pad);
    for (int l = 0; l < LANES; l++) cur[l] = pad;
    step_x4(abef, cdgh, cur, NULL, NULL);
    for (int l = 0; l < LANES; l++) state_store(abef[l], cdgh[l], out + 32 * l);
}

/* n granules through a kernel that hashes LANES at once (dlen bytes of
 * output each): the spare lanes of the last one to three are filled with
 * the first of them, and their output is dropped. */
static void by_lanes(void (*kernel)(const uint8_t *const *, uint8_t *), size_t dlen,
                     const uint8_t *const *src, size_t n, uint8_t *out)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) kernel(src + i, out + dlen * i);
    if (i < n) {
        const uint8_t *rest[LANES];
        uint8_t tmp[LANES * 64];
        for (int l = 0; l < LANES; l++) rest[l] = src[i + (i + l < n ? l : 0)];
        kernel(rest, tmp);
        memcpy(out + dlen * i, tmp, dlen * (n - i));
    }
}

void fr_lanes_sha256_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    by_lanes(granules_x4, 32, src, n, out);
}

/* ---- SHA-512 and SHA-384, four granules at a time in the 64-bit lanes of AVX2 ----
 *
 * No SHA-512 instructions here: each of the four lanes of a ymm register
 * holds one granule's word, and the FIPS 180-4 rounds run on all four at
 * once. (With AVX-512 there would be eight lanes and a rotate instruction;
 * rotations here are two shifts and an or.) SHA-384 is the same function
 * from another initial value, its output cut to 48 bytes (FIPS 180-4 6.5). */

#define AVX2 __attribute__((target("avx2")))

static const uint64_t K512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

static const uint64_t H512[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint64_t H384[8] = {
    0xcbbb9d5dc1059ed8ULL, 0x629a292a367cd507ULL, 0x9159015a3070dd17ULL, 0x152fecd8f70e5939ULL,
    0x67332667ffc00b31ULL, 0x8eb44a8768581511ULL, 0xdb0c2e0d64f98fa7ULL, 0x47b5481dbefa4fa4ULL,
};

/* The last block of every 4096-byte message: 0x80, zeros, the bit length (128-bit big-endian). */
static const uint8_t PAD512_4096[128] = { 0x80, [126] = 0x80 };

int fr_lanes_sha512_supported(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((b >> 5) & 1)) return 0; /* AVX2 */
    return os_saves_avx_state();
}

#define ROTR(x, n) _mm256_or_si256(_mm256_srli_epi64((x), (n)), _mm256_slli_epi64((x), 64 - (n)))
#define XOR3(a, b, c) _mm256_xor_si256(_mm256_xor_si256((a), (b)), (c))

/* Words t..t+3 of four lanes' blocks, byte-swapped and transposed so that
 * w[t + i] holds word t + i of every lane. */
AVX2 static inline void load4(__m256i *w, const uint8_t *const *blk, int t)
{
    const __m256i bswap = _mm256_set_epi8(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7,
                                          8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    __m256i r0 = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[0] + 8 * t)), bswap);
    __m256i r1 = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[1] + 8 * t)), bswap);
    __m256i r2 = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[2] + 8 * t)), bswap);
    __m256i r3 = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[3] + 8 * t)), bswap);
    __m256i t0 = _mm256_unpacklo_epi64(r0, r1), t1 = _mm256_unpackhi_epi64(r0, r1);
    __m256i t2 = _mm256_unpacklo_epi64(r2, r3), t3 = _mm256_unpackhi_epi64(r2, r3);
    w[t + 0] = _mm256_permute2x128_si256(t0, t2, 0x20);
    w[t + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
    w[t + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
    w[t + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
}

AVX2 static void block512_x4(__m256i *st, const uint8_t *const *blk)
{
    __m256i w[16];
    for (int t = 0; t < 16; t += 4) load4(w, blk, t);
    __m256i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    _Pragma("GCC unroll 16") for (int t = 0; t < 80; t++) {
        __m256i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m256i w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
            __m256i s1 = XOR3(ROTR(w2, 19), ROTR(w2, 61), _mm256_srli_epi64(w2, 6));
            __m256i s0 = XOR3(ROTR(w15, 1), ROTR(w15, 8), _mm256_srli_epi64(w15, 7));
            wt = _mm256_add_epi64(_mm256_add_epi64(s1, w[(t - 7) & 15]), _mm256_add_epi64(s0, w[t & 15]));
            w[t & 15] = wt;
        }
        __m256i sum1 = XOR3(ROTR(e, 14), ROTR(e, 18), ROTR(e, 41));
        __m256i ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
        __m256i k = _mm256_set1_epi64x((long long)K512[t]);
        __m256i t1 = _mm256_add_epi64(_mm256_add_epi64(h, sum1), _mm256_add_epi64(ch, _mm256_add_epi64(k, wt)));
        __m256i sum0 = XOR3(ROTR(a, 28), ROTR(a, 34), ROTR(a, 39));
        __m256i maj = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)));
        __m256i t2 = _mm256_add_epi64(sum0, maj);
        h = g; g = f; f = e; e = _mm256_add_epi64(d, t1);
        d = c; c = b; b = a; a = _mm256_add_epi64(t1, t2);
    }
    st[0] = _mm256_add_epi64(st[0], a); st[1] = _mm256_add_epi64(st[1], b);
    st[2] = _mm256_add_epi64(st[2], c); st[3] = _mm256_add_epi64(st[3], d);
    st[4] = _mm256_add_epi64(st[4], e); st[5] = _mm256_add_epi64(st[5], f);
    st[6] = _mm256_add_epi64(st[6], g); st[7] = _mm256_add_epi64(st[7], h);
}

/* Four granules from initial value iv, the first dlen bytes of each state into out (dlen apart). */
AVX2 static inline void granules64_x4(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out)
{
    __m256i st[8];
    for (int i = 0; i < 8; i++) st[i] = _mm256_set1_epi64x((long long)iv[i]);
    const uint8_t *blk[4];
    for (int b = 0; b < 32; b++) {
        for (int l = 0; l < 4; l++) {
            blk[l] = src[l] + 128 * b;
            _mm_prefetch((const char *)blk[l] + 512, _MM_HINT_T0);
        }
        block512_x4(st, blk);
    }
    for (int l = 0; l < 4; l++) blk[l] = PAD512_4096;
    block512_x4(st, blk);
    uint64_t words[8][4];
    for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i *)words[i], st[i]);
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; i < dlen / 8; i++)
            for (int k = 0; k < 8; k++) out[dlen * l + 8 * i + k] = (uint8_t)(words[i][l] >> (56 - 8 * k));
}

AVX2 static void granules512_x4(const uint8_t *const *src, uint8_t *out) { granules64_x4(H512, 64, src, out); }

AVX2 static void granules384_x4(const uint8_t *const *src, uint8_t *out) { granules64_x4(H384, 48, src, out); }

void fr_lanes_sha512_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    by_lanes(granules512_x4, 64, src, n, out);
}

void fr_lanes_sha384_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    by_lanes(granules384_x4, 48, src, n, out);
}

#else

/* Elsewhere (aarch64 ...) no lane kernel is selected (both report 0), and
 * should one be called all the same, it hashes one stream at a time with
 * libcrypto rather than leave its output unwritten. */
#include "hash.h"
#include "tcg.h"

int fr_lanes_sha256_supported(void) { return 0; }
int fr_lanes_sha512_supported(void) { return 0; }

static void single_stream(uint16_t alg, uint32_t dlen, const uint8_t *const *src, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (fr_rim_hash(alg, src[i], 4096, out + dlen * i)) memset(out + dlen * i, 0, dlen);
}

void fr_lanes_sha256_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    single_stream(ALG_SHA256, 32, src, n, out);
}

void fr_lanes_sha512_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    single_stream(ALG_SHA512, 64, src, n, out);
}

void fr_lanes_sha384_granules(const uint8_t *const *src, size_t n, uint8_t *out)
{
    single_stream(ALG_SHA384, 48, src, n, out);
}

void fr_lanes_sha256_256(const uint8_t *msg, uint8_t *out)
{
    if (fr_rim_hash(ALG_SHA256, msg, 256, out)) memset(out, 0, 32);
}

#endif
