/* TCG event-log framing. The pure-Python twin is fastrim/backend/fallback.py:
 * every rule here has its counterpart there, and the tests hold both to the
 * same records, error codes and offsets. Every size in a log is hostile:
 * each is checked against the bytes left before it is used. */

#include <string.h>

#include "fastrim.h"
#include "hash.h"
#include "tcg.h"

static const char SPEC_ID_03[16] = "Spec ID Event03";

/* TCG_PCClientPCREvent: pcr, type, sha1[20], eventSize, event. */
#define LEGACY_HEADER 32
#define LEGACY_DIGEST_AT 8
#define LEGACY_SIZE_AT 28
#define SHA1_SIZE 20
/* TCG_PCR_EVENT2: pcr, type, count, {algId, digest}[count], eventSize, event. */
#define AGILE_HEADER 12
/* Spec ID Event03: signature[16], platformClass, versions, uintnSize (24
 * bytes), numberOfAlgorithms, {algId, digestSize}[n], vendorInfoSize. */
#define SPEC_ID_COUNT_AT 24
#define SPEC_ID_ALGS_AT 28
#define SPEC_ID_MIN (SPEC_ID_ALGS_AT + 1)
#define MAX_SPEC_ID_ALGS 16

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

/* Everything the record framers share: the log, the limit, the tables they
 * fill and the result they report into. */
typedef struct {
    const uint8_t *buf;
    uint64_t len;
    uint32_t max_event_size;
    fr_event *events;
    uint32_t ev_cap;
    fr_digest *digests;
    uint32_t dg_cap;
    fr_result *res;
} framer;

/* The fixed head of the record at rec (header bytes, PCR first): there in
 * full, and naming a PCR. */
static int check_head(const framer *f, uint64_t rec, uint64_t header, uint32_t *pcr)
{
    if (f->len - rec < header) return fail(f->res, FR_ERR_TRUNCATED, rec, header, f->len - rec);
    *pcr = rd32(f->buf + rec);
    if (!pcr_ok(*pcr)) return fail(f->res, FR_ERR_BAD_PCR, rec, *pcr, MAX_PCR);
    return FR_OK;
}

/* Checks the event data size of the record at rec whose size field is at p. */
static int check_data_size(const framer *f, uint64_t rec, uint64_t p, uint32_t *size)
{
    if (f->len - p < 4) return fail(f->res, FR_ERR_TRUNCATED, rec, 4, f->len - p);
    *size = rd32(f->buf + p);
    if (*size > f->max_event_size) return fail(f->res, FR_ERR_EVENT_TOO_LARGE, rec, *size, f->max_event_size);
    if (*size > f->len - p - 4) return fail(f->res, FR_ERR_TRUNCATED, rec, *size, f->len - p - 4);
    return FR_OK;
}

/* The event of the record at rec, whose digests are those added since first_digest. */
static int add_event(const framer *f, uint64_t rec, uint32_t pcr, uint32_t type, uint32_t first_digest,
                     uint64_t data_offset, uint32_t data_size)
{
    fr_result *res = f->res;
    if (res->n_events >= f->ev_cap) return fail(res, FR_ERR_CAPACITY, rec, res->n_events, f->ev_cap);
    fr_event *e = &f->events[res->n_events++];
    e->offset = rec;
    e->pcr = pcr;
    e->type = type;
    e->first_digest = first_digest;
    e->n_digests = res->n_digests - first_digest;
    e->data_offset = data_offset;
    e->data_size = data_size;
    return FR_OK;
}

static int add_digest(const framer *f, uint64_t rec, uint16_t alg, uint16_t size, uint64_t offset)
{
    fr_result *res = f->res;
    if (res->n_digests >= f->dg_cap) return fail(res, FR_ERR_CAPACITY, rec, res->n_digests, f->dg_cap);
    fr_digest *d = &f->digests[res->n_digests++];
    d->alg = alg;
    d->size = size;
    d->offset = offset;
    d->reserved = 0;
    return FR_OK;
}

static int frame_legacy_record(const framer *f, uint64_t rec)
{
    uint32_t pcr, size;
    int err;
    if ((err = check_head(f, rec, LEGACY_HEADER, &pcr))) return err;
    if ((err = check_data_size(f, rec, rec + LEGACY_SIZE_AT, &size))) return err;
    uint32_t first = f->res->n_digests;
    if ((err = add_digest(f, rec, ALG_SHA1, SHA1_SIZE, rec + LEGACY_DIGEST_AT))) return err;
    return add_event(f, rec, pcr, rd32(f->buf + rec + 4), first, rec + LEGACY_HEADER, size);
}

/* The Spec ID Event03 body: the table of digest algorithms and sizes. */
static int parse_spec_id(const uint8_t *body, uint32_t size, fr_result *res)
{
    if (size < SPEC_ID_MIN) return fail(res, FR_ERR_BAD_SPEC_ID, 0, size, SPEC_ID_MIN);
    uint32_t n = rd32(body + SPEC_ID_COUNT_AT);
    if (n == 0 || n > MAX_SPEC_ID_ALGS) return fail(res, FR_ERR_BAD_SPEC_ID, 0, n, MAX_SPEC_ID_ALGS);
    uint32_t vendor_at = SPEC_ID_ALGS_AT + 4 * n;
    if (vendor_at + 1 > size) return fail(res, FR_ERR_BAD_SPEC_ID, 0, vendor_at + 1, size);
    for (uint32_t i = 0; i < n; i++) {
        uint16_t alg = rd16(body + SPEC_ID_ALGS_AT + 4 * i), dsize = rd16(body + SPEC_ID_ALGS_AT + 2 + 4 * i);
        if (alg == 0 || dsize == 0 || dsize > MAX_DIGEST) return fail(res, FR_ERR_BAD_SPEC_ID, 0, alg, dsize);
        /* A known algorithm at another size would have its digests hashed (PCR replay) at the wrong length. */
        uint32_t known = fr_digest_size(alg);
        if (known && known != dsize) return fail(res, FR_ERR_BAD_SPEC_ID, 0, alg, dsize);
        for (uint32_t j = 0; j < i; j++)
            if (res->alg_ids[j] == alg) return fail(res, FR_ERR_BAD_SPEC_ID, 0, alg, dsize);
        res->alg_ids[i] = alg;
        res->alg_sizes[i] = dsize;
    }
    res->n_algs = n;
    uint32_t vendor = body[vendor_at];
    if (vendor_at + 1 + vendor > size) return fail(res, FR_ERR_BAD_SPEC_ID, 0, vendor_at + 1 + vendor, size);
    return FR_OK;
}

static int frame_agile_record(const framer *f, uint64_t rec)
{
    const uint8_t *buf = f->buf;
    fr_result *res = f->res;
    uint32_t pcr, size;
    int err;
    if ((err = check_head(f, rec, AGILE_HEADER, &pcr))) return err;
    uint32_t type = rd32(buf + rec + 4), count = rd32(buf + rec + 8);
    if (count > res->n_algs) return fail(res, FR_ERR_TOO_MANY_DIGESTS, rec, count, res->n_algs);
    uint64_t p = rec + AGILE_HEADER;
    uint32_t first = res->n_digests;
    for (uint32_t i = 0; i < count; i++) {
        if (f->len - p < 2) return fail(res, FR_ERR_TRUNCATED, rec, 2, f->len - p);
        uint16_t alg = rd16(buf + p);
        uint16_t dsize = 0;
        for (uint32_t j = 0; j < res->n_algs; j++)
            if (res->alg_ids[j] == alg) dsize = res->alg_sizes[j];
        /* QEMU's EV_NO_ACTION events carry algId 0 with the size of the
         * Spec ID algorithm in the same position. */
        if (dsize == 0 && alg == 0 && type == EV_NO_ACTION) dsize = res->alg_sizes[i];
        if (dsize == 0) return fail(res, FR_ERR_UNKNOWN_ALG, rec, alg, 0);
        if (f->len - p - 2 < dsize) return fail(res, FR_ERR_TRUNCATED, rec, dsize, f->len - p - 2);
        if ((err = add_digest(f, rec, alg, dsize, p + 2))) return err;
        p += 2 + (uint64_t)dsize;
    }
    if ((err = check_data_size(f, rec, p, &size))) return err;
    return add_event(f, rec, pcr, type, first, p + 4, size);
}

int fr_frame(const uint8_t *buf, uint64_t len, uint32_t max_event_size,
             fr_event *events, uint32_t ev_cap,
             fr_digest *digests, uint32_t dg_cap, fr_result *res)
{
    const framer f = {buf, len, max_event_size, events, ev_cap, digests, dg_cap, res};
    int err;
    memset(res, 0, sizeof(*res));
    uint64_t pad = padding_start(buf, len);
    if (pad == 0) return fail(res, FR_ERR_EMPTY, 0, len, 0);

    /* The first record is always in the legacy layout; a Spec ID Event03 in
     * it announces the crypto-agile format for the rest. */
    if ((err = frame_legacy_record(&f, 0))) return err;
    const fr_event *first = &events[0];
    int agile = first->type == EV_NO_ACTION && first->data_size >= sizeof(SPEC_ID_03) &&
                memcmp(buf + first->data_offset, SPEC_ID_03, sizeof(SPEC_ID_03)) == 0;
    res->format = agile ? FR_FORMAT_CRYPTO_AGILE : FR_FORMAT_SHA1_LEGACY;
    if (agile) {
        if ((err = parse_spec_id(buf + first->data_offset, first->data_size, res))) return err;
    } else {
        res->n_algs = 1;
        res->alg_ids[0] = ALG_SHA1;
        res->alg_sizes[0] = SHA1_SIZE;
    }

    uint64_t rec = first->data_offset + first->data_size;
    while (rec < pad) {
        /* A record of zeros up to its digests or data ends the log early. */
        uint64_t zero_record = agile ? AGILE_HEADER + 4 : LEGACY_HEADER;
        if (len - rec >= zero_record && all_zero(buf + rec, zero_record)) break;
        if ((err = agile ? frame_agile_record(&f, rec) : frame_legacy_record(&f, rec))) return err;
        const fr_event *last = &events[res->n_events - 1];
        rec = last->data_offset + last->data_size;
    }
    res->end = rec;
    return FR_OK;
}
