/* SHA-256 of eight 4 KiB granules at once, and SHA-512 (or SHA-384) of
 * four, in the 32- and 64-bit lanes of AVX2 registers.
 *
 * No SHA instructions here: each lane of a ymm register holds one
 * granule's word, and the FIPS 180-4 rounds run on all lanes at once. AVX2
 * has no rotate, so a rotation is two shifts and an or. Blocks are loaded
 * row by row (one lane's block each) and transposed in registers, so that
 * W[t] holds word t of every lane.
 */
#include <stddef.h>
#include <stdint.h>

#include "lanes.h"
#include "sha2.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* ---- SHA-256, eight lanes ---- */

#define ROTR32(x, n) _mm256_or_si256(_mm256_srli_epi32((x), (n)), _mm256_slli_epi32((x), 32 - (n)))

/* Eight rows of eight 32-bit words transposed: r[i] word j -> w[j] word i. */
AVX2 static inline void transpose8x32(const __m256i *r, __m256i *w)
{
    __m256i a[8], b[8];
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        b[4 * i + 0] = _mm256_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm256_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm256_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm256_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        w[m] = _mm256_permute2x128_si256(b[m], b[4 + m], 0x20);
        w[4 + m] = _mm256_permute2x128_si256(b[m], b[4 + m], 0x31);
    }
}

/* Words 0..15 of eight lanes' 64-byte blocks, big-endian words made native. */
AVX2 static inline void load8x32(__m256i *w, const uint8_t *const *blk)
{
    const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                           3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
    __m256i r[8];
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[l] + 32 * half)), bswap);
        transpose8x32(r, w + 8 * half);
    }
}

AVX2 static void block256_x8(__m256i *st, __m256i *w)
{
    __m256i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    _Pragma("GCC unroll 16") for (int t = 0; t < 64; t++) {
        __m256i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m256i w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
            __m256i s1 = _mm256_xor_si256(_mm256_xor_si256(ROTR32(w2, 17), ROTR32(w2, 19)), _mm256_srli_epi32(w2, 10));
            __m256i s0 = _mm256_xor_si256(_mm256_xor_si256(ROTR32(w15, 7), ROTR32(w15, 18)), _mm256_srli_epi32(w15, 3));
            wt = _mm256_add_epi32(_mm256_add_epi32(s1, w[(t - 7) & 15]), _mm256_add_epi32(s0, w[t & 15]));
            w[t & 15] = wt;
        }
        __m256i sum1 = _mm256_xor_si256(_mm256_xor_si256(ROTR32(e, 6), ROTR32(e, 11)), ROTR32(e, 25));
        __m256i ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
        __m256i k = _mm256_set1_epi32((int)FR_K256[t]);
        __m256i t1 = _mm256_add_epi32(_mm256_add_epi32(h, sum1), _mm256_add_epi32(ch, _mm256_add_epi32(k, wt)));
        __m256i sum0 = _mm256_xor_si256(_mm256_xor_si256(ROTR32(a, 2), ROTR32(a, 13)), ROTR32(a, 22));
        __m256i maj = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)));
        __m256i t2 = _mm256_add_epi32(sum0, maj);
        h = g; g = f; f = e; e = _mm256_add_epi32(d, t1);
        d = c; c = b; b = a; a = _mm256_add_epi32(t1, t2);
    }
    st[0] = _mm256_add_epi32(st[0], a); st[1] = _mm256_add_epi32(st[1], b);
    st[2] = _mm256_add_epi32(st[2], c); st[3] = _mm256_add_epi32(st[3], d);
    st[4] = _mm256_add_epi32(st[4], e); st[5] = _mm256_add_epi32(st[5], f);
    st[6] = _mm256_add_epi32(st[6], g); st[7] = _mm256_add_epi32(st[7], h);
}

AVX2 void fr_avx2_sha256_x8(const uint8_t *const *src, uint8_t *out)
{
    __m256i st[8], w[16];
    for (int i = 0; i < 8; i++) st[i] = _mm256_set1_epi32((int)FR_H256[i]);
    const uint8_t *blk[8];
    for (int b = 0; b < 64; b++) {
        for (int l = 0; l < 8; l++) blk[l] = src[l] + 64 * b;
        load8x32(w, blk);
        block256_x8(st, w);
    }
    for (int t = 0; t < 16; t++) {
        const uint8_t *p = FR_PAD256_4096 + 4 * t;
        w[t] = _mm256_set1_epi32((int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]));
    }
    block256_x8(st, w);
    uint32_t words[8][8];
    for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i *)words[i], st[i]);
    for (int l = 0; l < 8; l++)
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 4; k++) out[32 * l + 4 * i + k] = (uint8_t)(words[i][l] >> (24 - 8 * k));
}

/* ---- SHA-512 (and SHA-384), four lanes ---- */

#define ROTR64(x, n) _mm256_or_si256(_mm256_srli_epi64((x), (n)), _mm256_slli_epi64((x), 64 - (n)))
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
            __m256i s1 = XOR3(ROTR64(w2, 19), ROTR64(w2, 61), _mm256_srli_epi64(w2, 6));
            __m256i s0 = XOR3(ROTR64(w15, 1), ROTR64(w15, 8), _mm256_srli_epi64(w15, 7));
            wt = _mm256_add_epi64(_mm256_add_epi64(s1, w[(t - 7) & 15]), _mm256_add_epi64(s0, w[t & 15]));
            w[t & 15] = wt;
        }
        __m256i sum1 = XOR3(ROTR64(e, 14), ROTR64(e, 18), ROTR64(e, 41));
        __m256i ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
        __m256i k = _mm256_set1_epi64x((long long)FR_K512[t]);
        __m256i t1 = _mm256_add_epi64(_mm256_add_epi64(h, sum1), _mm256_add_epi64(ch, _mm256_add_epi64(k, wt)));
        __m256i sum0 = XOR3(ROTR64(a, 28), ROTR64(a, 34), ROTR64(a, 39));
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

/* Four granules from initial value iv (SHA-512's or SHA-384's), the first
 * dlen bytes of each state into out (dlen apart). */
AVX2 void fr_avx2_sha512_x4(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out)
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
    for (int l = 0; l < 4; l++) blk[l] = FR_PAD512_4096;
    block512_x4(st, blk);
    uint64_t words[8][4];
    for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i *)words[i], st[i]);
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; i < dlen / 8; i++)
            for (int k = 0; k < 8; k++) out[dlen * l + 8 * i + k] = (uint8_t)(words[i][l] >> (56 - 8 * k));
}

#endif
