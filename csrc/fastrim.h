/* fastrim C core: the interface the cffi wrapper (fastrim/backend/native.py)
 * calls. framing.c frames TCG event logs, pcr.c replays PCR banks, rim.c
 * runs the RMI_DATA_CREATE granule loop; kernels.c the granule hashing
 * kernels; hash.c, sha2.c and lanes_*.c are internal.
 *
 * These declarations are also fed to cffi's cdef (see build_ext.py), so they
 * stay within the subset of C that cffi parses: no macros with expressions,
 * no inline functions. */

#include <stdint.h>

enum {
    FR_FORMAT_CRYPTO_AGILE = 1,
    FR_FORMAT_SHA1_LEGACY = 2
};

/* Errors found in a log. fastrim/errors.py (FramingFault) turns them into
 * dotted codes; tests/test_backends.py holds both to the same numbers. */
enum {
    FR_OK = 0,
    FR_ERR_CAPACITY = 1,        /* tables too small: not a log error */
    FR_ERR_EMPTY = 2,
    FR_ERR_TRUNCATED = 3,
    FR_ERR_EVENT_TOO_LARGE = 4,
    FR_ERR_TOO_MANY_DIGESTS = 5,
    FR_ERR_UNKNOWN_ALG = 6,
    FR_ERR_BAD_SPEC_ID = 7,
    FR_ERR_BAD_PCR = 8
};

/* Where each record of the log starts and what it holds: offsets into the
 * caller's buffer, never copies. */
typedef struct {
    uint64_t offset;        /* first byte of the record */
    uint64_t data_offset;   /* first byte of event[] */
    uint32_t pcr;
    uint32_t type;
    uint32_t data_size;
    uint32_t first_digest;  /* index into the digest table */
    uint32_t n_digests;
} fr_event;

typedef struct {
    uint64_t offset;        /* first byte of the digest value */
    uint16_t alg;
    uint16_t size;
    uint32_t reserved;
} fr_digest;

typedef struct {
    int32_t format;         /* FR_FORMAT_* */
    uint32_t n_algs;        /* Spec ID table; 1 (sha1) for legacy logs */
    uint16_t alg_ids[16];
    uint16_t alg_sizes[16];
    uint64_t end;           /* offset where the log ended */
    uint32_t n_events;
    uint32_t n_digests;
    int32_t err;            /* FR_ERR_* */
    uint64_t err_offset;    /* record in which the error was found */
    uint64_t err_value;     /* the offending value (a size, count or algId) */
    uint64_t err_limit;     /* what it was checked against */
} fr_result;

/* Frame a whole log. Returns err (also stored in res->err). FR_ERR_CAPACITY
 * means the tables were too small: call again with larger ones. */
int fr_frame(const uint8_t *buf, uint64_t len, uint32_t max_event_size,
             fr_event *events, uint32_t ev_cap,
             fr_digest *digests, uint32_t dg_cap, fr_result *res);

/* The locality PCR0 starts from: 4 after an H-CRTM event, else the byte of
 * a StartupLocality EV_NO_ACTION event at PCR 0, else 0. */
uint8_t fr_startup_locality(const uint8_t *buf, const fr_event *events, uint32_t n_events);

/* TPM-style replay of one bank over framed events. pcrs_out holds 24 PCRs of
 * dsize bytes; bit i of *extended is set when PCR i received an extend.
 * Returns 0, or -1 when libcrypto has no such algorithm. */
int fr_pcr_replay(const uint8_t *buf, const fr_event *events, uint32_t n_events,
                  const fr_digest *digests, uint16_t alg, uint32_t dsize,
                  uint8_t locality, uint8_t *pcrs_out, uint32_t *extended);

/* What fr_rim_data and fr_rim_chain return instead of a granule count. */
enum {
    FR_RIM_BAD_ALG = -1,       /* not a RIM algorithm: refused, nothing hashed */
    FR_RIM_CRYPTO_FAILED = -2, /* libcrypto reported a failure */
    FR_RIM_SHORT_FILE = -3,    /* fr_rim_file: the file ended (was truncated) before img_len bytes */
    FR_RIM_MAP_FAILED = -4     /* fr_rim_file: the file could not be mapped */
};

/* RMI_DATA_CREATE for every granule an image covers, in one call: the image
 * (img, img_len) is loaded at base. rim is the 64-byte measurement, updated
 * in place. When contents_out is not NULL it receives each granule's content
 * hash (dlen bytes each) for the content cache. alg is a TPM algId
 * (0x000B or 0x000D). Returns the number of granules, or FR_RIM_*. */
int64_t fr_rim_data(uint16_t alg, uint8_t *rim, const uint8_t *img,
                    uint64_t img_len, uint64_t base, uint8_t *contents_out);

/* fr_rim_data over the first img_len bytes of the open file fd, mapped
 * read-only in place. A file truncated while it is hashed would fault on
 * the missing pages (SIGBUS); that fault is caught and reported as
 * FR_RIM_SHORT_FILE instead of killing the process. */
int64_t fr_rim_file(uint16_t alg, uint8_t *rim, int fd, uint64_t img_len,
                    uint64_t base, uint8_t *contents_out);

/* Granule content hashing kernels: "openssl" (one granule at a time) and,
 * on x86-64, "sha-ni", "avx2" and "avx512" (several at once, in lanes). A
 * kernel serves an algorithm (SHA-256, SHA-384, SHA-512) only where the CPU
 * runs it and its known-answer self-test against OpenSSL passed; the
 * self-test runs once per process, on first use. */
int fr_kernel_count(void);
const char *fr_kernel_name(int k);

/* Granules kernel k hashes per pass for alg; 0 when it does not implement
 * alg or this CPU cannot run it. */
int fr_kernel_lanes(int k, uint16_t alg);

/* 1 when kernel k passed its self-test for alg, 0 otherwise. */
int fr_kernel_selftest(int k, uint16_t alg);

/* Hash alg's granules with kernel k from now on (-1: the default again):
 * 0, or -1 when k cannot serve alg (not on this CPU, or its self-test failed). */
int fr_kernel_select(uint16_t alg, int k);

/* The kernel hashing alg's granules now (until one is selected: the widest
 * that serves it); -1 for an algorithm that is not a RIM algorithm. */
int fr_kernel_selected(uint16_t alg);

/* n granules (src[i], 4096 bytes each) through kernel k, selected or not
 * (to time it): 0, or -1. */
int fr_kernel_granules(int k, uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out);

/* A test hook: from now on kernel k flips one bit of its output, and its
 * self-test runs again, as a kernel that is wrong on this CPU would. */
void fr_kernel_test_break(int k);

/* The descriptor chain alone for n granules from ipa0: with contents (n
 * content hashes of dlen bytes) they are measured, with NULL unmeasured.
 * Returns n, or FR_RIM_*. */
int64_t fr_rim_chain(uint16_t alg, uint8_t *rim, uint64_t ipa0, uint64_t n,
                     const uint8_t *contents);
