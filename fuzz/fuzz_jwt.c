/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: JWT/JWS parsing and verification. The first byte picks the mode:
 *  - even: the rest is a token given to tok_jwt_verify (must never crash, leak or accept a
 *    token the fixed key did not sign: a random token that verifies is a finding);
 *  - every input, as a decoded JWS header: when tok_jws_own_header recognises it, jansson
 *    must read the same alg, typ and kid from it, and nothing else;
 *  - every input, as a decoded payload: when tok_jwt_own_claims recognises it, jansson must
 *    read the same claims from it, and nothing else;
 *  - odd: the rest is a payload; it is signed and must verify and round-trip byte-exact,
 *    and then goes through tok_jwt_verify's claim checks (reachable only with a valid
 *    signature): an accepted token's claims must hold what the checks promise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "core/buf.h"
#include "crypto/cr.h"
#include "token/tok_jws.h"
#include "token/tok_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok_ring ring;
static uint8_t sk[CR_ED25519_SK];

/* A member of o that must be a string equal to want (absent if want.p is NULL). */
static bool same(json_t *o, const char *name, struct str want)
{
    json_t *v = json_object_get(o, name);
    if (!want.p)
        return v == NULL;
    return json_is_string(v) &&
           str_eq(want, (struct str){json_string_value(v), json_string_length(v)});
}

/* The header recogniser against jansson: what it accepts, jansson reads the same way. */
static void own_header_agrees(struct str in)
{
    struct str alg, typ, kid;
    if (!tok_jws_own_header(in.p, in.len, &alg, &typ, &kid))
        return;
    json_t *o = json_loadb(in.p, in.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o) || json_object_size(o) != (typ.p ? 3u : 2u) || !same(o, "alg", alg) ||
        !same(o, "typ", typ) || !same(o, "kid", kid))
        abort();
    json_decref(o);
}

/* A member of o that must be an integer equal to want. */
static bool same_int(json_t *o, const char *name, int64_t want)
{
    json_t *v = json_object_get(o, name);
    return json_is_integer(v) && json_integer_value(v) == want;
}

/* The claims recogniser against jansson: what it accepts, jansson reads the same way. */
static void own_claims_agrees(struct str in)
{
    struct tok_claim_views v;
    if (!tok_jwt_own_claims(in.p, in.len, &v))
        return;
    json_t *o = json_loadb(in.p, in.len, JSON_REJECT_DUPLICATES, NULL);
    size_t members = 6u + (v.aud.p != NULL) + (v.scope.p != NULL);
    if (!json_is_object(o) || json_object_size(o) != members || v.has_nbf ||
        !same(o, "iss", v.iss) || !same(o, "sub", v.sub) || !same(o, "aud", v.aud) ||
        !same(o, "jti", v.jti) || !same(o, "client_id", v.client_id) ||
        !same(o, "scope", v.scope) || !same_int(o, "exp", v.exp) || !same_int(o, "iat", v.iat))
        abort();
    json_decref(o);
}

static const struct tok_key *lookup(void *ctx, struct str kid)
{
    (void)ctx;
    return kid.p && str_eq(kid, STR_LIT("fz")) ? &ring.keys[0].k : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ring.n) {
        uint8_t seed[32] = {7};
        cr_init();
        cr_ed25519_from_seed(seed, ring.keys[0].k.pk, sk);
        ring.keys[0].k.sk = sk;
        ring.keys[0].k.alg = TOK_ALG_EDDSA;
        memcpy(ring.keys[0].k.kid, "fz", 3);
        ring.n = 1;
    }
    if (size < 1)
        return 0;
    struct str in = {(const char *)data + 1, size - 1};
    {
        static uint8_t a[4096], b[4096];
        size_t la = 0, lb = 0, cap = data[0] % 3 ? sizeof(a) : in.len / 2; /* (room or not) */
        int ra = cr_b64url_decode(in.p, in.len, a, cap, &la);
        int rb = cr_b64url_decode_public(in.p, in.len, b, cap, &lb);
        if (ra != rb || (ra == 0 && (la != lb || memcmp(a, b, la) != 0)))
            abort();
    }
    own_header_agrees(in);
    own_claims_agrees(in);
    if (data[0] % 2 == 0) {
        struct tok_claims c;
        char payload[TOK_PAYLOAD_MAX];
        size_t n;
        /* Nothing the fuzzer makes can carry a valid signature of ours. */
        if (tok_jwt_verify(&ring, "https://fz", 1000, 30, in, &c) == 0)
            abort();
        if (tok_jws_verify(in, lookup, NULL, payload, sizeof(payload), &n, NULL) == 0)
            abort();
        return 0;
    }
    struct buf out;
    char back[TOK_PAYLOAD_MAX];
    size_t n;
    buf_init(&out, 1 << 20);
    if (in.len < TOK_PAYLOAD_MAX - 1 &&
        tok_jws_sign(&ring.keys[0].k, "at+jwt", in.p, in.len, &out) == 0) {
        struct str tok = {out.p, out.len};
        int rc = tok_jws_verify(tok, lookup, NULL, back, sizeof(back), &n, NULL);
        if (tok.len <= TOK_JWS_MAX && (rc != 0 || n != in.len || memcmp(back, in.p, n) != 0))
            abort();
        struct tok_claims c;
        if (tok_jwt_verify(&ring, "https://fz", 1000, 30, tok, &c) == 0 &&
            (c.exp <= 1000 - 30 || c.exp > 1000 + TOK_EXP_HORIZON_S || c.iat > 1000 + 30))
            abort();
    }
    buf_fini(&out);
    return 0;
}
