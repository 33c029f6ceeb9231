/* TPM-style PCR replay over framed events (twin: pcr_replay and
 * startup_locality in fastrim/backend/fallback.py). */

#include <string.h>

#include "fastrim.h"
#include "hash.h"
#include "tcg.h"

static const char STARTUP_LOCALITY[16] = "StartupLocality";
#define STARTUP_LOCALITY_EVENT (sizeof(STARTUP_LOCALITY) + 1) /* the signature, then the locality byte */
#define HCRTM_LOCALITY 4
/* PCRs 17 to 22 (the dynamic-launch ones) start as all ones. */
#define FIRST_DRTM_PCR 17
#define LAST_DRTM_PCR 22

uint8_t fr_startup_locality(const uint8_t *buf, const fr_event *events, uint32_t n_events)
{
    int found = 0;
    uint8_t locality = 0;
    for (uint32_t i = 0; i < n_events; i++) {
        const fr_event *e = &events[i];
        if (e->type == EV_EFI_HCRTM_EVENT) return HCRTM_LOCALITY;
        if (!found && e->type == EV_NO_ACTION && e->pcr == 0 && e->data_size == STARTUP_LOCALITY_EVENT &&
            memcmp(buf + e->data_offset, STARTUP_LOCALITY, sizeof(STARTUP_LOCALITY)) == 0) {
            locality = buf[e->data_offset + sizeof(STARTUP_LOCALITY)];
            found = 1;
        }
    }
    return locality;
}

/* The algorithm is usable when libcrypto can hash with it. */
static int hash_supported(uint16_t alg)
{
    fr_hash_ctx h;
    uint8_t scratch[MAX_DIGEST];
    if (fr_hash_init(&h, alg)) return 0;
    return fr_hash_final(&h, scratch) == 0;
}

int fr_pcr_replay(const uint8_t *buf, const fr_event *events, uint32_t n_events,
                  const fr_digest *digests, uint16_t alg, uint32_t dsize,
                  uint8_t locality, uint8_t *pcrs_out, uint32_t *extended)
{
    fr_hash_ctx h;
    /* The digest is written whole into a dsize-byte PCR: the sizes must agree. */
    if (dsize != fr_digest_size(alg) || !hash_supported(alg)) return -1;
    memset(pcrs_out, 0, PCR_COUNT * (size_t)dsize);
    for (int i = FIRST_DRTM_PCR; i <= LAST_DRTM_PCR; i++) memset(pcrs_out + i * dsize, 0xFF, dsize);
    pcrs_out[dsize - 1] = locality;
    *extended = 0;
    for (uint32_t i = 0; i < n_events; i++) {
        const fr_event *e = &events[i];
        if (e->type == EV_NO_ACTION || e->pcr > MAX_PCR) continue;
        for (uint32_t k = 0; k < e->n_digests; k++) {
            const fr_digest *d = &digests[e->first_digest + k];
            if (d->alg != alg || d->size != dsize) continue;
            uint8_t *pcr = pcrs_out + (size_t)e->pcr * dsize;
            if (fr_hash_init(&h, alg)) return -1;
            int failed = fr_hash_update(&h, pcr, dsize);
            failed |= fr_hash_update(&h, buf + d->offset, dsize);
            failed |= fr_hash_final(&h, pcr);
            if (failed) return -1;
            *extended |= 1u << e->pcr;
            break;
        }
    }
    return 0;
}
