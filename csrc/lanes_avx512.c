/* SHA-256 of sixteen 4 KiB granules at once, and SHA-512 (or SHA-384) of
 * eight, in the 32- and 64-bit lanes of AVX-512 registers.
 *
 * Written from FIPS 180-4. As in lanes_avx2.c each lane holds one granule,
 * but AVX-512 rotates in one instruction (vprord / vprorq) and computes any
 * function of three inputs in one (vpternlog: the XOR of three terms is
 * truth table 0x96, Ch 0xCA, Maj 0xE8). Blocks are loaded row by row (one
 * lane's block in a register) and transposed in registers rather than
 * gathered word by word. Needs AVX-512 F (and BW for the byte shuffle that
 * makes the big-endian words native); kernels.c checks both, and that the
 * OS saves the zmm state, before calling it.
 */
#include <stddef.h>
#include <stdint.h>

#include "lanes.h"
#include "sha2.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw")))

#define XOR3_32(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define XOR3_64(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0x96)

/* Four registers whose 128-bit lane k holds part i of column (4k + m), i = 0..3,
 * regrouped: out[k] = part 0..3 of column k. (A 4x4 transpose of 128-bit lanes.) */
AVX512 static inline void regroup(__m512i p0, __m512i p1, __m512i p2, __m512i p3, __m512i *out, int stride)
{
    __m512i c0 = _mm512_shuffle_i32x4(p0, p1, 0x44), c1 = _mm512_shuffle_i32x4(p0, p1, 0xEE);
    __m512i c2 = _mm512_shuffle_i32x4(p2, p3, 0x44), c3 = _mm512_shuffle_i32x4(p2, p3, 0xEE);
    out[0] = _mm512_shuffle_i32x4(c0, c2, 0x88);
    out[stride] = _mm512_shuffle_i32x4(c0, c2, 0xDD);
    out[2 * stride] = _mm512_shuffle_i32x4(c1, c3, 0x88);
    out[3 * stride] = _mm512_shuffle_i32x4(c1, c3, 0xDD);
}

/* ---- SHA-256, sixteen lanes ---- */

/* Sixteen rows of sixteen 32-bit words transposed: r[i] word j -> w[j] word i. */
AVX512 static inline void transpose16x32(const __m512i *r, __m512i *w)
{
    __m512i a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* b[4i + m], 128-bit lane k: rows 4i..4i+3 of column 4k + m */
    for (int i = 0; i < 4; i++) {
        b[4 * i + 0] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) regroup(b[m], b[4 + m], b[8 + m], b[12 + m], w + m, 4);
}

AVX512 static inline void load16x32(__m512i *w, const uint8_t *const *blk)
{
    const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i r[16];
    for (int l = 0; l < 16; l++) r[l] = _mm512_shuffle_epi8(_mm512_loadu_si512(blk[l]), bswap);
    transpose16x32(r, w);
}

AVX512 static void block256_x16(__m512i *st, __m512i *w)
{
    __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    _Pragma("GCC unroll 16") for (int t = 0; t < 64; t++) {
        __m512i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
            __m512i s1 = XOR3_32(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10));
            __m512i s0 = XOR3_32(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3));
            wt = _mm512_add_epi32(_mm512_add_epi32(s1, w[(t - 7) & 15]), _mm512_add_epi32(s0, w[t & 15]));
            w[t & 15] = wt;
        }
        __m512i sum1 = XOR3_32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25));
        __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
        __m512i k = _mm512_set1_epi32((int)FR_K256[t]);
        __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, sum1), _mm512_add_epi32(ch, _mm512_add_epi32(k, wt)));
        __m512i sum0 = XOR3_32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22));
        __m512i maj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);
        h = g; g = f; f = e; e = _mm512_add_epi32(d, t1);
        d = c; c = b; b = a; a = _mm512_add_epi32(t1, _mm512_add_epi32(sum0, maj));
    }
    st[0] = _mm512_add_epi32(st[0], a); st[1] = _mm512_add_epi32(st[1], b);
    st[2] = _mm512_add_epi32(st[2], c); st[3] = _mm512_add_epi32(st[3], d);
    st[4] = _mm512_add_epi32(st[4], e); st[5] = _mm512_add_epi32(st[5], f);
    st[6] = _mm512_add_epi32(st[6], g); st[7] = _mm512_add_epi32(st[7], h);
}

AVX512 void fr_avx512_sha256_x16(const uint8_t *const *src, uint8_t *out)
{
    __m512i st[8], w[16];
    for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi32((int)FR_H256[i]);
    const uint8_t *blk[16];
    for (int b = 0; b < 64; b++) {
        for (int l = 0; l < 16; l++) blk[l] = src[l] + 64 * b;
        load16x32(w, blk);
        block256_x16(st, w);
    }
    for (int t = 0; t < 16; t++) {
        const uint8_t *p = FR_PAD256_4096 + 4 * t;
        w[t] = _mm512_set1_epi32((int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]));
    }
    block256_x16(st, w);
    uint32_t words[8][16];
    for (int i = 0; i < 8; i++) _mm512_storeu_si512(words[i], st[i]);
    for (int l = 0; l < 16; l++)
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 4; k++) out[32 * l + 4 * i + k] = (uint8_t)(words[i][l] >> (24 - 8 * k));
}

/* ---- SHA-512 (and SHA-384), eight lanes ---- */

/* Eight rows of eight 64-bit words transposed: r[i] word j -> w[j] word i. */
AVX512 static inline void transpose8x64(const __m512i *r, __m512i *w)
{
    __m512i a[8];
    /* a[2i + m], 128-bit lane k: rows 2i, 2i+1 of column 2k + m */
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm512_unpacklo_epi64(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi64(r[2 * i], r[2 * i + 1]);
    }
    for (int m = 0; m < 2; m++) regroup(a[m], a[2 + m], a[4 + m], a[6 + m], w + m, 2);
}

AVX512 static inline void load8x64(__m512i *w, const uint8_t *const *blk)
{
    const __m512i bswap = _mm512_set4_epi32(0x08090a0b, 0x0c0d0e0f, 0x00010203, 0x04050607);
    __m512i r[8];
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 8; l++) r[l] = _mm512_shuffle_epi8(_mm512_loadu_si512(blk[l] + 64 * half), bswap);
        transpose8x64(r, w + 8 * half);
    }
}

AVX512 static void block512_x8(__m512i *st, __m512i *w)
{
    __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    _Pragma("GCC unroll 16") for (int t = 0; t < 80; t++) {
        __m512i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
            __m512i s1 = XOR3_64(_mm512_ror_epi64(w2, 19), _mm512_ror_epi64(w2, 61), _mm512_srli_epi64(w2, 6));
            __m512i s0 = XOR3_64(_mm512_ror_epi64(w15, 1), _mm512_ror_epi64(w15, 8), _mm512_srli_epi64(w15, 7));
            wt = _mm512_add_epi64(_mm512_add_epi64(s1, w[(t - 7) & 15]), _mm512_add_epi64(s0, w[t & 15]));
            w[t & 15] = wt;
        }
        __m512i sum1 = XOR3_64(_mm512_ror_epi64(e, 14), _mm512_ror_epi64(e, 18), _mm512_ror_epi64(e, 41));
        __m512i ch = _mm512_ternarylogic_epi64(e, f, g, 0xCA);
        __m512i k = _mm512_set1_epi64((long long)FR_K512[t]);
        __m512i t1 = _mm512_add_epi64(_mm512_add_epi64(h, sum1), _mm512_add_epi64(ch, _mm512_add_epi64(k, wt)));
        __m512i sum0 = XOR3_64(_mm512_ror_epi64(a, 28), _mm512_ror_epi64(a, 34), _mm512_ror_epi64(a, 39));
        __m512i maj = _mm512_ternarylogic_epi64(a, b, c, 0xE8);
        h = g; g = f; f = e; e = _mm512_add_epi64(d, t1);
        d = c; c = b; b = a; a = _mm512_add_epi64(t1, _mm512_add_epi64(sum0, maj));
    }
    st[0] = _mm512_add_epi64(st[0], a); st[1] = _mm512_add_epi64(st[1], b);
    st[2] = _mm512_add_epi64(st[2], c); st[3] = _mm512_add_epi64(st[3], d);
    st[4] = _mm512_add_epi64(st[4], e); st[5] = _mm512_add_epi64(st[5], f);
    st[6] = _mm512_add_epi64(st[6], g); st[7] = _mm512_add_epi64(st[7], h);
}

AVX512 void fr_avx512_sha512_x8(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out)
{
    __m512i st[8], w[16];
    for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi64((long long)iv[i]);
    const uint8_t *blk[8];
    for (int b = 0; b < 32; b++) {
        for (int l = 0; l < 8; l++) blk[l] = src[l] + 128 * b;
        load8x64(w, blk);
        block512_x8(st, w);
    }
    for (int t = 0; t < 16; t++) {
        uint64_t word = 0;
        for (int k = 0; k < 8; k++) word = word << 8 | FR_PAD512_4096[8 * t + k];
        w[t] = _mm512_set1_epi64((long long)word);
    }
    block512_x8(st, w);
    uint64_t words[8][8];
    for (int i = 0; i < 8; i++) _mm512_storeu_si512(words[i], st[i]);
    for (int l = 0; l < 8; l++)
        for (size_t i = 0; i < dlen / 8; i++)
            for (int k = 0; k < 8; k++) out[dlen * l + 8 * i + k] = (uint8_t)(words[i][l] >> (56 - 8 * k));
}

#endif
