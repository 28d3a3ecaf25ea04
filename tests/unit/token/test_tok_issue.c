/* SPDX-License-Identifier: MIT */
/* Access-token issuance without HTTP (#12 item 1): the lifetime rules and the token
 * endpoint's answer, whose token verifies with the same ring. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "store/store.h"
#include "token/tok_issue.h"

TEST(lifetime_grows_under_load_up_to_the_cap_and_jitter_only_shortens)
{
    struct tok_issue o = {.ttl_s = 300, .factor = 1, .ttl_max_s = 3600};
    ASSERT_EQ_INT((int)tok_issue_ttl(&o), 300);
    o.factor = 4;
    ASSERT_EQ_INT((int)tok_issue_ttl(&o), 1200);
    o.factor = 100;
    ASSERT_EQ_INT((int)tok_issue_ttl(&o), 3600);
    o.ttl_s = 7200; /* longer than the cap already: never shortened by the factor */
    ASSERT_EQ_INT((int)tok_issue_ttl(&o), 7200);
    o.ttl_s = 300;
    o.factor = 1;
    o.jitter_s = 60;
    for (int i = 0; i < 200; i++) {
        int64_t t = tok_issue_ttl(&o);
        ASSERT_TRUE(t <= 300 && t >= 240);
    }
    o.ttl_s = 12;
    for (int i = 0; i < 200; i++)
        ASSERT_TRUE(tok_issue_ttl(&o) >= 10);
}

TEST(the_answer_carries_a_token_that_verifies)
{
    struct fx F;
    struct tok_ring ring;
    struct tok_claims cl, back;
    struct buf body;
    ASSERT_EQ_INT(fx_open(&F, "issue-test"), 0);
    ASSERT_EQ_INT(fx_keys(&F, &ring), 0);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "u-ann");
    snprintf(cl.client_id, sizeof(cl.client_id), "app");
    snprintf(cl.scope, sizeof(cl.scope), "read \"quoted\"");
    struct tok_issue o = {.ttl_s = 300,
                          .factor = 1,
                          .default_aud = "https://api",
                          .refresh = "R",
                          .alg = TOK_ALG_EDDSA};
    buf_init(&body, 20000);
    ASSERT_EQ_INT(tok_issue_answer(&ring, "https://id", 1000, &cl, &o, &body), 0);
    json_error_t je;
    json_t *j = json_loadb(body.p, body.len, 0, &je);
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "token_type")), "Bearer");
    ASSERT_EQ_INT((int)json_integer_value(json_object_get(j, "expires_in")), 300);
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "refresh_token")), "R");
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "scope")), "read \"quoted\"");
    const char *at = json_string_value(json_object_get(j, "access_token"));
    ASSERT_EQ_INT(tok_jwt_verify(&ring, "https://id", 1001, 0, str_c(at), &back), 0);
    ASSERT_EQ_STR(back.aud, "https://api"); /* the default audience */
    ASSERT_EQ_STR(back.sub, "u-ann");
    ASSERT_EQ_STR(back.jti, cl.jti);
    json_decref(j);
    buf_fini(&body);
    tok_ring_clear(&ring);
    fx_close(&F);
}

/* The payload of a compact JWS, decoded (the signature is the verifier's business here). */
static json_t *payload_of(const char *jws)
{
    const char *a = strchr(jws, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    char raw[4096];
    size_t n;
    if (!b || cr_b64url_decode(a + 1, (size_t)(b - a - 1), raw, sizeof(raw), &n))
        return NULL;
    return json_loadb(raw, n, 0, NULL);
}

/* The header's alg and kid. */
static void header_of(const char *jws, char alg[16], char kid[TOK_KID_MAX + 1])
{
    const char *a = strchr(jws, '.');
    char raw[512];
    size_t n;
    alg[0] = kid[0] = '\0';
    if (!a || cr_b64url_decode(jws, (size_t)(a - jws), raw, sizeof(raw), &n))
        return;
    json_t *h = json_loadb(raw, n, 0, NULL);
    snprintf(alg, 16, "%s", json_string_value(json_object_get(h, "alg")) ?: "");
    snprintf(kid, TOK_KID_MAX + 1, "%s", json_string_value(json_object_get(h, "kid")) ?: "");
    json_decref(h);
}

/* OpenID Connect (#13 item 7): with an ID token for the client, which cannot pass for an
 * access token; it is signed in its own algorithm (RS256 beside an EdDSA access token, or
 * the client's), and its at_hash, by that algorithm's hash, binds it to the access token
 * beside it; a preset jti is kept. */
static void id_token_in(enum tok_alg alg)
{
    struct fx F;
    struct tok_ring ring;
    struct tok_claims cl, back;
    struct buf body;
    ASSERT_EQ_INT(fx_open(&F, "idtoken-test"), 0);
    ASSERT_EQ_INT(fx_keys(&F, &ring), 0);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "u-ann");
    snprintf(cl.client_id, sizeof(cl.client_id), "spa");
    snprintf(cl.jti, sizeof(cl.jti), "chosen-jti");
    struct tok_id id = {.alg = alg, .nonce = "n-1", .auth_time = 990};
    struct tok_issue o = {
        .ttl_s = 300, .factor = 1, .default_aud = "https://api", .id = &id, .alg = TOK_ALG_EDDSA};
    buf_init(&body, 20000);
    ASSERT_EQ_INT(tok_issue_answer(&ring, "https://id", 1000, &cl, &o, &body), 0);
    json_t *j = json_loadb(body.p, body.len, 0, NULL);
    ASSERT_TRUE(j != NULL);
    const char *at = json_string_value(json_object_get(j, "access_token"));
    const char *it = json_string_value(json_object_get(j, "id_token"));
    ASSERT_TRUE(at && it);
    ASSERT_EQ_INT(tok_jwt_verify(&ring, "https://id", 1001, 0, str_c(at), &back), 0);
    ASSERT_EQ_STR(back.jti, "chosen-jti");
    ASSERT_EQ_INT(tok_jwt_verify(&ring, "https://id", 1001, 0, str_c(it), &back), ERR_INVAL);
    json_t *p = payload_of(it);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ_STR(json_string_value(json_object_get(p, "aud")), "spa");
    ASSERT_EQ_STR(json_string_value(json_object_get(p, "azp")), "spa");
    ASSERT_EQ_STR(json_string_value(json_object_get(p, "nonce")), "n-1");
    ASSERT_EQ_STR(json_string_value(json_object_get(p, "iss")), "https://id");
    ASSERT_EQ_INT((int)json_integer_value(json_object_get(p, "auth_time")), 990);
    char halg[16], kid[TOK_KID_MAX + 1];
    header_of(it, halg, kid);
    ASSERT_EQ_STR(halg, tok_alg_name(alg));
    ASSERT_EQ_STR(kid, tok_ring_signer(&ring, alg, 1000)->k.kid);
    header_of(at, halg, kid);
    ASSERT_EQ_STR(halg, "EdDSA");
    uint8_t h[64];
    char want[64];
    if (alg == TOK_ALG_EDDSA) { /* the left half of SHA-512 */
        cr_sha512(h, at, strlen(at));
        cr_b64url_encode(h, 32, want, sizeof(want));
    } else { /* of SHA-256 */
        cr_sha256(h, at, strlen(at));
        cr_b64url_encode(h, 16, want, sizeof(want));
    }
    ASSERT_EQ_STR(json_string_value(json_object_get(p, "at_hash")), want);
    json_decref(p);
    json_decref(j);
    buf_fini(&body);
    tok_ring_clear(&ring);
    fx_close(&F);
}

TEST(an_id_token_comes_with_its_access_token)
{
    id_token_in(TOK_ALG_RS256);
    id_token_in(TOK_ALG_EDDSA);
    id_token_in(TOK_ALG_ES256);
}
