/* SPDX-License-Identifier: MIT */
/* JWS against RFC 8037 A.4 (Ed25519) and the classic attacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "token/tok_jws.h"
#include "token/tok_jwt.h"

/* RFC 8037 A.1 (private key d, public key x) and A.4 (the signed example). */
static const char *D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char *X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char *A4 = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g"
                        "7sVvpAr_MuM0KAg";

static struct tok_key key;
static uint8_t sk[CR_ED25519_SK];

static const struct tok_key *lookup(void *ctx, struct str kid)
{
    (void)ctx;
    if (!kid.p || str_eq(kid, str_c(key.kid)))
        return &key;
    return NULL;
}

static void setup(void)
{
    uint8_t seed[32];
    size_t n;
    cr_init();
    cr_b64url_decode(D, strlen(D), seed, sizeof(seed), &n);
    cr_ed25519_from_seed(seed, key.pk, sk);
    key.sk = sk;
    key.alg = TOK_ALG_EDDSA;
    memcpy(key.kid, "k1", 3);
}

TEST(rfc8037_public_key_and_signature)
{
    uint8_t x[32];
    size_t n;
    char payload[128];
    setup();
    ASSERT_EQ_INT(cr_b64url_decode(X, strlen(X), x, sizeof(x), &n), 0);
    ASSERT_EQ_MEM(x, 32, key.pk, 32);
    ASSERT_EQ_INT(tok_jws_verify(str_c(A4), lookup, NULL, payload, sizeof(payload), &n, NULL), 0);
    ASSERT_EQ_STR(payload, "Example of Ed25519 signing");
    /* Ed25519 is deterministic: signing the A.4 input again gives the A.4 signature. */
    uint8_t sig[64];
    char enc[100];
    const char *input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    cr_ed25519_sign(sig, input, strlen(input), sk);
    cr_b64url_encode(sig, 64, enc, sizeof(enc));
    ASSERT_EQ_STR(enc, strrchr(A4, '.') + 1);
}

TEST(sign_then_verify_roundtrip_with_typ)
{
    struct buf b;
    char payload[128], typ[32];
    size_t n;
    setup();
    buf_init(&b, 4096);
    ASSERT_EQ_INT(tok_jws_sign(&key, "at+jwt", "{\"sub\":\"ann\"}", 13, &b), 0);
    ASSERT_EQ_INT(
        tok_jws_verify((struct str){b.p, b.len}, lookup, NULL, payload, sizeof(payload), &n, typ),
        0);
    ASSERT_EQ_STR(payload, "{\"sub\":\"ann\"}");
    ASSERT_EQ_STR(typ, "at+jwt");
    /* every single-byte change breaks it */
    for (size_t i = 0; i < b.len; i++) {
        char saved = b.p[i];
        b.p[i] = saved == 'A' ? 'B' : 'A';
        int rc = tok_jws_verify((struct str){b.p, b.len}, lookup, NULL, payload, sizeof(payload),
                                &n, typ);
        b.p[i] = saved;
        if (rc == 0)
            harness_fail(__FILE__, __LINE__, "changed byte %zu still verifies", i);
    }
    buf_fini(&b);
}

/* The claim checks after the signature: lifetimes at their edges, and integers at their
 * limits (which once overflowed `exp + leeway`: a signed-integer overflow UBSan names). */
static int claims_at_1000(const char *exp)
{
    static struct tok_ring ring;
    struct tok_claims c;
    struct buf b;
    char payload[256];
    ring.keys[0].k = key;
    ring.n = 1;
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"https://i\",\"exp\":%s,\"iat\":1000,\"sub\":\"s\",\"client_id\":\"c\","
             "\"jti\":\"j\"}",
             exp);
    buf_init(&b, 4096);
    int rc = tok_jws_sign(&key, "at+jwt", payload, strlen(payload), &b);
    if (!rc)
        rc = tok_jwt_verify(&ring, "https://i", 1000, 30, (struct str){b.p, b.len}, &c);
    buf_fini(&b);
    return rc;
}

TEST(jwt_lifetime_edges_and_limits)
{
    char horizon[32];
    setup();
    ASSERT_EQ_INT(claims_at_1000("2000"), 0);
    /* exp is exact: our own tokens, our own clock (the 30 s leeway is for nbf and iat) */
    ASSERT_EQ_INT(claims_at_1000("1001"), 0);
    ASSERT_EQ_INT(claims_at_1000("1000"), ERR_INVAL);
    ASSERT_EQ_INT(claims_at_1000("988"), ERR_INVAL); /* 12 s past: was "active" before */
    snprintf(horizon, sizeof(horizon), "%lld", 1000LL + TOK_EXP_HORIZON_S);
    ASSERT_EQ_INT(claims_at_1000(horizon), 0);
    snprintf(horizon, sizeof(horizon), "%lld", 1000LL + TOK_EXP_HORIZON_S + 1);
    ASSERT_EQ_INT(claims_at_1000(horizon), ERR_INVAL); /* longer than we ever issue */
    ASSERT_EQ_INT(claims_at_1000("9223372036854775807"), ERR_INVAL);
    ASSERT_EQ_INT(claims_at_1000("-9223372036854775808"), ERR_INVAL);
    ASSERT_EQ_INT(claims_at_1000("2000.5"), ERR_INVAL);
}

/* Every claim check after a good signature, one at a time (issue #11 item 19). */
static int verify_signed(const char *typ, const char *payload)
{
    static struct tok_ring ring;
    struct tok_claims c;
    struct buf b;
    ring.keys[0].k = key;
    ring.n = 1;
    buf_init(&b, 4096);
    int rc = tok_jws_sign(&key, typ, payload, strlen(payload), &b);
    if (!rc)
        rc = tok_jwt_verify(&ring, "https://i", 1000, 30, (struct str){b.p, b.len}, &c);
    buf_fini(&b);
    return rc;
}

#define GOOD_CLAIMS "\"iss\":\"https://i\",\"exp\":2000,\"iat\":1000"

TEST(jwt_claim_rejections)
{
    setup();
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\","
                                          "\"jti\":\"j\",\"aud\":\"api\",\"nbf\":1020}"),
                  0); /* nbf 20 s ahead: within the leeway */
    ASSERT_EQ_INT(verify_signed("application/at+jwt",
                                "{" GOOD_CLAIMS
                                ",\"sub\":\"s\",\"client_id\":\"c\",\"jti\":\"j\"}"),
                  0);
    /* another kind of JWT signed by the same key: an ID token is not an access token */
    ASSERT_EQ_INT(
        verify_signed("JWT", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\",\"jti\":\"j\"}"),
        ERR_INVAL);
    ASSERT_EQ_INT(verify_signed("at+jwt", "[1,2]"), ERR_INVAL);
    ASSERT_EQ_INT(verify_signed("at+jwt", "\"str\""), ERR_INVAL);
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\","
                                          "\"jti\":\"j\",\"nbf\":1031}"),
                  ERR_INVAL); /* not yet valid */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\","
                                          "\"jti\":\"j\",\"nbf\":\"x\"}"),
                  ERR_INVAL);
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"client_id\":\"c\",\"jti\":\"j\"}"),
                  ERR_INVAL); /* no sub */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"jti\":\"j\"}"),
                  ERR_INVAL); /* no client_id */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\"}"),
                  ERR_INVAL); /* no jti */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":7,\"client_id\":\"c\","
                                          "\"jti\":\"j\"}"),
                  ERR_INVAL);
    ASSERT_EQ_INT(verify_signed("at+jwt", "{" GOOD_CLAIMS ",\"sub\":\"s\",\"client_id\":\"c\","
                                          "\"jti\":\"j\",\"aud\":[7]}"),
                  ERR_INVAL); /* an audience that is not a string */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{\"iss\":\"https://other\",\"exp\":2000,\"iat\":1000,"
                                          "\"sub\":\"s\",\"client_id\":\"c\",\"jti\":\"j\"}"),
                  ERR_INVAL); /* another issuer */
    ASSERT_EQ_INT(verify_signed("at+jwt", "{\"iss\":\"https://i\",\"exp\":2000,\"iat\":1031,"
                                          "\"sub\":\"s\",\"client_id\":\"c\",\"jti\":\"j\"}"),
                  ERR_INVAL); /* issued in the future */
}

/* An access token issued with `in`'s claims at 1000, verified at 1010: out, and whether its
 * payload was recognised by its bytes (tok_jwt_own_claims) rather than read by jansson. */
static int issue_and_verify(struct tok_claims *in, struct tok_claims *out, bool *own)
{
    static struct tok_ring ring;
    struct tok_claim_views v;
    char payload[TOK_PAYLOAD_MAX];
    size_t n;
    struct buf b;
    ring.keys[0].k = key;
    ring.n = 1;
    buf_init(&b, 8192);
    int rc = tok_jwt_issue(&ring, TOK_ALG_EDDSA, "https://i", 1000, 600, in, &b);
    if (!rc)
        rc = tok_jws_verify((struct str){b.p, b.len}, lookup, NULL, payload, sizeof(payload), &n,
                            NULL);
    if (!rc) {
        *own = tok_jwt_own_claims(payload, n, &v);
        rc = tok_jwt_verify(&ring, "https://i", 1010, 30, (struct str){b.p, b.len}, out);
    }
    buf_fini(&b);
    return rc;
}

static bool own_claims(const char *payload)
{
    struct tok_claim_views v;
    return tok_jwt_own_claims(payload, strlen(payload), &v);
}

/* The claims tok_jwt_issue writes are read by their bytes, and give what was issued; a
 * value JSON must escape, and any other shape, go to jansson and give the same. */
TEST(own_claims_recognised_by_their_bytes_and_others_parsed)
{
    struct tok_claims in, out;
    bool own = false;
    struct tok_claim_views v;
    setup();
    memset(&in, 0, sizeof(in));
    str_copy(in.sub, sizeof(in.sub), "user-1");
    str_copy(in.client_id, sizeof(in.client_id), "app");
    str_copy(in.scope, sizeof(in.scope), "read write");
    str_copy(in.aud, sizeof(in.aud), "https://api.example");
    ASSERT_EQ_INT(issue_and_verify(&in, &out, &own), 0);
    ASSERT_TRUE(own);
    ASSERT_TRUE(memcmp(&in, &out, sizeof(in)) == 0); /* every claim, jti and times too */
    memset(in.scope, 0, sizeof(in.scope));           /* the optional ones left out */
    memset(in.aud, 0, sizeof(in.aud));
    in.jti[0] = '\0';
    ASSERT_EQ_INT(issue_and_verify(&in, &out, &own), 0);
    ASSERT_TRUE(own);
    ASSERT_TRUE(memcmp(&in, &out, sizeof(in)) == 0);
    str_copy(in.sub, sizeof(in.sub),
             "a \"quoted\" \\ name \xc3\xa9\t"); /* escaped in the payload: jansson */
    in.jti[0] = '\0';
    ASSERT_EQ_INT(issue_and_verify(&in, &out, &own), 0);
    ASSERT_TRUE(!own);
    ASSERT_TRUE(memcmp(&in, &out, sizeof(in)) == 0);

    const char *good =
        "{\"iss\":\"https://i\",\"sub\":\"s\",\"aud\":\"a\",\"exp\":2000,\"iat\":1000,"
        "\"jti\":\"j\",\"client_id\":\"c\",\"scope\":\"x y\"}";
    ASSERT_TRUE(tok_jwt_own_claims(good, strlen(good), &v));
    ASSERT_TRUE(str_eq(v.iss, STR_LIT("https://i")) && str_eq(v.sub, STR_LIT("s")) &&
                str_eq(v.aud, STR_LIT("a")) && str_eq(v.jti, STR_LIT("j")) &&
                str_eq(v.client_id, STR_LIT("c")) && str_eq(v.scope, STR_LIT("x y")) &&
                v.exp == 2000 && v.iat == 1000 && !v.has_nbf);
    ASSERT_EQ_INT(verify_signed("at+jwt", good), 0);
    /* other shapes: not recognised, and jansson's answer stands */
    static const struct {
        const char *payload;
        int rc;
    } other[] = {
        {"{\"sub\":\"s\",\"iss\":\"https://i\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"}",
         0}, /* another order */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"} ",
         0}, /* a space after */
        {"{\"iss\":\"https://i\",\"sub\":\"\\u0073\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"}",
         0}, /* an escape */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\",\"nbf\":1031}",
         ERR_INVAL}, /* a member more: nbf, not yet valid */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":02000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"}",
         ERR_INVAL}, /* a leading zero: not JSON */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":2000.0,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"}",
         ERR_INVAL}, /* a real */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":1000000000000000000000,\"iat\":1000,"
         "\"jti\":\"j\",\"client_id\":\"c\"}",
         ERR_INVAL}, /* 22 digits */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\",\"scope\":\"a\",\"scope\":\"b\"}",
         ERR_INVAL}, /* a duplicate */
        {"{\"iss\":\"https://i\",\"sub\":\"s\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
         "\"client_id\":\"c\"",
         ERR_INVAL}, /* cut short */
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (own_claims(other[i].payload) ||
            verify_signed("at+jwt", other[i].payload) != other[i].rc)
            harness_fail(__FILE__, __LINE__, "shape %zu", i);
    }
    /* recognised, then refused by the checks: another issuer, too long a sub */
    ASSERT_TRUE(own_claims("{\"iss\":\"https://o\",\"sub\":\"s\",\"exp\":2000,\"iat\":1000,"
                           "\"jti\":\"j\",\"client_id\":\"c\"}"));
    ASSERT_EQ_INT(verify_signed("at+jwt", "{\"iss\":\"https://o\",\"sub\":\"s\",\"exp\":2000,"
                                          "\"iat\":1000,\"jti\":\"j\",\"client_id\":\"c\"}"),
                  ERR_INVAL);
    char big[512];
    snprintf(big, sizeof(big),
             "{\"iss\":\"https://i\",\"sub\":\"%0129d\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
             "\"client_id\":\"c\"}",
             0);
    ASSERT_TRUE(own_claims(big));
    ASSERT_EQ_INT(verify_signed("at+jwt", big), ERR_INVAL);
    snprintf(big, sizeof(big),
             "{\"iss\":\"https://i\",\"sub\":\"%0128d\",\"exp\":2000,\"iat\":1000,\"jti\":\"j\","
             "\"client_id\":\"c\"}",
             0);
    ASSERT_EQ_INT(verify_signed("at+jwt", big), 0); /* (128 characters: fits) */
}

static const char *mk(const char *header, const char *payload, const char *sig, char *out)
{
    char h[256], p[256];
    cr_b64url_encode(header, strlen(header), h, sizeof(h));
    cr_b64url_encode(payload, strlen(payload), p, sizeof(p));
    snprintf(out, 1024, "%s.%s.%s", h, p, sig);
    return out;
}

TEST(attacks_are_rejected)
{
    char t[1024], payload[128];
    size_t n;
    setup();
    const char *sig = strrchr(A4, '.') + 1;
    /* alg none, with and without a signature */
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"none\"}", "{}", "", t)), lookup, NULL,
                                 payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"none\",\"kid\":\"k1\"}", "{}", sig, t)),
                                 lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    /* HS256 "signed" with the public key as the HMAC secret */
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{}", sig, t)),
                                 lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    /* unknown kid: told apart, so a caller may look for a newer key */
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"EdDSA\",\"kid\":\"zz\"}", "{}", sig, t)),
                                 lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_NOTFOUND);
    /* duplicate alg (parsers could disagree), crit, non-string kid */
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"none\",\"alg\":\"EdDSA\"}", "{}", sig, t)),
                                 lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"EdDSA\",\"crit\":[\"x\"]}", "{}", sig, t)),
                                 lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    ASSERT_EQ_INT(tok_jws_verify(str_c(mk("{\"alg\":\"EdDSA\",\"kid\":7}", "{}", sig, t)), lookup,
                                 NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    /* structure */
    ASSERT_EQ_INT(tok_jws_verify(STR_LIT("a.b"), lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    ASSERT_EQ_INT(
        tok_jws_verify(STR_LIT("a.b.c.d.e"), lookup, NULL, payload, sizeof(payload), &n, NULL),
        ERR_INVAL);
    ASSERT_EQ_INT(tok_jws_verify(STR_LIT(""), lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    /* padding or a non-canonical last character is not base64url */
    char padded[512];
    snprintf(padded, sizeof(padded), "%s=", A4);
    ASSERT_EQ_INT(tok_jws_verify(str_c(padded), lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_INVAL);
    /* oversized */
    static char big[TOK_JWS_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    ASSERT_EQ_INT(tok_jws_verify(str_c(big), lookup, NULL, payload, sizeof(payload), &n, NULL),
                  ERR_LIMIT);
    /* payload larger than the caller's buffer */
    ASSERT_EQ_INT(tok_jws_verify(str_c(A4), lookup, NULL, payload, 8, &n, NULL), ERR_LIMIT);
}

/* A token with this header, signed for real by the test key (the header's bytes as given). */
static const char *signed_with(const char *header, char *out)
{
    uint8_t sig[CR_ED25519_SIG];
    char s64[128];
    mk(header, "{}", "", out);
    size_t len = strlen(out) - 1; /* header.payload, without the last dot */
    cr_ed25519_sign(sig, out, len, key.sk);
    cr_b64url_encode(sig, sizeof(sig), s64, sizeof(s64));
    snprintf(out + len, 1024 - len, ".%s", s64);
    return out;
}

static bool own(const char *h)
{
    struct str alg, typ, kid;
    return tok_jws_own_header(h, strlen(h), &alg, &typ, &kid);
}

/* tok_jws_verify's answer for a token with this header, signed for real; its typ in typ. */
static int verify_header(const char *header, char typ[32])
{
    char t[1024], payload[128];
    size_t n;
    return tok_jws_verify(str_c(signed_with(header, t)), lookup, NULL, payload, sizeof(payload), &n,
                          typ);
}

/* The header tok_jws_sign writes is read without JSON; any other spelling goes to jansson
 * and means the same. */
TEST(own_header_recognised_by_its_bytes_and_others_parsed)
{
    char typ[32];
    struct str a, ty, k;
    setup();
    const char *h = "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}";
    ASSERT_TRUE(tok_jws_own_header(h, strlen(h), &a, &ty, &k));
    ASSERT_TRUE(str_eq(a, STR_LIT("EdDSA")) && str_eq(ty, STR_LIT("at+jwt")) &&
                str_eq(k, STR_LIT("k1")));
    h = "{\"alg\":\"ES256\",\"kid\":\"Ab-_9.x+/\"}";
    ASSERT_TRUE(tok_jws_own_header(h, strlen(h), &a, &ty, &k));
    ASSERT_TRUE(str_eq(a, STR_LIT("ES256")) && !ty.p && str_eq(k, STR_LIT("Ab-_9.x+/")));
    /* what tok_jws_sign writes, with a typ and without, is recognised */
    for (int with_typ = 0; with_typ < 2; with_typ++) {
        struct buf b;
        char hd[256];
        size_t hn;
        buf_init(&b, 4096);
        ASSERT_EQ_INT(tok_jws_sign(&key, with_typ ? "at+jwt" : NULL, "{}", 2, &b), 0);
        ASSERT_EQ_INT(cr_b64url_decode(b.p, (size_t)((char *)memchr(b.p, '.', b.len) - b.p), hd,
                                       sizeof(hd), &hn),
                      0);
        ASSERT_TRUE(tok_jws_own_header(hd, hn, &a, &ty, &k));
        ASSERT_TRUE(str_eq(a, STR_LIT("EdDSA")) && str_eq(k, STR_LIT("k1")) &&
                    (with_typ ? str_eq(ty, STR_LIT("at+jwt")) : !ty.p));
        buf_fini(&b);
    }
    /* what it leaves to the parser */
    static const char *const others[] = {
        "{ \"alg\":\"EdDSA\",\"kid\":\"k1\"}",        /* space */
        "{\"kid\":\"k1\",\"alg\":\"EdDSA\"}",         /* another order */
        "{\"alg\":\"Ed\\u0044SA\",\"kid\":\"k1\"}",   /* an escape */
        "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"x\":1}", /* a member more */
        "{\"alg\":\"EdDSA\",\"kid\":\"k1\"} ",        /* a byte after */
        "{\"alg\":\"EdDSA\",\"kid\":\"\"}",           /* empty */
        "{\"alg\":\"EdDSA\",\"kid\":\"k1\"",          /* cut */
        "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}",        /* no kid */
        "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"kid\":\"k2\"}",
        "{\"alg\":\"EdDSA\",\"kid\":"
        "\"12345678901234567890123456789012345678901234567890123456789012345\"}", /* 65 */
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (own(others[i]))
            harness_fail(__FILE__, __LINE__, "recognised: %s", others[i]);
    /* both ways verify, with the same typ */
    ASSERT_EQ_INT(verify_header("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"k1\"}", typ), 0);
    ASSERT_EQ_STR(typ, "JWT");
    ASSERT_EQ_INT(verify_header("{\"kid\":\"k1\", \"typ\":\"J\\u0057T\",\"alg\":\"EdDSA\"}", typ),
                  0);
    ASSERT_EQ_STR(typ, "JWT");
    /* a duplicate is refused however it is spelled */
    ASSERT_EQ_INT(verify_header("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"kid\":\"k1\"}", typ),
                  ERR_INVAL);
    /* an alg with a NUL in it is not "EdDSA" (the C string comparison once said it was) */
    ASSERT_EQ_INT(verify_header("{\"alg\":\"EdDSA\\u0000\",\"kid\":\"k1\"}", typ), ERR_INVAL);
}

TEST(b64url_strict)
{
    uint8_t out[16];
    size_t n;
    setup();
    ASSERT_EQ_INT(cr_b64url_decode("YQ", 2, out, sizeof(out), &n), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(cr_b64url_decode("YR", 2, out, sizeof(out), &n), ERR_INVAL); /* unused bits */
    ASSERT_EQ_INT(cr_b64url_decode("YQ==", 4, out, sizeof(out), &n), ERR_INVAL);
    ASSERT_EQ_INT(cr_b64url_decode("Y+", 2, out, sizeof(out), &n), ERR_INVAL);
    ASSERT_EQ_INT(cr_b64url_decode("Y", 1, out, sizeof(out), &n), ERR_INVAL);
    ASSERT_EQ_INT(cr_b64url_decode("YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo", 35, out, sizeof(out), &n),
                  ERR_LIMIT);
    ASSERT_TRUE(cr_eq("abc", "abc", 3));
    ASSERT_TRUE(!cr_eq("abc", "abd", 3));
}

static struct tok_key pkey_key;

static const struct tok_key *lookup_pkey(void *ctx, struct str kid)
{
    (void)ctx;
    return kid.p && str_eq(kid, str_c(pkey_key.kid)) ? &pkey_key : NULL;
}

static void pkey_roundtrip(enum tok_alg alg, enum cr_pkey_alg calg, size_t sig_b64_len)
{
    struct buf b, pem;
    char payload[128];
    size_t n;

    memset(&pkey_key, 0, sizeof(pkey_key));
    pkey_key.alg = alg;
    memcpy(pkey_key.kid, "pk", 3);
    if (cr_pkey_generate(calg, &pkey_key.pkey)) {
        harness_fail(__FILE__, __LINE__, "keygen failed");
        return;
    }
    buf_init(&b, 8192);
    if (tok_jws_sign(&pkey_key, "at+jwt", "{\"a\":1}", 7, &b)) {
        harness_fail(__FILE__, __LINE__, "sign failed");
        return;
    }
    struct str tok = {b.p, b.len};
    const char *dot = memrchr(b.p, '.', b.len);
    if ((size_t)(b.p + b.len - dot - 1) != sig_b64_len)
        harness_fail(__FILE__, __LINE__, "signature is %zu b64 chars, want %zu",
                     (size_t)(b.p + b.len - dot - 1), sig_b64_len);
    if (tok_jws_verify(tok, lookup_pkey, NULL, payload, sizeof(payload), &n, NULL) ||
        strcmp(payload, "{\"a\":1}") != 0)
        harness_fail(__FILE__, __LINE__, "%s round trip failed", tok_alg_name(alg));
    /* a changed signature byte fails */
    b.p[b.len - 5] = b.p[b.len - 5] == 'A' ? 'B' : 'A';
    if (tok_jws_verify(tok, lookup_pkey, NULL, payload, sizeof(payload), &n, NULL) == 0)
        harness_fail(__FILE__, __LINE__, "%s accepted a changed signature", tok_alg_name(alg));
    /* the key survives PEM */
    buf_init(&pem, 8192);
    struct cr_pkey *back = NULL;
    if (cr_pkey_to_pem(pkey_key.pkey, &pem) || cr_pkey_from_pem(calg, pem.p, pem.len, &back) ||
        cr_pkey_from_pem(calg == CR_ES256 ? CR_RS256 : CR_ES256, pem.p, pem.len, &back) == 0)
        harness_fail(__FILE__, __LINE__, "PEM round trip or type check failed");
    cr_pkey_free(back);
    buf_fini(&pem);
    buf_fini(&b);
    cr_pkey_free(pkey_key.pkey);
}

TEST(b64url_public_encoder_matches_the_constant_time_one)
{
    unsigned char src[300];
    char a[512], b[512];
    cr_init();
    cr_random(src, sizeof(src));
    for (size_t n = 0; n <= sizeof(src); n++) {
        size_t la = cr_b64url_encode(src, n, a, sizeof(a));
        size_t lb = cr_b64url_encode_public(src, n, b, sizeof(b));
        ASSERT_EQ_INT(lb, la);
        ASSERT_EQ_MEM(b, lb + 1, a, la + 1); /* (the NUL too) */
        size_t dn;
        unsigned char back[300];
        ASSERT_EQ_INT(cr_b64url_decode(b, lb, back, sizeof(back), &dn), 0);
        ASSERT_EQ_MEM(back, dn, src, n);
    }
    ASSERT_EQ_INT(cr_b64url_encode_public(src, 3, b, CR_B64_PUBLIC_CAP(3) - 1), 0); /* short */
    ASSERT_EQ_INT(cr_b64url_encode_public(src, 4, b, CR_B64_PUBLIC_CAP(4)), 6);
}

/* Every byte value at every place of a six-byte group (the pairs table's four lookups), and
 * of the three-byte and shorter tails, among random neighbours; each input in a heap block
 * of its exact length, so that ASan sees any read past it. */
TEST(b64url_public_encoder_every_byte_in_every_place)
{
    char a[32], b[32];
    cr_init();
    for (size_t n = 1; n <= 12; n++) {
        unsigned char *src = malloc(n);
        ASSERT_TRUE(src != NULL);
        for (size_t at = 0; at < n; at++)
            for (unsigned v = 0; v < 256; v++) {
                cr_random(src, n);
                src[at] = (unsigned char)v;
                size_t la = cr_b64url_encode(src, n, a, sizeof(a));
                size_t lb = cr_b64url_encode_public(src, n, b, CR_B64_PUBLIC_CAP(n));
                ASSERT_EQ_INT(lb, la);
                ASSERT_EQ_MEM(b, lb + 1, a, la + 1);
            }
        free(src);
    }
}

/* The table decoder for a JWT's parts answers as the constant-time one does: the same
 * bytes for every valid input, and the same refusal (ERR_INVAL, ERR_LIMIT) for inputs with a
 * byte outside the alphabet, padding, whitespace, a length of 4k+1, unused bits set, or too
 * little room. fuzz_jwt compares the two on every input it makes. */
TEST(b64url_public_decoder_answers_as_the_constant_time_one)
{
    unsigned char src[300], a[300], b[300];
    char enc[512], bad[512];
    const char odd[] = "=+/ \t.\n\r\0\x80\xff*";
    cr_init();
    for (size_t n = 0; n <= 200; n++) {
        cr_random(src, n);
        size_t len = cr_b64url_encode(src, n, enc, sizeof(enc)), la = 0, lb = 0;
        ASSERT_EQ_INT(cr_b64url_decode_public(enc, len, b, sizeof(b), &lb), 0);
        ASSERT_EQ_MEM(b, lb, src, n);
        /* too little room: both refuse before decoding */
        if (n)
            ASSERT_EQ_INT(cr_b64url_decode_public(enc, len, b, n - 1, &lb), ERR_LIMIT);
        for (size_t i = 0; i < len; i += 7) { /* one byte replaced by each odd one */
            for (size_t k = 0; k < sizeof(odd) - 1; k++) {
                memcpy(bad, enc, len);
                bad[i] = odd[k];
                ASSERT_EQ_INT(cr_b64url_decode_public(bad, len, b, sizeof(b), &lb),
                              cr_b64url_decode(bad, len, a, sizeof(a), &la));
            }
        }
        /* the last character's unused bits set; one character more or less */
        if (len % 4 >= 2) {
            memcpy(bad, enc, len);
            bad[len - 1] = bad[len - 1] == 'A' ? 'B' : bad[len - 1] == '_' ? '-' : 'A' + 1;
            int rb = cr_b64url_decode_public(bad, len, b, sizeof(b), &lb);
            ASSERT_EQ_INT(rb, cr_b64url_decode(bad, len, a, sizeof(a), &la));
            if (rb == 0)
                ASSERT_EQ_MEM(b, lb, a, la);
        }
        for (size_t m = len ? len - 1 : 0; m <= len + 1 && m < sizeof(enc); m++) {
            memcpy(bad, enc, len);
            bad[len] = 'Q';
            int rb = cr_b64url_decode_public(bad, m, b, sizeof(b), &lb);
            ASSERT_EQ_INT(rb, cr_b64url_decode(bad, m, a, sizeof(a), &la));
            if (rb == 0)
                ASSERT_EQ_MEM(b, lb, a, la);
        }
    }
}

TEST(es256_and_rs256)
{
    cr_init();
    pkey_roundtrip(TOK_ALG_ES256, CR_ES256, 86);  /* 64 bytes R||S */
    pkey_roundtrip(TOK_ALG_RS256, CR_RS256, 342); /* 256 bytes */
}

/* Every ES256 signature we make has the low s (half of them would not by chance: 64 in a
 * row is 2^-64), and its high twin is refused. */
TEST(es256_signatures_are_low_s)
{
    static const uint8_t half_n[32] = {0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
                                       0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
                                       0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};
    struct cr_pkey *k;
    uint8_t out[CR_PKEY_SIG_MAX]; /* r || s */
    size_t len;
    cr_init();
    ASSERT_EQ_INT(cr_pkey_generate(CR_ES256, &k), 0);
    for (int i = 0; i < 64; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "m%d", i);
        ASSERT_EQ_INT(cr_pkey_sign(k, msg, strlen(msg), out, &len), 0);
        ASSERT_EQ_INT(len, 64);
        ASSERT_TRUE(memcmp(out + 32, half_n, 32) <= 0);
        ASSERT_TRUE(cr_pkey_verify(k, msg, strlen(msg), out, len));
    }
    cr_pkey_free(k);
}

/* RFC 7515 A.3: JWS using ECDSA P-256 SHA-256. The private key is the RFC's d (PKCS#8 PEM
 * made once with python3-cryptography; its x and y are checked against the RFC below). */
static const char *A3_PEM = "-----BEGIN PRIVATE KEY-----\n"
                            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
                            "H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp\n"
                            "7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt\n"
                            "-----END PRIVATE KEY-----\n";
static const char *A3_JWS =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/* The same signature with s replaced by n - s (computed with Python's integers): the RFC's
 * s is the high one of the pair, which floodgate refuses (issue #11 item 14). */
static const char *A3_JWS_LOW_S =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmU69fgrc8OPGycO0lD3tat_FoFp57SETepkeks4eL_QfA";

static const struct tok_key *lookup_any(void *ctx, struct str kid)
{
    (void)kid; /* the RFC example has no kid */
    return ctx;
}

TEST(rfc7515_a3_es256)
{
    struct tok_key k = {0};
    struct buf jwk;
    char payload[256], tok[400];
    size_t n;

    cr_init();
    k.alg = TOK_ALG_ES256;
    ASSERT_EQ_INT(cr_pkey_from_pem(CR_ES256, A3_PEM, strlen(A3_PEM), &k.pkey), 0);
    buf_init(&jwk, 1024);
    ASSERT_EQ_INT(cr_pkey_jwk(k.pkey, &jwk), 0);
    buf_append(&jwk, "", 1);
    ASSERT_TRUE(strstr(jwk.p, "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"") != NULL);
    ASSERT_TRUE(strstr(jwk.p, "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"") != NULL);
    /* the RFC's own signature has a high s: malleable, refused */
    ASSERT_TRUE(tok_jws_verify(str_c(A3_JWS), lookup_any, &k, payload, sizeof(payload), &n, NULL) !=
                0);
    /* its low-s twin is the same signature mathematically: accepted */
    ASSERT_EQ_INT(
        tok_jws_verify(str_c(A3_JWS_LOW_S), lookup_any, &k, payload, sizeof(payload), &n, NULL), 0);
    ASSERT_TRUE(strstr(payload, "\"iss\":\"joe\"") != NULL);
    snprintf(tok, sizeof(tok), "%s", A3_JWS_LOW_S);
    tok[strlen(tok) - 3] ^= 1; /* flip a bit of S */
    ASSERT_TRUE(tok_jws_verify(str_c(tok), lookup_any, &k, payload, sizeof(payload), &n, NULL) !=
                0);
    buf_fini(&jwk);
    cr_pkey_free(k.pkey);
}

/* Signing refuses what it cannot do and leaves the buffer as it was. */
TEST(sign_refusals_leave_the_buffer_alone)
{
    struct buf b;
    struct tok_key none = {0};
    setup();
    ASSERT_EQ_INT(tok_alg_parse("EdDSA"), TOK_ALG_EDDSA);
    ASSERT_EQ_INT(tok_alg_parse("RS256"), TOK_ALG_RS256);
    ASSERT_EQ_INT(tok_alg_parse("HS256"), TOK_ALG_NONE);
    ASSERT_TRUE(tok_alg_name(TOK_ALG_NONE) == NULL);
    buf_init(&b, 64); /* too small for any token */
    buf_append(&b, "x", 1);
    ASSERT_EQ_INT(tok_jws_sign(&key, "at+jwt", "{\"a\":1}", 7, &b), ERR_LIMIT);
    ASSERT_EQ_MEM(b.p, b.len, "x", 1);
    none.alg = TOK_ALG_EDDSA; /* no private key */
    ASSERT_EQ_INT(tok_jws_sign(&none, "at+jwt", "{}", 2, &b), ERR_INVAL);
    none.alg = TOK_ALG_ES256;
    ASSERT_EQ_INT(tok_jws_sign(&none, NULL, "{}", 2, &b), ERR_INVAL);
    ASSERT_EQ_MEM(b.p, b.len, "x", 1);
    buf_fini(&b);
    /* without a typ the header has none, and the verifier reports it empty */
    char payload[64], typ[32];
    size_t n;
    buf_init(&b, 4096);
    ASSERT_EQ_INT(tok_jws_sign(&key, NULL, "{}", 2, &b), 0);
    ASSERT_EQ_INT(
        tok_jws_verify((struct str){b.p, b.len}, lookup, NULL, payload, sizeof(payload), &n, typ),
        0);
    ASSERT_EQ_STR(typ, "");
    buf_fini(&b);
}

/* A PEM that is not a key, or a key of another kind or size than the algorithm names, is
 * refused (a key record must not change its algorithm by what it holds). */
TEST(pem_keys_must_match_their_algorithm)
{
    struct cr_pkey *k = NULL, *ec = NULL;
    struct buf pem;
    cr_init();
    ASSERT_EQ_INT(cr_pkey_from_pem(CR_ES256, "nonsense", 8, &k), ERR_INVAL);
    ASSERT_EQ_INT(cr_pkey_generate(CR_ES256, &ec), 0);
    buf_init(&pem, 8192);
    ASSERT_EQ_INT(cr_pkey_to_pem(ec, &pem), 0);
    ASSERT_EQ_INT(cr_pkey_from_pem(CR_RS256, pem.p, pem.len, &k), ERR_INVAL); /* EC as RSA */
    ASSERT_EQ_INT(cr_pkey_from_pem(CR_ES256, pem.p, pem.len, &k), 0);
    struct cr_pkey *copy = cr_pkey_dup(k);
    ASSERT_TRUE(copy != NULL);
    uint8_t out[CR_PKEY_SIG_MAX];
    size_t len;
    ASSERT_EQ_INT(cr_pkey_sign(copy, "m", 1, out, &len), 0);
    ASSERT_TRUE(cr_pkey_verify(k, "m", 1, out, len));
    ASSERT_TRUE(!cr_pkey_verify(k, "m", 1, out, 63)); /* R||S is 64 bytes exactly */
    ASSERT_TRUE(!cr_pkey_verify(k, "n", 1, out, len));
    cr_pkey_free(copy);
    cr_pkey_free(k);
    cr_pkey_free(ec);
    cr_pkey_free(NULL);
    buf_fini(&pem);
    /* a real RSA key shorter than 2048 bits (openssl genpkey, 1024 bits, for this test) */
    static const char rsa1024[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAMNYvmc8p+OF8eEY\n"
        "QRNHJl6aI3azLI+dLWvD8IzqEOTcr0cYgw+884xoyyGOyCYxAy19DjYv8U7Lr5fL\n"
        "GpY7MguVNHt593mcWsdS4RhuJqmGZpGh+QUdTtCyPwlEqD5J33rwP0QBScU3nx6e\n"
        "rPT47Ssn5vicViFhycgFSKwPdf4bAgMBAAECgYAYkq1A50xnPo4yto5ZEnYtKE6V\n"
        "u+w7FJaGG9vCnh8J6wjRdK/n5ujsHLKQwhlDVJ8Ftdl3z4gXVV/9RDtP8ppUyl7/\n"
        "EKfFMsgFc13nnKiqki2/B7M7K/KHZ4Z1UBBX7rvoo1tjmWfI0uqXmiViv3lGR7Sz\n"
        "DQfUWvA40HYnrEXMAQJBAOgt5Ddl6xhduRnv+5nRfB3xQ9OnxSIlUcEgdt/x9TWz\n"
        "bsqZM0ZdQPL3WZ0DUzKq+zv04zZyzZQzWxSvc+s5YZsCQQDXY3TdP4T/C1Uqjaaf\n"
        "6CS/xOLQm3By+TKcuNEKu0EIoBSdwqqahhjdk/EUI7RBWfs5u9d8p0pG7KLTkKT/\n"
        "692BAkBCfkoat3yR2N2XGQyUa9NA/ASxzB1//vIf/j0tO60/OOkk6qUtpK1iKAap\n"
        "Gfeszhzved3MjSplJCQUk37+Qcu7AkAxkuaW9cO6n/UeMjQjod6zdLFvqhcbn1eS\n"
        "0sbqXWb+gTm9hcyWfD7E4QQfyof2cqtsAlv6iNaDtHtVjnkrnjIBAkAihVscHDjX\n"
        "Tr+nsZj8BYhScp9I0OuARcLtur7PjVI0N+itOznTYSc3MCf19SGEYUKwh07GvUF7\n"
        "a5XjwZC98yWM\n"
        "-----END PRIVATE KEY-----\n";
    ASSERT_EQ_INT(cr_pkey_from_pem(CR_RS256, rsa1024, sizeof(rsa1024) - 1, &k), ERR_INVAL);
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Identifiers from the thread's pool: never the same bytes twice (across many refills and
 * mixed sizes), never the wiped zeros, and a large request served directly. */
TEST(random_ids_are_never_handed_out_twice)
{
    static uint8_t ids[8192][16];
    static const uint8_t zero[16];
    uint32_t small;
    cr_init();
    for (size_t i = 0; i < 8192; i++) {
        cr_random_id(ids[i], 16);
        if (i % 3 == 0)
            cr_random_id(&small, sizeof(small)); /* (another size between: the pool's edges) */
    }
    qsort(ids, 8192, 16, cmp16);
    for (size_t i = 0; i < 8192; i++) {
        if (memcmp(ids[i], zero, 16) == 0)
            harness_fail(__FILE__, __LINE__, "a zero id at %zu", i);
        if (i && memcmp(ids[i], ids[i - 1], 16) == 0)
            harness_fail(__FILE__, __LINE__, "the same id twice at %zu", i);
    }
    uint8_t big[1024];
    memset(big, 0, sizeof(big));
    cr_random_id(big, sizeof(big));
    ASSERT_TRUE(memcmp(big, big + 512, 512) != 0);
}
