/* The RIM's RMI_DATA_CREATE loop: every granule of an image measured into
 * the rolling RIM (rim-spec.md section 3; twin: rim_data and rim_chain in
 * fastrim/backend/fallback.py), granule contents hashed by the selected
 * kernel (kernels.c). */

#define _POSIX_C_SOURCE 200809L /* sigaction, sigsetjmp, mmap */

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fastrim.h"
#include "hash.h"
#include "kernels.h"
#include "tcg.h"

#define GRANULE 4096
/* The RIM extension descriptor of a DATA step (desc_type 0). */
#define DESC_SIZE 0x100
#define DESC_LEN_AT 0x08
#define DESC_RIM_AT 0x10
#define DATA_IPA_AT 0x50
#define DATA_FLAGS_AT 0x58
#define DATA_CONTENT_AT 0x60
#define DATA_MEASURED 1

/* The descriptor, kept across granules: the RIM field is where each step's
 * hash lands, so only ipa, flags and content change between steps. */
typedef struct {
    uint16_t alg;
    uint32_t dlen;
    int sha_ni; /* the SHA-256 descriptor hash runs on the SHA extensions */
    uint8_t desc[DESC_SIZE];
} data_chain;

static void chain_start(data_chain *c, uint16_t alg, const uint8_t *rim)
{
    c->alg = alg;
    c->dlen = fr_rim_digest_size(alg);
    c->sha_ni = alg == ALG_SHA256 && fr_kernels_chain_sha_ni();
    memset(c->desc, 0, DESC_SIZE);
    wr64(c->desc + DESC_LEN_AT, DESC_SIZE);
    memcpy(c->desc + DESC_RIM_AT, rim, MEASUREMENT_SIZE);
}

/* content NULL: the granule is created unmeasured (flags 0, content zero). */
static int chain_step(data_chain *c, uint64_t ipa, const uint8_t *content)
{
    wr64(c->desc + DATA_IPA_AT, ipa);
    wr64(c->desc + DATA_FLAGS_AT, content ? DATA_MEASURED : 0);
    if (content)
        memcpy(c->desc + DATA_CONTENT_AT, content, c->dlen);
    else
        memset(c->desc + DATA_CONTENT_AT, 0, c->dlen);
    uint8_t next[MEASUREMENT_SIZE] = {0}; /* a measurement is the digest padded to 64 bytes */
    if (c->sha_ni)
        fr_kernels_sha256_256(c->desc, next); /* no OpenSSL call overhead for 5 blocks */
    else if (fr_rim_hash(c->alg, c->desc, DESC_SIZE, next))
        return -1;
    memcpy(c->desc + DESC_RIM_AT, next, MEASUREMENT_SIZE);
    return 0;
}

static void chain_end(const data_chain *c, uint8_t *rim) { memcpy(rim, c->desc + DESC_RIM_AT, MEASUREMENT_SIZE); }

/* Granules hashed per batch: their content hashes are computed together
 * (lanes), then chained in order. */
#define BATCH 64
/* An image of at least this many granules has its descriptor chain run on
 * a second thread while the lanes hash the next batch: the chain is serial
 * (each descriptor holds the RIM before it), a tenth of the work for
 * SHA-512 and more than the lanes' share of it on one core. */
#define PIPELINE_MIN (4 * BATCH)

/* The chain's half of a pipelined fr_rim_data: two batch buffers, filled by
 * the caller's thread and chained in order by this one. On the heap, with
 * the chain in it: a SIGBUS in the caller's thread leaves fr_rim_data by
 * siglongjmp, and fr_rim_file then stops this thread (pipe_abandon). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    data_chain chain;
    uint64_t first;          /* the IPA of granule 0 */
    uint8_t buf[2][BATCH * MAX_DIGEST];
    size_t count[2];         /* granules waiting in buf[slot]; 0: free for the next batch */
    uint64_t g0[2];          /* the index of buf[slot]'s first granule */
    int stop;                /* no more batches: chain what is there and leave */
    int failed;              /* libcrypto failed in a chain step */
} chain_pipe;

static _Thread_local chain_pipe *active_pipe; /* the caller thread's running pipeline */

static void *chain_worker(void *arg)
{
    chain_pipe *p = arg;
    for (unsigned slot = 0;; slot ^= 1) {
        pthread_mutex_lock(&p->lock);
        while (!p->count[slot] && !p->stop) pthread_cond_wait(&p->cond, &p->lock);
        size_t m = p->count[slot];
        uint64_t g0 = p->g0[slot];
        pthread_mutex_unlock(&p->lock);
        if (!m) return NULL; /* stopped, and (batches come in order) nothing left */
        uint32_t dlen = p->chain.dlen;
        for (size_t i = 0; i < m && !p->failed; i++)
            p->failed = chain_step(&p->chain, p->first + (g0 + i) * GRANULE, p->buf[slot] + i * dlen) != 0;
        pthread_mutex_lock(&p->lock);
        p->count[slot] = 0;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

static chain_pipe *pipe_start(uint16_t alg, const uint8_t *rim, uint64_t first)
{
    chain_pipe *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    chain_start(&p->chain, alg, rim);
    p->first = first;
    if (pthread_mutex_init(&p->lock, NULL)) goto no_lock;
    if (pthread_cond_init(&p->cond, NULL)) goto no_cond;
    if (pthread_create(&p->thread, NULL, chain_worker, p)) goto no_thread;
    active_pipe = p;
    return p;
no_thread:
    pthread_cond_destroy(&p->cond);
no_cond:
    pthread_mutex_destroy(&p->lock);
no_lock:
    free(p);
    return NULL; /* no thread: the caller chains in its own */
}

/* The buffer for batch b, once the chain is done with what it held. */
static uint8_t *pipe_slot(chain_pipe *p, uint64_t b)
{
    pthread_mutex_lock(&p->lock);
    while (p->count[b & 1]) pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p->buf[b & 1];
}

static void pipe_put(chain_pipe *p, uint64_t b, uint64_t g0, size_t m)
{
    pthread_mutex_lock(&p->lock);
    p->g0[b & 1] = g0;
    p->count[b & 1] = m;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Stop the chain thread (after it chains what it was given) and free the
 * pipeline; 0, or -1 when a chain step failed. */
static int pipe_finish(chain_pipe *p, uint8_t *rim)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    int failed = p->failed;
    if (rim && !failed) chain_end(&p->chain, rim);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    active_pipe = NULL;
    return failed ? -1 : 0;
}

/* After a siglongjmp out of fr_rim_data: stop its chain thread, keep nothing. */
static void pipe_abandon(void)
{
    if (active_pipe) pipe_finish(active_pipe, NULL);
}

int64_t fr_rim_data(uint16_t alg, uint8_t *rim, const uint8_t *img,
                    uint64_t img_len, uint64_t base, uint8_t *contents_out)
{
    if (!fr_rim_digest_size(alg)) return FR_RIM_BAD_ALG;
    data_chain chain;
    chain_start(&chain, alg, rim);
    uint32_t dlen = chain.dlen;
    uint64_t first = base & ~(uint64_t)(GRANULE - 1);
    uint64_t head = base - first;
    uint64_t n = (head + img_len + GRANULE - 1) / GRANULE;
    chain_pipe *pipe = n >= PIPELINE_MIN ? pipe_start(alg, rim, first) : NULL;
    /* Bytes of a granule outside the image are zero: only the first and the
     * last granule need a padded copy, the others are hashed in place. */
    uint8_t pages[2][GRANULE];
    const uint8_t *src[BATCH];
    uint8_t own[BATCH * MAX_DIGEST];
    int failed = 0;
    for (uint64_t g0 = 0, b = 0; g0 < n && !failed; g0 += BATCH, b++) {
        size_t m = n - g0 < BATCH ? (size_t)(n - g0) : BATCH;
        for (size_t i = 0; i < m; i++) {
            uint64_t start = (g0 + i) * GRANULE; /* offset of the granule from `first` */
            if (start >= head && start - head + GRANULE <= img_len) {
                src[i] = img + (start - head);
                continue;
            }
            uint8_t *page = pages[g0 + i == 0 ? 0 : 1];
            uint64_t lo = start < head ? head - start : 0;
            uint64_t from = start + lo - head;
            uint64_t take = img_len - from < GRANULE - lo ? img_len - from : GRANULE - lo;
            memset(page, 0, GRANULE);
            if (take) memcpy(page + lo, img + from, take); /* an empty image may come as NULL */
            src[i] = page;
        }
        uint8_t *contents = pipe ? pipe_slot(pipe, b) : own;
        if (fr_kernels_hash(alg, src, m, contents)) {
            failed = 1;
            break;
        }
        if (contents_out) memcpy(contents_out + g0 * dlen, contents, m * dlen);
        if (pipe) {
            pipe_put(pipe, b, g0, m);
            continue;
        }
        for (size_t i = 0; i < m && !failed; i++)
            failed = chain_step(&chain, first + (g0 + i) * GRANULE, contents + i * dlen) != 0;
    }
    if (pipe) {
        failed |= pipe_finish(pipe, failed ? NULL : rim) != 0;
        return failed ? FR_RIM_CRYPTO_FAILED : (int64_t)n;
    }
    if (failed) return FR_RIM_CRYPTO_FAILED;
    chain_end(&chain, rim);
    return (int64_t)n;
}

int64_t fr_rim_chain(uint16_t alg, uint8_t *rim, uint64_t ipa0, uint64_t n,
                     const uint8_t *contents)
{
    if (!fr_rim_digest_size(alg)) return FR_RIM_BAD_ALG;
    data_chain chain;
    chain_start(&chain, alg, rim);
    for (uint64_t g = 0; g < n; g++)
        if (chain_step(&chain, ipa0 + g * GRANULE, contents ? contents + g * chain.dlen : NULL))
            return FR_RIM_CRYPTO_FAILED;
    chain_end(&chain, rim);
    return (int64_t)n;
}

/* ---- a mapped file that may shrink underneath ---------------------------- */

/* Armed (per thread) while fr_rim_file hashes a mapping: a SIGBUS there
 * means the file lost pages, and returns to the call instead of killing.
 * The handler is installed once for the process; a SIGBUS that is not ours
 * goes to the handler that was there before (faulthandler's, say). */
static _Thread_local sigjmp_buf *mapping_guard;
static _Thread_local const uint8_t *guarded_start, *guarded_end; /* the mapping it guards */
static struct sigaction previous_sigbus;
static int sigbus_installed;
static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    /* Only a fault on the guarded mapping (a page the file no longer has)
     * jumps: a SIGBUS sent by kill() or raised elsewhere could land while
     * this thread holds the chain pipeline's lock. */
    const uint8_t *at = info ? (const uint8_t *)info->si_addr : NULL;
    if (mapping_guard && info && (info->si_code == BUS_ADRERR || info->si_code == BUS_OBJERR) &&
        at >= guarded_start && at < guarded_end)
        siglongjmp(*mapping_guard, 1);
    if (previous_sigbus.sa_flags & SA_SIGINFO) {
        previous_sigbus.sa_sigaction(sig, info, context);
    } else if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
        previous_sigbus.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); /* the fault repeats with the default action */
    }
}

static void install_sigbus(void)
{
    struct sigaction ours;
    memset(&ours, 0, sizeof(ours));
    ours.sa_sigaction = on_sigbus;
    ours.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&ours.sa_mask);
    sigbus_installed = sigaction(SIGBUS, &ours, &previous_sigbus) == 0;
}

int64_t fr_rim_file(uint16_t alg, uint8_t *rim, int fd, uint64_t img_len,
                    uint64_t base, uint8_t *contents_out)
{
    if (!fr_rim_digest_size(alg)) return FR_RIM_BAD_ALG;
    struct stat st;
    if (fstat(fd, &st)) return FR_RIM_MAP_FAILED;
    /* Shorter than asked: within its last page a mapping would read zeros, not fault. */
    if ((uint64_t)st.st_size < img_len) return FR_RIM_SHORT_FILE;
    if (img_len == 0) return fr_rim_data(alg, rim, NULL, 0, base, contents_out);
    pthread_once(&sigbus_once, install_sigbus);
    if (!sigbus_installed) return FR_RIM_MAP_FAILED;
    void *map = mmap(NULL, (size_t)img_len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return FR_RIM_MAP_FAILED;
    posix_madvise(map, (size_t)img_len, POSIX_MADV_SEQUENTIAL);
    volatile int64_t result; /* volatile: set on both sides of a siglongjmp */
    sigjmp_buf jump;
    uint8_t start[MEASUREMENT_SIZE];
    memcpy(start, rim, MEASUREMENT_SIZE);
    if (sigsetjmp(jump, 1) == 0) {
        guarded_start = map;
        guarded_end = (const uint8_t *)map + img_len;
        mapping_guard = &jump;
        result = fr_rim_data(alg, rim, map, img_len, base, contents_out);
    } else {
        pipe_abandon(); /* a pipelined chain thread, left waiting for batches that will not come */
        memcpy(rim, start, MEASUREMENT_SIZE); /* nothing of a half-hashed image is kept */
        result = FR_RIM_SHORT_FILE;
    }
    mapping_guard = NULL;
    munmap(map, (size_t)img_len);
    return result;
}
