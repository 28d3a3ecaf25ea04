/* SPDX-License-Identifier: MIT */
/*
 * JWS compact form. Parsing order matters for safety: bound the size, split on exactly two
 * dots, decode the header strictly (base64url, then JSON with duplicate keys rejected, so two
 * parsers cannot disagree on "alg"), find the key, check alg against the key, verify the
 * signature over the original bytes, and only then decode the payload.
 *
 * The header this file signs is recognised by its bytes before any JSON parse
 * (tok_jws_own_header): about 15,000 instructions of jansson saved on every
 * verification-cache miss. It accepts
 * only the exact shapes tok_jws_sign writes, with plain strings, whose values jansson would
 * read the same; everything else goes to jansson, as before (fuzz_jwt holds the two to the
 * same answers).
 */
#include "token/tok_jws.h"

#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define HEADER_MAX 512

/* The header's pieces, as tok_jws_sign writes them and tok_jws_own_header reads them:
 * {"alg":"A","typ":"T","kid":"K"}, the typ piece left out when there is none. */
#define H_ALG         "{\"alg\":\""
#define H_TYP         "\",\"typ\":\""
#define H_KID         "\",\"kid\":\""
#define H_END         "\"}"
#define H_PUT(h, lit) mempcpy(h, lit, sizeof(lit) - 1)

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
    /* the header from its pieces (above), without printf: signed on every grant */
    size_t al = strlen(alg), tl = typ ? strlen(typ) : 0, kl = strlen(k->kid);
    if (al + tl + kl + 32 > sizeof(header))
        return ERR_INVAL;
    char *h = H_PUT(header, H_ALG);
    h = mempcpy(h, alg, al);
    if (typ) {
        h = H_PUT(h, H_TYP);
        h = mempcpy(h, typ, tl);
    }
    h = H_PUT(h, H_KID);
    h = mempcpy(h, k->kid, kl);
    h = H_PUT(h, H_END);
    size_t hn = (size_t)(h - header);
    size_t start = out->len;
    int rc = append_b64(out, header, hn);
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

/* One of the header's strings, up to its closing quote (left for the next piece): 1 to 64
 * bytes that JSON writes as they are (no quote, no backslash, no control byte, nothing
 * from 0x80 up), so the bytes are the value. */
static bool plain_string(const char **p, const char *end, struct str *out)
{
    const char *s = *p;
    while (*p < end && *p - s <= 64) {
        unsigned char c = (unsigned char)**p;
        if (c == '"')
            break;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.' || c == '_' || c == '/'))
            return false;
        (*p)++;
    }
    if (*p == s || *p >= end || *p - s > 64)
        return false;
    *out = (struct str){s, (size_t)(*p - s)};
    return true;
}

/* The header's pieces (H_*), byte for byte as tok_jws_sign writes them, with plain
 * strings. False for anything else (jansson decides those). */
bool tok_jws_own_header(const char *h, size_t n, struct str *alg, struct str *typ, struct str *kid)
{
    const char *p = h, *end = h + n;

    *typ = STR_NULL;
    if (!STR_EAT(&p, end, H_ALG) || !plain_string(&p, end, alg))
        return false;
    if (STR_EAT(&p, end, H_TYP) && !plain_string(&p, end, typ))
        return false;
    return STR_EAT(&p, end, H_KID) && plain_string(&p, end, kid) && STR_EAT(&p, end, H_END) &&
           p == end;
}

int tok_jws_verify(struct str token, tok_key_lookup_cb lookup, void *ctx, char *payload, size_t cap,
                   size_t *payload_len, char typ_out[32])
{
    char header[HEADER_MAX];
    uint8_t sig[CR_PKEY_SIG_MAX + 1];
    size_t hlen, slen, plen;
    struct str alg, kid, typ;
    json_t *h = NULL;

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

    if (!tok_jws_own_header(header, hlen, &alg, &typ, &kid)) {
        json_error_t je;
        h = json_loadb(header, hlen, JSON_REJECT_DUPLICATES, &je);
        if (!h || !json_is_object(h)) {
            json_decref(h);
            return ERR_INVAL;
        }
        json_t *algj = json_object_get(h, "alg");
        json_t *kidj = json_object_get(h, "kid");
        json_t *typj = json_object_get(h, "typ");
        if (!json_is_string(algj) || (kidj && !json_is_string(kidj)) ||
            (typj && !json_is_string(typj)) || json_object_get(h, "crit")) {
            json_decref(h);
            return ERR_INVAL; /* we understand no critical extension (RFC 7515 §4.1.11) */
        }
        alg = (struct str){json_string_value(algj), json_string_length(algj)};
        kid = kidj ? (struct str){json_string_value(kidj), json_string_length(kidj)} : STR_NULL;
        typ = typj ? (struct str){json_string_value(typj), json_string_length(typj)} : STR_NULL;
    }
    int rc = ERR_INVAL;
    const struct tok_key *k = lookup(ctx, kid);
    if (!k) {
        rc = kid.p ? ERR_NOTFOUND : ERR_INVAL;
        goto out;
    }
    if (!str_eq(alg, str_c(tok_alg_name(k->alg))))
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
        size_t tl = typ.len > 31 ? 31 : typ.len;
        if (tl)
            memcpy(typ_out, typ.p, tl);
        typ_out[tl] = '\0';
    }
    rc = ERR_OK;
out:
    json_decref(h);
    return rc;
}
