/* The granule hashing kernels: which exist, which this CPU runs, a
 * known-answer self-test of each before it is used, and the one selected
 * per algorithm (twin of the choice: fastrim/backend/native.py, which
 * measures the kernels and selects the fastest).
 *
 * A kernel that fails its self-test is never used: a vector kernel that is
 * wrong on a CPU the test suite never ran on cannot give a wrong RIM, only
 * a slower one. */

#include <stdlib.h>
#include <string.h>

#include "fastrim.h"
#include "hash.h"
#include "kernels.h"
#include "lanes.h"
#include "sha2.h"
#include "tcg.h"

#define GRANULE 4096
#define MAX_LANES 16

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define X86 1

/* The XCR0 bits the OS sets when it saves a register state on context switch. */
static int os_saves(unsigned mask)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & mask) == mask;
}

static int has_avx(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 28) & 1) && os_saves(0x6); /* AVX; xmm, ymm */
}

static unsigned leaf7_ebx(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) ? b : 0;
}

static int cpu_shani(void) { return ((leaf7_ebx() >> 29) & 1) && has_avx(); }                 /* SHA, AVX */
static int cpu_avx2(void) { return ((leaf7_ebx() >> 5) & 1) && has_avx(); }                   /* AVX2 */
static int cpu_avx512(void)                                                                    /* F, BW */
{
    unsigned b = leaf7_ebx();
    return ((b >> 16) & 1) && ((b >> 30) & 1) && has_avx() && os_saves(0xE6); /* opmask, zmm state */
}
#else
#define X86 0
#endif

typedef struct {
    const char *name;
    int lanes256, lanes512; /* granules per pass for SHA-256, and for SHA-384/512; 0: not served */
    int (*cpu)(void);       /* NULL: runs everywhere */
    void (*x256)(const uint8_t *const *src, uint8_t *out);
    void (*x512)(const uint64_t *iv, size_t dlen, const uint8_t *const *src, uint8_t *out);
} kernel;

enum { OPENSSL = 0 };

static const kernel KERNELS[] = {
    {"openssl", 1, 1, NULL, NULL, NULL},
#if X86
    {"sha-ni", 4, 0, cpu_shani, fr_shani_sha256_x4, NULL},
    {"avx2", 8, 4, cpu_avx2, fr_avx2_sha256_x8, fr_avx2_sha512_x4},
    {"avx512", 16, 8, cpu_avx512, fr_avx512_sha256_x16, fr_avx512_sha512_x8},
#endif
};
#define N_KERNELS ((int)(sizeof(KERNELS) / sizeof(KERNELS[0])))

/* Per kernel: whether the CPU runs it (-1: not asked yet), each algorithm's
 * self-test result (-1: not run), and the test hook's flag. */
static signed char runs[N_KERNELS] = {[0 ... N_KERNELS - 1] = -1};
static signed char tested[N_KERNELS][3] = {[0 ... N_KERNELS - 1] = {-1, -1, -1}};
static unsigned char broken[N_KERNELS];
static int selected[3] = {-1, -1, -1};

static int alg_index(uint16_t alg)
{
    switch (alg) {
    case ALG_SHA256: return 0;
    case ALG_SHA384: return 1;
    case ALG_SHA512: return 2;
    default: return -1;
    }
}

int fr_kernel_count(void) { return N_KERNELS; }

const char *fr_kernel_name(int k) { return k >= 0 && k < N_KERNELS ? KERNELS[k].name : NULL; }

int fr_kernel_lanes(int k, uint16_t alg)
{
    int a = alg_index(alg);
    if (k < 0 || k >= N_KERNELS || a < 0) return 0;
    if (runs[k] < 0) runs[k] = KERNELS[k].cpu ? (signed char)KERNELS[k].cpu() : 1;
    if (!runs[k]) return 0;
    return a == 0 ? KERNELS[k].lanes256 : KERNELS[k].lanes512;
}

/* One pass of kernel k over exactly `lanes` granules. */
static int pass(int k, int a, const uint8_t *const *src, uint8_t *out)
{
    const kernel *K = &KERNELS[k];
    uint16_t alg = a == 0 ? ALG_SHA256 : a == 1 ? ALG_SHA384 : ALG_SHA512;
    size_t dlen = fr_rim_digest_size(alg);
    if (k == OPENSSL) return fr_rim_hash(alg, src[0], GRANULE, out);
    if (a == 0)
        K->x256(src, out);
    else
        K->x512(a == 1 ? FR_H384 : FR_H512, dlen, src, out);
    if (broken[k]) out[0] ^= 1; /* fr_kernel_test_break: one wrong bit */
    return 0;
}

/* n granules through kernel k: whole passes, then the last granules with
 * the spare lanes filled by the first of them (their output dropped). */
static int run(int k, uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out)
{
    int a = alg_index(alg);
    size_t lanes = (size_t)fr_kernel_lanes(k, alg), dlen = fr_rim_digest_size(alg);
    size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        if (pass(k, a, src + i, out + dlen * i)) return -1;
    if (i < n) {
        const uint8_t *rest[MAX_LANES];
        uint8_t tmp[MAX_LANES * MAX_DIGEST];
        for (size_t l = 0; l < lanes; l++) rest[l] = src[i + (i + l < n ? l : 0)];
        if (pass(k, a, rest, tmp)) return -1;
        memcpy(out + dlen * i, tmp, dlen * (n - i));
    }
    return 0;
}

/* ---- the known-answer self-test ---- */

/* Test granules: pseudo-random bytes, some with a zero head or tail as the
 * first and last granule of an unaligned image have. */
static void test_granules(uint8_t *buf, size_t count)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < count * GRANULE; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t g = 0; g < count; g++) {
        uint8_t *p = buf + g * GRANULE;
        if (g % 3 == 1) memset(p, 0, (g * 977) % GRANULE);                  /* a ragged head */
        if (g % 3 == 2) memset(p + GRANULE - (g * 1531) % GRANULE, 0, (g * 1531) % GRANULE); /* a ragged tail */
    }
}

/* Kernel k against OpenSSL for every count of granules from 1 to two
 * passes and one more (every lane count, whole passes and remainders),
 * from shifting starting granules. For SHA-NI also the descriptor hash. */
static int self_test(int k, uint16_t alg)
{
    size_t lanes = (size_t)fr_kernel_lanes(k, alg), dlen = fr_rim_digest_size(alg);
    if (!lanes) return 0;
    size_t count = 2 * lanes + 1;
    uint8_t *buf = malloc(count * GRANULE), *want = malloc(count * dlen), *got = malloc(count * dlen);
    int ok = buf && want && got;
    if (ok) {
        test_granules(buf, count);
        for (size_t g = 0; g < count && ok; g++) ok = fr_rim_hash(alg, buf + g * GRANULE, GRANULE, want + g * dlen) == 0;
    }
    for (size_t n = 1; n <= count && ok; n++) {
        const uint8_t *src[2 * MAX_LANES + 1];
        uint8_t expect[(2 * MAX_LANES + 1) * MAX_DIGEST];
        for (size_t i = 0; i < n; i++) {
            size_t g = (i + n) % count;
            src[i] = buf + g * GRANULE;
            memcpy(expect + i * dlen, want + g * dlen, dlen);
        }
        memset(got, 0xA5, count * dlen);
        ok = run(k, alg, src, n, got) == 0 && memcmp(got, expect, n * dlen) == 0;
    }
#if X86
    if (ok && KERNELS[k].x256 == fr_shani_sha256_x4) {
        for (size_t g = 0; g + 1 < count && ok; g++) {
            uint8_t a[32], b[32];
            fr_shani_sha256_256(buf + g * GRANULE + 77 * g, a);
            if (broken[k]) a[0] ^= 1;
            ok = fr_rim_hash(ALG_SHA256, buf + g * GRANULE + 77 * g, 256, b) == 0 && memcmp(a, b, 32) == 0;
        }
    }
#endif
    free(buf);
    free(want);
    free(got);
    return ok;
}

int fr_kernel_selftest(int k, uint16_t alg)
{
    int a = alg_index(alg);
    if (k < 0 || k >= N_KERNELS || a < 0) return 0;
    if (tested[k][a] < 0) tested[k][a] = (signed char)self_test(k, alg);
    return tested[k][a];
}

static int usable(int k, uint16_t alg) { return fr_kernel_lanes(k, alg) > 0 && fr_kernel_selftest(k, alg); }

int fr_kernel_select(uint16_t alg, int k)
{
    int a = alg_index(alg);
    if (a >= 0 && k == -1) { /* back to the default */
        selected[a] = -1;
        return 0;
    }
    if (a < 0 || k < 0 || k >= N_KERNELS || !usable(k, alg)) return -1;
    selected[a] = k;
    return 0;
}

/* Until the dispatcher selects one: the widest usable kernel, SHA-NI before
 * AVX2 for SHA-256 (it was the faster on every CPU measured so far). */
int fr_kernel_selected(uint16_t alg)
{
    int a = alg_index(alg);
    if (a < 0) return -1;
    int k = selected[a]; /* read once: another thread may select meanwhile */
    if (k < 0 || !usable(k, alg)) {
        static const char *const order[] = {"avx512", "sha-ni", "avx2"};
        k = OPENSSL;
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && k == OPENSSL; i++)
            for (int j = 0; j < N_KERNELS; j++)
                if (strcmp(KERNELS[j].name, order[i]) == 0 && usable(j, alg)) k = j;
        selected[a] = k;
    }
    return k;
}

int fr_kernel_granules(int k, uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out)
{
    if (alg_index(alg) < 0 || k < 0 || k >= N_KERNELS || !fr_kernel_lanes(k, alg)) return -1;
    return run(k, alg, src, n, out);
}

void fr_kernel_test_break(int k)
{
    if (k < 0 || k >= N_KERNELS) return;
    broken[k] = 1;
    for (int a = 0; a < 3; a++) {
        tested[k][a] = -1;
        if (selected[a] == k) selected[a] = -1;
    }
}

/* ---- for rim.c ---- */

int fr_kernels_hash(uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out)
{
    int k = fr_kernel_selected(alg);
    return k < 0 ? -1 : run(k, alg, src, n, out);
}

int fr_kernels_chain_sha_ni(void)
{
#if X86
    if (fr_kernel_selected(ALG_SHA256) == OPENSSL) return 0; /* FASTRIM_HASH_KERNEL=openssl: OpenSSL throughout */
    for (int k = 0; k < N_KERNELS; k++)
        if (KERNELS[k].x256 == fr_shani_sha256_x4) return usable(k, ALG_SHA256);
#endif
    return 0;
}

void fr_kernels_sha256_256(const uint8_t *msg, uint8_t *out)
{
#if X86
    fr_shani_sha256_256(msg, out);
#else
    if (fr_rim_hash(ALG_SHA256, msg, 256, out)) memset(out, 0, 32);
#endif
}
