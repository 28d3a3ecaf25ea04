/* SPDX-License-Identifier: MIT */
/*
 * RFC 9068 access tokens. The payload is written with the escaping writer (no jansson tree
 * on the issue path). On the verify path, after the signature, claims in exactly the shape
 * the writer makes are recognised by their bytes (tok_jwt_own_claims); any other payload is
 * read by jansson, where duplicate claims are rejected. Both give the same views, which one
 * set of checks (check_claims) then judges.
 */
#include "token/tok_jwt.h"

#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/cr.h"

/* The jti: 16 random bytes, base64url without padding */
_Static_assert(TOK_JTI_LEN == (16 * 4 + 2) / 3, "a jti is 16 bytes' characters");

int tok_jwt_issue(const struct tok_ring *r, enum tok_alg alg, const char *issuer, int64_t now,
                  int64_t ttl, struct tok_claims *c, struct buf *out)
{
    const struct tok_ring_key *k = tok_ring_signer(r, alg, now);
    uint8_t rnd[16];
    struct buf p;

    if (!k)
        return ERR_NOTFOUND;
    if (!c->jti[0]) { /* (an authorization code names its token's jti before it is issued) */
        char id[CR_B64_PUBLIC_CAP(sizeof(rnd))];
        cr_random_id(rnd, sizeof(rnd)); /* (public: it is in the token) */
        cr_b64url_encode_public(rnd, sizeof(rnd), id, sizeof(id));
        memcpy(c->jti, id, sizeof(c->jti)); /* (22 characters and the NUL) */
    }
    c->iat = now;
    c->exp = now + ttl;
    buf_init(&p, 8192);
    int rc = buf_reserve(&p, 1024); /* (one allocation for the usual claims) */
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, "{\"iss\":\"", issuer);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"sub\":\"", c->sub);
    if (!rc && c->aud[0])
        rc = BUF_PUT_JSON_STR(&p, ",\"aud\":\"", c->aud);
    if (!rc)
        rc = buf_append(&p, ",\"exp\":", 7);
    if (!rc)
        rc = buf_put_i64(&p, c->exp);
    if (!rc)
        rc = buf_append(&p, ",\"iat\":", 7);
    if (!rc)
        rc = buf_put_i64(&p, now);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"jti\":\"", c->jti);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"client_id\":\"", c->client_id);
    if (!rc && c->scope[0])
        rc = BUF_PUT_JSON_STR(&p, ",\"scope\":\"", c->scope);
    if (!rc)
        rc = buf_append(&p, "}", 1);
    if (!rc)
        rc = tok_jws_sign(&k->k, "at+jwt", p.p, p.len, out);
    buf_fini(&p);
    return rc;
}

int tok_id_token_issue(const struct tok_ring *r, const char *issuer, int64_t now, int64_t ttl,
                       const struct tok_claims *cl, const struct tok_id *id,
                       struct str access_token, struct buf *out)
{
    const struct tok_ring_key *k = tok_ring_signer(r, id->alg, now);
    uint8_t h[64];
    char at_hash[64];
    struct buf p;

    if (!k)
        return ERR_NOTFOUND;
    /* at_hash: the left half of the hash the signature's algorithm uses */
    if (k->k.alg == TOK_ALG_EDDSA) {
        cr_sha512(h, access_token.p, access_token.len);
        cr_b64url_encode_public(h, 32, at_hash, sizeof(at_hash)); /* (it is in the token) */
    } else {
        cr_sha256(h, access_token.p, access_token.len);
        cr_b64url_encode_public(h, 16, at_hash, sizeof(at_hash));
    }
    buf_init(&p, 8192);
    int rc = BUF_PUT_JSON_STR(&p, "{\"iss\":\"", issuer);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"sub\":\"", cl->sub);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"aud\":\"", cl->client_id);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"azp\":\"", cl->client_id);
    if (!rc)
        rc = buf_printf(&p, ",\"exp\":%lld,\"iat\":%lld,\"auth_time\":%lld", (long long)(now + ttl),
                        (long long)now, (long long)id->auth_time);
    if (!rc && id->nonce && id->nonce[0])
        rc = BUF_PUT_JSON_STR(&p, ",\"nonce\":\"", id->nonce);
    if (!rc && id->sid && id->sid[0])
        rc = BUF_PUT_JSON_STR(&p, ",\"sid\":\"", id->sid);
    if (!rc)
        rc = BUF_PUT_JSON_STR(&p, ",\"at_hash\":\"", at_hash);
    if (!rc)
        rc = buf_append(&p, "}", 1);
    if (!rc)
        rc = tok_jws_sign(&k->k, "JWT", p.p, p.len, out);
    buf_fini(&p);
    return rc;
}

struct lookup_ctx {
    const struct tok_ring *r;
    int64_t now;
};

static const struct tok_key *lookup(void *ctx, struct str kid)
{
    struct lookup_ctx *l = ctx;
    const struct tok_ring_key *k = kid.p ? tok_ring_find(l->r, kid, l->now) : NULL;
    return k ? &k->k : NULL;
}

/* ---- the claims as tok_jwt_issue writes them, recognised by their bytes ---------------- */

struct cursor {
    const char *p, *end;
};

#define EAT(c, lit) STR_EAT(&(c)->p, (c)->end, lit)

/* A string's bytes up to its closing quote, which is eaten: printable ASCII, no '\\'. */
static bool plain(struct cursor *c, struct str *out)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char b = (unsigned char)*c->p;
        if (b < 0x20 || b > 0x7e || b == '\\')
            return false;
        c->p++;
    }
    if (c->p == c->end)
        return false;
    *out = (struct str){s, (size_t)(c->p - s)};
    c->p++;
    return true;
}

/* 1 to 18 digits, the first not 0: a positive number jansson reads as the same integer. */
static bool digits(struct cursor *c, int64_t *out)
{
    int64_t v = 0;
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - s < 18)
        v = v * 10 + (*c->p++ - '0');
    *out = v;
    return c->p > s && *s != '0' && (c->p == c->end || *c->p < '0' || *c->p > '9');
}

bool tok_jwt_own_claims(const char *payload, size_t n, struct tok_claim_views *v)
{
    struct cursor c = {payload, payload + n};

    memset(v, 0, sizeof(*v));
    if (!EAT(&c, "{\"iss\":\"") || !plain(&c, &v->iss) || !EAT(&c, ",\"sub\":\"") ||
        !plain(&c, &v->sub))
        return false;
    if (EAT(&c, ",\"aud\":\"") && !plain(&c, &v->aud))
        return false;
    if (!EAT(&c, ",\"exp\":") || !digits(&c, &v->exp) || !EAT(&c, ",\"iat\":") ||
        !digits(&c, &v->iat) || !EAT(&c, ",\"jti\":\"") || !plain(&c, &v->jti) ||
        !EAT(&c, ",\"client_id\":\"") || !plain(&c, &v->client_id))
        return false;
    if (EAT(&c, ",\"scope\":\"") && !plain(&c, &v->scope))
        return false;
    return EAT(&c, "}") && c.p == c.end;
}

/* ---- any other claims: jansson ---------------------------------------------------------- */

/* j's string member `name` as a view (p NULL when absent); false when it is not a string */
static bool json_view(json_t *j, const char *name, struct str *out)
{
    json_t *m = json_object_get(j, name);
    *out = STR_NULL;
    if (!m)
        return true;
    if (!json_is_string(m))
        return false;
    *out = (struct str){json_string_value(m), json_string_length(m)};
    return true;
}

/* The claims from jansson's tree: ERR_INVAL for a claim of the wrong type or a required one
 * missing (iss, exp, iat, sub, client_id, jti). aud may be an array: its first member. */
static int json_claims(json_t *j, struct tok_claim_views *v)
{
    json_t *exp = json_object_get(j, "exp"), *iat = json_object_get(j, "iat");
    json_t *nbf = json_object_get(j, "nbf"), *aud = json_object_get(j, "aud");

    memset(v, 0, sizeof(*v));
    if (!json_is_integer(exp) || !json_is_integer(iat) || (nbf && !json_is_integer(nbf)))
        return ERR_INVAL;
    v->exp = json_integer_value(exp);
    v->iat = json_integer_value(iat);
    v->has_nbf = nbf != NULL;
    v->nbf = v->has_nbf ? json_integer_value(nbf) : 0;
    if (!json_view(j, "iss", &v->iss) || !json_view(j, "sub", &v->sub) ||
        !json_view(j, "client_id", &v->client_id) || !json_view(j, "jti", &v->jti) ||
        !json_view(j, "scope", &v->scope) || !v->iss.p || !v->sub.p || !v->client_id.p || !v->jti.p)
        return ERR_INVAL;
    if (aud) {
        json_t *first = json_is_array(aud) ? json_array_get(aud, 0) : aud;
        if (!json_is_string(first))
            return ERR_INVAL;
        v->aud = (struct str){json_string_value(first), json_string_length(first)};
    }
    return ERR_OK;
}

/* view into dst[cap] with its NUL; false when it does not fit */
static bool copy_view(struct str v, char *dst, size_t cap)
{
    if (v.len >= cap)
        return false;
    if (v.len)
        memcpy(dst, v.p, v.len);
    dst[v.len] = '\0';
    return true;
}

/* j's string member `name` into dst[cap] (ERR_INVAL: not a string, too long, or absent
 * and required; absent and not required leaves dst as it is) */
static int copy_str(json_t *j, const char *name, char *dst, size_t cap, int required)
{
    struct str v;
    if (!json_view(j, name, &v))
        return ERR_INVAL;
    if (!v.p)
        return required ? ERR_INVAL : ERR_OK;
    return copy_view(v, dst, cap) ? ERR_OK : ERR_INVAL;
}

/* The checks every access token's claims pass, however they were read, and the copy. */
static int check_claims(const struct tok_claim_views *v, const char *issuer, int64_t now,
                        int64_t leeway, struct tok_claims *c)
{
    if (!str_eq(v->iss, str_c(issuer)))
        return ERR_INVAL;
    /* exp is enforced exactly: these are our own tokens, and we know the time they end.
     * The leeway is for the other parties' clocks, so it applies to iat and nbf only.
     * (Written so that no claim, however large, can overflow the arithmetic; and no token of
     * ours lives longer than TOK_EXP_HORIZON_S, so callers may add a leeway to exp.) */
    if (v->exp <= now || v->exp > now + TOK_EXP_HORIZON_S || v->iat > now + leeway ||
        (v->has_nbf && v->nbf > now + leeway))
        return ERR_INVAL;
    if (!copy_view(v->sub, c->sub, sizeof(c->sub)) ||
        !copy_view(v->client_id, c->client_id, sizeof(c->client_id)) ||
        !copy_view(v->jti, c->jti, sizeof(c->jti)) ||
        !copy_view(v->scope, c->scope, sizeof(c->scope)) ||
        !copy_view(v->aud, c->aud, sizeof(c->aud)))
        return ERR_INVAL;
    c->exp = v->exp;
    c->iat = v->iat;
    return ERR_OK;
}

int tok_jwt_verify(const struct tok_ring *r, const char *issuer, int64_t now, int64_t leeway,
                   struct str token, struct tok_claims *c)
{
    char payload[TOK_PAYLOAD_MAX];
    char typ[32];
    size_t n;
    struct lookup_ctx lc = {r, now};
    struct tok_claim_views v;

    memset(c, 0, sizeof(*c));
    int rc = tok_jws_verify(token, lookup, &lc, payload, sizeof(payload), &n, typ);
    if (rc)
        return rc;
    /* RFC 9068 §4: the typ must say this is an access token, so an ID token or any other
     * JWT signed by the same key cannot be replayed as one. */
    if (strcmp(typ, "at+jwt") != 0 && strcmp(typ, "application/at+jwt") != 0)
        return ERR_INVAL;
    if (tok_jwt_own_claims(payload, n, &v)) {
        rc = check_claims(&v, issuer, now, leeway, c);
    } else {
        json_t *j = json_loadb(payload, n, JSON_REJECT_DUPLICATES, NULL);
        rc = json_is_object(j) ? json_claims(j, &v) : ERR_INVAL;
        if (!rc)
            rc = check_claims(&v, issuer, now, leeway, c);
        json_decref(j);
    }
    if (rc)
        memset(c, 0, sizeof(*c));
    return rc;
}

int tok_id_token_hint(const struct tok_ring *r, const char *issuer, int64_t now, struct str token,
                      char sub[128 + 1], char aud[128 + 1], char sid[32])
{
    char payload[TOK_PAYLOAD_MAX], typ[32];
    size_t n;
    struct lookup_ctx lc = {r, now};

    sub[0] = aud[0] = sid[0] = '\0';
    int rc = tok_jws_verify(token, lookup, &lc, payload, sizeof(payload), &n, typ);
    if (rc)
        return rc;
    if (strcmp(typ, "JWT") != 0) /* (an access token is not a hint) */
        return ERR_INVAL;
    json_t *j = json_loadb(payload, n, JSON_REJECT_DUPLICATES, NULL);
    const char *iss = j ? json_string_value(json_object_get(j, "iss")) : NULL;
    rc = !iss || strcmp(iss, issuer) != 0 || copy_str(j, "sub", sub, 129, 1) ||
                 copy_str(j, "aud", aud, 129, 1) || copy_str(j, "sid", sid, 32, 0)
             ? ERR_INVAL
             : ERR_OK;
    json_decref(j);
    return rc;
}
