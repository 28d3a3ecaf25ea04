/* SPDX-License-Identifier: MIT */
/*
 * JWS compact form. Parsing order matters for safety: bound the size, split on exactly two
 * dots, decode the header strictly (base64url, then JSON with duplicate keys rejected, so two
 * parsers cannot disagree on "alg"), find the key, check alg against the key, verify the
 * signature over the original bytes, and only then decode the payload.
 */
#include "token/tok_jws.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define HEADER_MAX 512

const char *tok_alg_name(enum tok_alg alg)
{
    switch (alg) {
    case TOK_ALG_EDDSA:
        return "EdDSA";
    case TOK_ALG_ES256:
        return "ES256";
    case TOK_ALG_RS256:
        return "RS256";
    case TOK_ALG_NONE:
        break;
    }
    return NULL;
}

enum tok_alg tok_alg_parse(const char *name)
{
    for (int a = TOK_ALG_EDDSA; a <= TOK_ALG_RS256; a++)
        if (strcmp(name, tok_alg_name((enum tok_alg)a)) == 0)
            return (enum tok_alg)a;
    return TOK_ALG_NONE;
}

/* (a JWS's parts are public: the fast encoder) */
static int append_b64(struct buf *out, const void *p, size_t n)
{
    size_t need = CR_B64_PUBLIC_CAP(n);
    int rc = buf_reserve(out, need);
    if (rc)
        return rc;
    out->len += cr_b64url_encode_public(p, n, out->p + out->len, need);
    return ERR_OK;
}

int tok_jws_sign(const struct tok_key *k, const char *typ, const void *payload, size_t n,
                 struct buf *out)
{
    char header[HEADER_MAX];
    uint8_t sig[CR_PKEY_SIG_MAX];
    size_t siglen = CR_ED25519_SIG;
    const char *alg = tok_alg_name(k->alg);

    if (!alg || (k->alg == TOK_ALG_EDDSA ? !k->sk : !k->pkey))
        return ERR_INVAL;
    int hn;
    if (typ)
        hn = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"%s\",\"kid\":\"%s\"}", alg,
                      typ, k->kid);
    else
        hn = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, k->kid);
    if (hn < 0 || (size_t)hn >= sizeof(header))
        return ERR_INVAL;
    size_t start = out->len;
    int rc = append_b64(out, header, (size_t)hn);
    if (!rc)
        rc = buf_append(out, ".", 1);
    if (!rc)
        rc = append_b64(out, payload, n);
    if (rc) {
        out->len = start;
        return rc;
    }
    if (k->alg == TOK_ALG_EDDSA)
        cr_ed25519_sign(sig, out->p + start, out->len - start, k->sk);
    else if (cr_pkey_sign(k->pkey, out->p + start, out->len - start, sig, &siglen))
        rc = ERR_IO;
    if (!rc)
        rc = buf_append(out, ".", 1);
    if (!rc)
        rc = append_b64(out, sig, siglen);
    if (rc)
        out->len = start;
    return rc;
}

int tok_jws_verify(struct str token, tok_key_lookup_cb lookup, void *ctx, char *payload, size_t cap,
                   size_t *payload_len, char typ_out[32])
{
    char header[HEADER_MAX];
    uint8_t sig[CR_PKEY_SIG_MAX + 1];
    size_t hlen, slen, plen;

    if (token.len > TOK_JWS_MAX)
        return ERR_LIMIT;
    const char *d1 = memchr(token.p, '.', token.len);
    if (!d1)
        return ERR_INVAL;
    const char *d2 = memchr(d1 + 1, '.', token.len - (size_t)(d1 + 1 - token.p));
    if (!d2 || memchr(d2 + 1, '.', token.len - (size_t)(d2 + 1 - token.p)))
        return ERR_INVAL; /* not exactly three parts (a JWE has five) */
    size_t h64 = (size_t)(d1 - token.p);
    size_t p64 = (size_t)(d2 - d1 - 1);
    size_t s64 = token.len - (size_t)(d2 + 1 - token.p);
    if (cr_b64url_decode_public(token.p, h64, header, sizeof(header) - 1, &hlen))
        return ERR_INVAL;
    header[hlen] = '\0';

    json_error_t je;
    json_t *h = json_loadb(header, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h || !json_is_object(h)) {
        json_decref(h);
        return ERR_INVAL;
    }
    const char *alg = json_string_value(json_object_get(h, "alg"));
    json_t *kidj = json_object_get(h, "kid");
    json_t *typj = json_object_get(h, "typ");
    json_t *crit = json_object_get(h, "crit");
    int rc = ERR_INVAL;
    if (!alg || (kidj && !json_is_string(kidj)) || (typj && !json_is_string(typj)) || crit)
        goto out; /* we understand no critical extension (RFC 7515 §4.1.11) */
    struct str kid =
        kidj ? (struct str){json_string_value(kidj), json_string_length(kidj)} : STR_NULL;
    const struct tok_key *k = lookup(ctx, kid);
    if (!k) {
        rc = kid.p ? ERR_NOTFOUND : ERR_INVAL;
        goto out;
    }
    if (strcmp(alg, tok_alg_name(k->alg)) != 0)
        goto out;
    if (cr_b64url_decode_public(d2 + 1, s64, sig, sizeof(sig), &slen))
        goto out;
    if (k->alg == TOK_ALG_EDDSA
            ? (slen != CR_ED25519_SIG ||
               !cr_ed25519_verify(sig, token.p, (size_t)(d2 - token.p), k->pk))
            : !cr_pkey_verify(k->pkey, token.p, (size_t)(d2 - token.p), sig, slen))
        goto out;
    if (cap == 0) {
        rc = ERR_LIMIT;
        goto out;
    }
    rc = cr_b64url_decode_public(d1 + 1, p64, payload, cap - 1, &plen);
    if (rc)
        goto out;
    payload[plen] = '\0';
    *payload_len = plen;
    if (typ_out) {
        const char *t = typj ? json_string_value(typj) : "";
        size_t tl = strlen(t);
        if (tl > 31)
            tl = 31;
        memcpy(typ_out, t, tl);
        typ_out[tl] = '\0';
    }
    rc = ERR_OK;
out:
    json_decref(h);
    return rc;
}
