/* fastrim C core. The pure-Python twin is fastrim/fallback.py: every rule
 * here has its counterpart there, and the tests hold both to the same bytes,
 * error codes and offsets. Every size in a log is hostile: each is checked
 * against the bytes left before it is used. */

#include <string.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "fastrim.h"
#include "lanes.h"

#define ALG_SHA1 0x0004
#define ALG_SHA256 0x000B
#define ALG_SHA384 0x000C
#define ALG_SHA512 0x000D
#define ALG_SM3_256 0x0012

#define EV_NO_ACTION 3
#define GRANULE 4096
#define DESC_SIZE 256
#define MAX_PCR 23
#define PCR_NONE 0xFFFFFFFFu

static const char SPEC_ID_03[16] = "Spec ID Event03";

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int fail(fr_result *res, int err, uint64_t offset, uint64_t value, uint64_t limit)
{
    res->err = err;
    res->err_offset = offset;
    res->err_value = value;
    res->err_limit = limit;
    return err;
}

/* The end of buf once a trailing run of `fill` bytes is cut off. Eight
 * bytes a step: a TDX log carries 240 KiB of padding. */
static uint64_t trim_run(const uint8_t *buf, uint64_t len, uint8_t fill)
{
    uint64_t word;
    memset(&word, fill, sizeof(word));
    while (len >= 8 && memcmp(buf + len - 8, &word, 8) == 0) len -= 8;
    while (len > 0 && buf[len - 1] == fill) len--;
    return len;
}

/* The start of the trailing run of 0x00 or 0xFF bytes: firmware pads the log
 * area with one or the other, and the log ends where the padding starts. */
static uint64_t padding_start(const uint8_t *buf, uint64_t len)
{
    uint64_t zero_end = trim_run(buf, len, 0x00), ff_end = trim_run(buf, len, 0xFF);
    return zero_end < ff_end ? zero_end : ff_end;
}

static int all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static int pcr_ok(uint32_t pcr) { return pcr <= MAX_PCR || pcr == PCR_NONE; }

/* Checks the event data size of the record at rec whose size field is at p. */
static int check_data_size(const uint8_t *buf, uint64_t len, uint64_t rec, uint64_t p,
                           uint32_t max_event_size, fr_result *res, uint32_t *size)
{
    if (len - p < 4) return fail(res, FR_ERR_TRUNCATED, rec, 4, len - p);
    *size = rd32(buf + p);
    if (*size > max_event_size) return fail(res, FR_ERR_EVENT_TOO_LARGE, rec, *size, max_event_size);
    if (*size > len - p - 4) return fail(res, FR_ERR_TRUNCATED, rec, *size, len - p - 4);
    return FR_OK;
}

static int add_event(fr_event *events, uint32_t ev_cap, fr_result *res, uint64_t rec,
                     uint32_t pcr, uint32_t type, uint32_t first_digest, uint64_t data_offset,
                     uint32_t data_size)
{
    if (res->n_events >= ev_cap) return fail(res, FR_ERR_CAPACITY, rec, res->n_events, ev_cap);
    fr_event *e = &events[res->n_events++];
    e->offset = rec;
    e->pcr = pcr;
    e->type = type;
    e->first_digest = first_digest;
    e->n_digests = res->n_digests - first_digest;
    e->data_offset = data_offset;
    e->data_size = data_size;
    e->record_size = (uint32_t)(data_offset + data_size - rec);
    return FR_OK;
}

static int add_digest(fr_digest *digests, uint32_t dg_cap, fr_result *res, uint64_t rec,
                      uint16_t alg, uint16_t size, uint64_t offset)
{
    if (res->n_digests >= dg_cap) return fail(res, FR_ERR_CAPACITY, rec, res->n_digests, dg_cap);
    fr_digest *d = &digests[res->n_digests++];
    d->alg = alg;
    d->size = size;
    d->offset = offset;
    d->reserved = 0;
    return FR_OK;
}

/* TCG_PCClientPCREvent: pcr, type, sha1[20], eventSize, event. */
static int frame_legacy_record(const uint8_t *buf, uint64_t len, uint64_t rec,
                               uint32_t max_event_size, fr_event *events, uint32_t ev_cap,
                               fr_digest *digests, uint32_t dg_cap, fr_result *res)
{
    uint32_t size;
    int err;
    if (len - rec < 32) return fail(res, FR_ERR_TRUNCATED, rec, 32, len - rec);
    uint32_t pcr = rd32(buf + rec);
    if (!pcr_ok(pcr)) return fail(res, FR_ERR_BAD_PCR, rec, pcr, MAX_PCR);
    if ((err = check_data_size(buf, len, rec, rec + 28, max_event_size, res, &size))) return err;
    uint32_t first = res->n_digests;
    if ((err = add_digest(digests, dg_cap, res, rec, ALG_SHA1, 20, rec + 8))) return err;
    return add_event(events, ev_cap, res, rec, pcr, rd32(buf + rec + 4), first, rec + 32, size);
}

/* The Spec ID Event03 body: the table of digest algorithms and sizes. */
static int parse_spec_id(const uint8_t *body, uint32_t size, fr_result *res)
{
    if (size < 29) return fail(res, FR_ERR_BAD_SPEC_ID, 0, size, 29);
    uint32_t n = rd32(body + 24);
    if (n == 0 || n > 16) return fail(res, FR_ERR_BAD_SPEC_ID, 0, n, 16);
    if (28 + 4 * n + 1 > size) return fail(res, FR_ERR_BAD_SPEC_ID, 0, 28 + 4 * n + 1, size);
    for (uint32_t i = 0; i < n; i++) {
        uint16_t alg = rd16(body + 28 + 4 * i), dsize = rd16(body + 30 + 4 * i);
        if (alg == 0 || dsize == 0 || dsize > 64) return fail(res, FR_ERR_BAD_SPEC_ID, 0, alg, dsize);
        for (uint32_t j = 0; j < i; j++)
            if (res->alg_ids[j] == alg) return fail(res, FR_ERR_BAD_SPEC_ID, 0, alg, dsize);
        res->alg_ids[i] = alg;
        res->alg_sizes[i] = dsize;
    }
    res->n_algs = n;
    uint32_t vendor = body[28 + 4 * n];
    if (28 + 4 * n + 1 + vendor > size)
        return fail(res, FR_ERR_BAD_SPEC_ID, 0, 28 + 4 * n + 1 + vendor, size);
    return FR_OK;
}

/* TCG_PCR_EVENT2: pcr, type, count, {algId, digest}[count], eventSize, event. */
static int frame_agile_record(const uint8_t *buf, uint64_t len, uint64_t rec,
                              uint32_t max_event_size, fr_event *events, uint32_t ev_cap,
                              fr_digest *digests, uint32_t dg_cap, fr_result *res)
{
    uint32_t size;
    int err;
    if (len - rec < 12) return fail(res, FR_ERR_TRUNCATED, rec, 12, len - rec);
    uint32_t pcr = rd32(buf + rec), type = rd32(buf + rec + 4), count = rd32(buf + rec + 8);
    if (!pcr_ok(pcr)) return fail(res, FR_ERR_BAD_PCR, rec, pcr, MAX_PCR);
    if (count > res->n_algs) return fail(res, FR_ERR_TOO_MANY_DIGESTS, rec, count, res->n_algs);
    uint64_t p = rec + 12;
    uint32_t first = res->n_digests;
    for (uint32_t i = 0; i < count; i++) {
        if (len - p < 2) return fail(res, FR_ERR_TRUNCATED, rec, 2, len - p);
        uint16_t alg = rd16(buf + p);
        uint16_t dsize = 0;
        for (uint32_t j = 0; j < res->n_algs; j++)
            if (res->alg_ids[j] == alg) dsize = res->alg_sizes[j];
        /* QEMU's EV_NO_ACTION events carry algId 0 with the size of the
         * Spec ID algorithm in the same position. */
        if (dsize == 0 && alg == 0 && type == EV_NO_ACTION) dsize = res->alg_sizes[i];
        if (dsize == 0) return fail(res, FR_ERR_UNKNOWN_ALG, rec, alg, 0);
        if (len - p - 2 < dsize) return fail(res, FR_ERR_TRUNCATED, rec, dsize, len - p - 2);
        if ((err = add_digest(digests, dg_cap, res, rec, alg, dsize, p + 2))) return err;
        p += 2 + (uint64_t)dsize;
    }
    if ((err = check_data_size(buf, len, rec, p, max_event_size, res, &size))) return err;
    return add_event(events, ev_cap, res, rec, pcr, type, first, p + 4, size);
}

int fr_frame(const uint8_t *buf, uint64_t len, uint32_t max_event_size,
             fr_event *events, uint32_t ev_cap,
             fr_digest *digests, uint32_t dg_cap, fr_result *res)
{
    int err;
    memset(res, 0, sizeof(*res));
    uint64_t pad = padding_start(buf, len);
    if (pad == 0) return fail(res, FR_ERR_EMPTY, 0, len, 0);

    /* The first record is always in the legacy layout; a Spec ID Event03 in
     * it announces the crypto-agile format for the rest. */
    if ((err = frame_legacy_record(buf, len, 0, max_event_size, events, ev_cap, digests, dg_cap, res)))
        return err;
    const fr_event *first = &events[0];
    int agile = first->type == EV_NO_ACTION && first->data_size >= 16 &&
                memcmp(buf + first->data_offset, SPEC_ID_03, 16) == 0;
    res->format = agile ? FR_FORMAT_CRYPTO_AGILE : FR_FORMAT_SHA1_LEGACY;
    if (agile) {
        if ((err = parse_spec_id(buf + first->data_offset, first->data_size, res))) return err;
    } else {
        res->n_algs = 1;
        res->alg_ids[0] = ALG_SHA1;
        res->alg_sizes[0] = 20;
    }

    uint64_t rec = first->record_size;
    while (rec < pad) {
        uint64_t zero_record = agile ? 16 : 32;
        if (len - rec >= zero_record && all_zero(buf + rec, zero_record)) break;
        err = agile ? frame_agile_record(buf, len, rec, max_event_size, events, ev_cap, digests, dg_cap, res)
                    : frame_legacy_record(buf, len, rec, max_event_size, events, ev_cap, digests, dg_cap, res);
        if (err) return err;
        rec += events[res->n_events - 1].record_size;
    }
    res->end = rec;
    return FR_OK;
}

/* ---- hashing ---------------------------------------------------------- */

typedef struct {
    uint16_t alg;
    union {
        SHA_CTX sha1;
        SHA256_CTX sha256;
        SHA512_CTX sha512;
    } u;
    EVP_MD_CTX *evp; /* algorithms without a low-level API (SM3) */
} hash_ctx;

/* The low-level calls skip EVP's provider dispatch, which costs more than
 * the hashing itself for the 64- to 256-byte messages of a replay. */
static int hash_init(hash_ctx *h, uint16_t alg)
{
    h->alg = alg;
    h->evp = NULL;
    switch (alg) {
    case ALG_SHA1: return SHA1_Init(&h->u.sha1) ? 0 : -1;
    case ALG_SHA256: return SHA256_Init(&h->u.sha256) ? 0 : -1;
    case ALG_SHA384: return SHA384_Init(&h->u.sha512) ? 0 : -1;
    case ALG_SHA512: return SHA512_Init(&h->u.sha512) ? 0 : -1;
    case ALG_SM3_256: {
        const EVP_MD *md = EVP_get_digestbyname("SM3");
        if (!md || !(h->evp = EVP_MD_CTX_new())) return -1;
        if (!EVP_DigestInit_ex(h->evp, md, NULL)) {
            EVP_MD_CTX_free(h->evp);
            return -1;
        }
        return 0;
    }
    default: return -1;
    }
}

static void hash_update(hash_ctx *h, const void *p, size_t n)
{
    switch (h->alg) {
    case ALG_SHA1: SHA1_Update(&h->u.sha1, p, n); break;
    case ALG_SHA256: SHA256_Update(&h->u.sha256, p, n); break;
    case ALG_SHA384: SHA384_Update(&h->u.sha512, p, n); break;
    case ALG_SHA512: SHA512_Update(&h->u.sha512, p, n); break;
    default: EVP_DigestUpdate(h->evp, p, n); break;
    }
}

static void hash_final(hash_ctx *h, uint8_t *out)
{
    switch (h->alg) {
    case ALG_SHA1: SHA1_Final(out, &h->u.sha1); break;
    case ALG_SHA256: SHA256_Final(out, &h->u.sha256); break;
    case ALG_SHA384: SHA384_Final(out, &h->u.sha512); break;
    case ALG_SHA512: SHA512_Final(out, &h->u.sha512); break;
    default:
        EVP_DigestFinal_ex(h->evp, out, NULL);
        EVP_MD_CTX_free(h->evp);
        break;
    }
}

static int hash_supported(uint16_t alg)
{
    hash_ctx h;
    uint8_t scratch[64];
    if (hash_init(&h, alg)) return 0;
    hash_final(&h, scratch);
    return 1;
}

/* Hash for the RIM algorithms; returns the digest length. Not the one-shot
 * SHA256(): in OpenSSL 3 it fetches the algorithm from a provider on every
 * call, which costs a third of a granule's hashing. */
static uint32_t rim_hash(uint16_t alg, const uint8_t *p, size_t n, uint8_t *out)
{
    if (alg == ALG_SHA256) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, p, n);
        SHA256_Final(out, &c);
        return 32;
    }
    SHA512_CTX c;
    SHA512_Init(&c);
    SHA512_Update(&c, p, n);
    SHA512_Final(out, &c);
    return 64;
}

/* ---- PCR replay -------------------------------------------------------- */

#define EV_EFI_HCRTM_EVENT 0x80000010u
static const char STARTUP_LOCALITY[16] = "StartupLocality";

uint8_t fr_startup_locality(const uint8_t *buf, const fr_event *events, uint32_t n_events)
{
    int found = 0;
    uint8_t locality = 0;
    for (uint32_t i = 0; i < n_events; i++) {
        const fr_event *e = &events[i];
        if (e->type == EV_EFI_HCRTM_EVENT) return 4;
        if (!found && e->type == EV_NO_ACTION && e->pcr == 0 && e->data_size == 17 &&
            memcmp(buf + e->data_offset, STARTUP_LOCALITY, 16) == 0) {
            locality = buf[e->data_offset + 16];
            found = 1;
        }
    }
    return locality;
}

int fr_pcr_replay(const uint8_t *buf, const fr_event *events, uint32_t n_events,
                  const fr_digest *digests, uint16_t alg, uint32_t dsize,
                  uint8_t locality, uint8_t *pcrs_out, uint32_t *extended)
{
    hash_ctx h;
    if (dsize == 0 || dsize > 64 || !hash_supported(alg)) return -1;
    memset(pcrs_out, 0, 24 * (size_t)dsize);
    for (int i = 17; i <= 22; i++) memset(pcrs_out + i * dsize, 0xFF, dsize);
    pcrs_out[dsize - 1] = locality;
    *extended = 0;
    for (uint32_t i = 0; i < n_events; i++) {
        const fr_event *e = &events[i];
        if (e->type == EV_NO_ACTION || e->pcr > MAX_PCR) continue;
        for (uint32_t k = 0; k < e->n_digests; k++) {
            const fr_digest *d = &digests[e->first_digest + k];
            if (d->alg != alg || d->size != dsize) continue;
            uint8_t *pcr = pcrs_out + (size_t)e->pcr * dsize;
            if (hash_init(&h, alg)) return -1;
            hash_update(&h, pcr, dsize);
            hash_update(&h, buf + d->offset, dsize);
            hash_final(&h, pcr);
            *extended |= 1u << e->pcr;
            break;
        }
    }
    return 0;
}

/* ---- RIM: RMI_DATA_CREATE ---------------------------------------------- */

static int rim_alg_ok(uint16_t alg) { return alg == ALG_SHA256 || alg == ALG_SHA512; }

/* The RMI_DATA_CREATE descriptor (desc_type 0), kept across granules: the
 * RIM field at 0x10 is where each step's hash lands, so only ipa, flags and
 * content change between steps. */
typedef struct {
    uint16_t alg;
    uint32_t dlen;
    uint8_t desc[DESC_SIZE];
} data_chain;

static void chain_start(data_chain *c, uint16_t alg, const uint8_t *rim)
{
    c->alg = alg;
    c->dlen = alg == ALG_SHA256 ? 32 : 64;
    memset(c->desc, 0, DESC_SIZE);
    c->desc[0x08] = DESC_SIZE & 0xFF;
    c->desc[0x09] = DESC_SIZE >> 8;
    memcpy(c->desc + 0x10, rim, 64);
}

/* content NULL: the granule is created unmeasured (flags 0, content zero). */
static void chain_step(data_chain *c, uint64_t ipa, const uint8_t *content)
{
    wr64(c->desc + 0x50, ipa);
    wr64(c->desc + 0x58, content ? 1 : 0);
    if (content)
        memcpy(c->desc + 0x60, content, c->dlen);
    else
        memset(c->desc + 0x60, 0, c->dlen);
    uint8_t next[64] = {0}; /* a measurement is the digest padded to 64 bytes */
    if (c->alg == ALG_SHA256 && fr_hash_kernel(ALG_SHA256) == FR_KERNEL_MULTILANE)
        fr_lanes_sha256_256(c->desc, next); /* no OpenSSL call overhead for 5 blocks */
    else
        rim_hash(c->alg, c->desc, DESC_SIZE, next);
    memcpy(c->desc + 0x10, next, 64);
}

static void chain_end(const data_chain *c, uint8_t *rim) { memcpy(rim, c->desc + 0x10, 64); }

/* ---- granule content hashing: OpenSSL one at a time, or SHA-NI lanes ---- */

static int kernel = FR_KERNEL_OPENSSL;
/* What the CPU runs, read once: cpuid can trap to the hypervisor in a VM. */
static int lanes256_ok = -1, lanes512_ok = -1;

int fr_set_hash_kernel(int requested)
{
    if (lanes256_ok < 0) {
        lanes256_ok = fr_lanes_sha256_supported();
        lanes512_ok = fr_lanes_sha512_supported();
    }
    int multilane_ok = lanes256_ok || lanes512_ok;
    if (requested == FR_KERNEL_AUTO)
        requested = multilane_ok ? FR_KERNEL_MULTILANE : FR_KERNEL_OPENSSL;
    if (requested == FR_KERNEL_MULTILANE && !multilane_ok)
        return -1;
    if (requested != FR_KERNEL_OPENSSL && requested != FR_KERNEL_MULTILANE)
        return -1;
    kernel = requested;
    return kernel;
}

int fr_hash_kernel(uint16_t alg)
{
    if (kernel != FR_KERNEL_MULTILANE) return FR_KERNEL_OPENSSL;
    return (alg == ALG_SHA256 ? lanes256_ok : lanes512_ok) ? FR_KERNEL_MULTILANE : FR_KERNEL_OPENSSL;
}

static void hash_granules(uint16_t alg, const uint8_t *const *src, size_t n, uint8_t *out)
{
    if (fr_hash_kernel(alg) == FR_KERNEL_MULTILANE) {
        if (alg == ALG_SHA256)
            fr_lanes_sha256_granules(src, n, out);
        else
            fr_lanes_sha512_granules(src, n, out);
        return;
    }
    uint32_t dlen = alg == ALG_SHA256 ? 32 : 64;
    for (size_t i = 0; i < n; i++) rim_hash(alg, src[i], GRANULE, out + i * dlen);
}

/* Granules hashed per batch: their content hashes are computed together
 * (lanes), then chained in order. */
#define BATCH 64

int64_t fr_rim_data(uint16_t alg, uint8_t *rim, const uint8_t *img,
                    uint64_t img_len, uint64_t base, uint8_t *contents_out)
{
    if (!rim_alg_ok(alg)) return -1;
    data_chain chain;
    chain_start(&chain, alg, rim);
    uint32_t dlen = chain.dlen;
    uint64_t first = base & ~(uint64_t)(GRANULE - 1);
    uint64_t head = base - first;
    uint64_t n = (head + img_len + GRANULE - 1) / GRANULE;
    /* Bytes of a granule outside the image are zero: only the first and the
     * last granule need a padded copy, the others are hashed in place. */
    uint8_t pages[2][GRANULE];
    const uint8_t *src[BATCH];
    uint8_t contents[BATCH * 64];
    for (uint64_t g0 = 0; g0 < n; g0 += BATCH) {
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
            memcpy(page + lo, img + from, take);
            src[i] = page;
        }
        hash_granules(alg, src, m, contents);
        if (contents_out) memcpy(contents_out + g0 * dlen, contents, m * dlen);
        for (size_t i = 0; i < m; i++)
            chain_step(&chain, first + (g0 + i) * GRANULE, contents + i * dlen);
    }
    chain_end(&chain, rim);
    return (int64_t)n;
}

int64_t fr_rim_chain(uint16_t alg, uint8_t *rim, uint64_t ipa0, uint64_t n,
                     const uint8_t *contents)
{
    if (!rim_alg_ok(alg)) return -1;
    data_chain chain;
    chain_start(&chain, alg, rim);
    for (uint64_t g = 0; g < n; g++)
        chain_step(&chain, ipa0 + g * GRANULE, contents ? contents + g * chain.dlen : NULL);
    chain_end(&chain, rim);
    return (int64_t)n;
}
