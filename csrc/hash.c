/* Hashing with OpenSSL's libcrypto: PCR banks (any algorithm a log may
 * carry) and the RIM algorithms. The low-level SHA*_ calls skip EVP's
 * provider dispatch, which costs more than the hashing itself for the 64- to
 * 256-byte messages of a replay. */

#include "hash.h"
#include "tcg.h"

int fr_hash_init(fr_hash_ctx *h, uint16_t alg)
{
    h->alg = alg;
    h->evp = NULL;
    switch (alg) {
    case ALG_SHA1: return SHA1_Init(&h->u.sha1) == 1 ? 0 : -1;
    case ALG_SHA256: return SHA256_Init(&h->u.sha256) == 1 ? 0 : -1;
    case ALG_SHA384: return SHA384_Init(&h->u.sha512) == 1 ? 0 : -1;
    case ALG_SHA512: return SHA512_Init(&h->u.sha512) == 1 ? 0 : -1;
    case ALG_SM3_256: {
        const EVP_MD *md = EVP_get_digestbyname("SM3");
        if (!md || !(h->evp = EVP_MD_CTX_new())) return -1;
        if (EVP_DigestInit_ex(h->evp, md, NULL) != 1) {
            EVP_MD_CTX_free(h->evp);
            h->evp = NULL;
            return -1;
        }
        return 0;
    }
    default: return -1;
    }
}

int fr_hash_update(fr_hash_ctx *h, const void *p, size_t n)
{
    int ok;
    switch (h->alg) {
    case ALG_SHA1: ok = SHA1_Update(&h->u.sha1, p, n); break;
    case ALG_SHA256: ok = SHA256_Update(&h->u.sha256, p, n); break;
    case ALG_SHA384: ok = SHA384_Update(&h->u.sha512, p, n); break;
    case ALG_SHA512: ok = SHA512_Update(&h->u.sha512, p, n); break;
    default: ok = EVP_DigestUpdate(h->evp, p, n); break;
    }
    return ok == 1 ? 0 : -1;
}

int fr_hash_final(fr_hash_ctx *h, uint8_t *out)
{
    int ok;
    switch (h->alg) {
    case ALG_SHA1: ok = SHA1_Final(out, &h->u.sha1); break;
    case ALG_SHA256: ok = SHA256_Final(out, &h->u.sha256); break;
    case ALG_SHA384: ok = SHA384_Final(out, &h->u.sha512); break;
    case ALG_SHA512: ok = SHA512_Final(out, &h->u.sha512); break;
    default:
        ok = EVP_DigestFinal_ex(h->evp, out, NULL);
        EVP_MD_CTX_free(h->evp);
        h->evp = NULL;
        break;
    }
    return ok == 1 ? 0 : -1;
}

uint32_t fr_digest_size(uint16_t alg)
{
    switch (alg) {
    case ALG_SHA1: return 20;
    case ALG_SHA256: return 32;
    case ALG_SHA384: return 48;
    case ALG_SHA512: return 64;
    case ALG_SM3_256: return 32;
    default: return 0;
    }
}

uint32_t fr_rim_digest_size(uint16_t alg)
{
    switch (alg) {
    case ALG_SHA256: return 32;
    case ALG_SHA384: return 48;
    case ALG_SHA512: return 64;
    default: return 0;
    }
}

/* Not the one-shot SHA256(): in OpenSSL 3 it fetches the algorithm from a
 * provider on every call, which costs a third of a granule's hashing. */
int fr_rim_hash(uint16_t alg, const uint8_t *p, size_t n, uint8_t *out)
{
    fr_hash_ctx h;
    if (!fr_rim_digest_size(alg) || fr_hash_init(&h, alg)) return -1;
    int failed = fr_hash_update(&h, p, n);
    failed |= fr_hash_final(&h, out);
    return failed ? -1 : 0;
}
