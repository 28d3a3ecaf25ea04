/* SPDX-License-Identifier: MIT */
/* OpenSSL 3 EVP for ES256 and RS256; see cr_pkey.h. */
#include "crypto/cr_pkey.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "crypto/cr.h"

struct cr_pkey {
    enum cr_pkey_alg alg;
    EVP_PKEY *pkey;
};

static struct cr_pkey *wrap(enum cr_pkey_alg alg, EVP_PKEY *p)
{
    struct cr_pkey *k = xcalloc(1, sizeof(*k));
    k->alg = alg;
    k->pkey = p;
    return k;
}

int cr_pkey_generate(enum cr_pkey_alg alg, struct cr_pkey **out)
{
    EVP_PKEY *p = alg == CR_ES256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    if (!p)
        return ERR_IO;
    *out = wrap(alg, p);
    return ERR_OK;
}

int cr_pkey_from_pem(enum cr_pkey_alg alg, const char *pem, size_t n, struct cr_pkey **out)
{
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *p = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (!p)
        return ERR_INVAL;
    int want = alg == CR_ES256 ? EVP_PKEY_EC : EVP_PKEY_RSA;
    if (EVP_PKEY_get_base_id(p) != want || (alg == CR_RS256 && EVP_PKEY_get_bits(p) < 2048) ||
        (alg == CR_ES256 && EVP_PKEY_get_bits(p) != 256)) {
        EVP_PKEY_free(p);
        return ERR_INVAL;
    }
    *out = wrap(alg, p);
    return ERR_OK;
}

struct cr_pkey *cr_pkey_dup(const struct cr_pkey *k)
{
    EVP_PKEY *p = EVP_PKEY_dup(k->pkey);
    return p ? wrap(k->alg, p) : NULL;
}

void cr_pkey_free(struct cr_pkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    mem_free(k);
}

int cr_pkey_to_pem(const struct cr_pkey *k, struct buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    int rc = ERR_NOMEM;

    if (b && PEM_write_bio_PKCS8PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL)) {
        long n = BIO_get_mem_data(b, &p);
        rc = n > 0 ? buf_append(out, p, (size_t)n) : ERR_IO;
    }
    BIO_free(b);
    return rc;
}

/* The order of P-256 and its half, big-endian. ECDSA's (r, s) and (r, n - s) both verify:
 * a signature is malleable unless one of the two is chosen. We emit the low one (s <= n/2)
 * and accept only that, so a token has exactly one valid signature (one cache key, one
 * jti per byte string), as Bitcoin and Ethereum require for the same reason. */
static const uint8_t p256_n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                   0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t p256_half_n[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

/* s (32 bytes, big-endian) > n/2: public data, no need for constant time. */
static bool high_s(const uint8_t s[32])
{
    return memcmp(s, p256_half_n, 32) > 0;
}

int cr_pkey_sign(const struct cr_pkey *k, const void *msg, size_t n, uint8_t *sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t der[CR_PKEY_SIG_MAX];
    size_t len = sizeof(der);
    int rc = ERR_IO;

    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, der, &len, msg, n) != 1)
        goto out;
    if (k->alg == CR_RS256) {
        memcpy(sig, der, len);
        *siglen = len;
        rc = ERR_OK;
        goto out;
    }
    /* ECDSA: OpenSSL gives DER; JWS wants the two 32-byte integers side by side. */
    const unsigned char *pp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)len);
    if (!es)
        goto out;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32) {
        *siglen = 64;
        rc = ERR_OK;
        if (high_s(sig + 32)) { /* s := n - s */
            BIGNUM *order = BN_bin2bn(p256_n, 32, NULL), *low = BN_new();
            if (!order || !low || !BN_sub(low, order, s) || BN_bn2binpad(low, sig + 32, 32) != 32)
                rc = ERR_IO;
            BN_free(order);
            BN_free(low);
        }
    }
    ECDSA_SIG_free(es);
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

bool cr_pkey_verify(const struct cr_pkey *k, const void *msg, size_t n, const uint8_t *sig,
                    size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t der[CR_PKEY_SIG_MAX];
    const uint8_t *s = sig;
    size_t slen = siglen;
    bool ok = false;

    if (!ctx)
        return false;
    if (k->alg == CR_ES256) {
        if (siglen != 64 || high_s(sig + 32))
            goto out;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !ss || !ECDSA_SIG_set0(es, r, ss)) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(ss);
            goto out;
        }
        unsigned char *p = der;
        int dl = i2d_ECDSA_SIG(es, NULL) <= (int)sizeof(der) ? i2d_ECDSA_SIG(es, &p) : -1;
        ECDSA_SIG_free(es);
        if (dl <= 0)
            goto out;
        s = der;
        slen = (size_t)dl;
    }
    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
         EVP_DigestVerify(ctx, s, slen, msg, n) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int put_bn(struct buf *out, const char *name, const BIGNUM *bn, int pad)
{
    uint8_t bin[1024];
    char enc[1400];
    int len = pad ? BN_bn2binpad(bn, bin, pad) : BN_bn2bin(bn, bin);

    if (len <= 0 || (size_t)len > sizeof(bin))
        return ERR_INVAL;
    cr_b64url_encode(bin, (size_t)len, enc, sizeof(enc));
    return buf_printf(out, ",\"%s\":\"%s\"", name, enc);
}

int cr_pkey_jwk(const struct cr_pkey *k, struct buf *out)
{
    int rc = ERR_IO;

    if (k->alg == CR_RS256) {
        BIGNUM *n = NULL, *e = NULL;
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) &&
            EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e)) {
            rc = buf_puts(out, "\"RSA\"");
            if (!rc)
                rc = put_bn(out, "n", n, 0);
            if (!rc)
                rc = put_bn(out, "e", e, 0);
        }
        BN_free(n);
        BN_free(e);
        return rc;
    }
    uint8_t pt[65];
    size_t len = 0;
    char x[64], y[64];
    if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len) ||
        len != 65 || pt[0] != 4)
        return ERR_IO; /* want the uncompressed point 04 || X || Y */
    cr_b64url_encode(pt + 1, 32, x, sizeof(x));
    cr_b64url_encode(pt + 33, 32, y, sizeof(y));
    return buf_printf(out, "\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"", x, y);
}
