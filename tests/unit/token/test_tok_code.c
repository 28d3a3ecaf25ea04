/* SPDX-License-Identifier: MIT */
/* Authorization codes without HTTP (#13 item 6): one use by its client, with its redirect
 * URI and PKCE verifier; a second use revokes what the first issued; every refusal leaves
 * the code as it was; a code is sealed (altered or another server key's: not a code). On
 * the embedded store, with a real loop. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "token/tok_cache.h"
#include "token/tok_code.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {9};
static struct fx F;
static struct tok_svc svc;
static int answers, last_rc;
/* RFC 7636 appendix B's verifier and its S256 challenge */
static const char verifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char challenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

static void on_redeemed(struct tok_code_redemption *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static int wait_answer(int rc)
{
    if (rc == ERR_AGAIN)
        fx_wait(&F, &answers, 1);
    return rc == ERR_AGAIN ? last_rc : rc;
}

static void grant_of(struct tok_code_grant *g, int64_t now)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->client_id, sizeof(g->client_id), "app");
    snprintf(g->redirect_uri, sizeof(g->redirect_uri), "https://app.example/cb");
    snprintf(g->challenge, sizeof(g->challenge), "%s", challenge);
    snprintf(g->nonce, sizeof(g->nonce), "n-0S6_WzA2Mj");
    snprintf(g->sub, sizeof(g->sub), "u-ann");
    snprintf(g->scope, sizeof(g->scope), "openid read");
    snprintf(g->sid, sizeof(g->sid), "sid-1");
    snprintf(g->session, sizeof(g->session), "%064d", 7);
    g->auth_time = now - 1;
    g->gen = 0; /* (the user's sessions generation: a family of another is dead) */
}

static void issue(int64_t now, char code[TOK_CODE_MAX + 1])
{
    struct tok_code_grant g;
    grant_of(&g, now);
    ASSERT_EQ_INT(tok_code_issue(&svc, &g, now, code), ERR_OK);
    ASSERT_TRUE(strlen(code) < 400); /* (a typical grant's code fits a URL comfortably) */
}

static int redeem(struct tok_code_redemption *q, const char *code, const char *client,
                  const char *uri, const char *v, int64_t now)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &F.lp;
    q->code = str_c(code);
    q->redirect_uri = str_c(uri);
    q->verifier = str_c(v);
    q->refresh = true;
    q->now = now;
    q->done = on_redeemed;
    snprintf(q->client_id, sizeof(q->client_id), "%s", client);
    answers = 0;
    return wait_answer(tok_code_redeem(q));
}

TEST(pkce_s256_is_rfc_7636s)
{
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_TRUE(tok_pkce_ok(str_c(verifier), challenge));
    ASSERT_TRUE(!tok_pkce_ok(STR_LIT("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"), challenge));
    ASSERT_TRUE(!tok_pkce_ok(STR_LIT("short"), challenge));
    ASSERT_TRUE(!tok_pkce_ok(STR_LIT("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX/"), challenge));
    ASSERT_TRUE(tok_pkce_challenge_ok(str_c(challenge)));
    ASSERT_TRUE(!tok_pkce_challenge_ok(STR_LIT("plain-is-not-a-challenge")));
}

TEST(a_code_is_used_once_by_its_client_with_its_verifier)
{
    char code[TOK_CODE_MAX + 1], other[TOK_CODE_MAX + 1];
    struct tok_code_redemption q;
    int64_t now = (int64_t)time(NULL); /* (Redis would expire the record by its clock) */
    ASSERT_EQ_INT(fx_open(&F, "code-test"), 0);
    fx_tok_svc(&F, &svc, key);
    svc.leeway_s = 5;
    issue(now, code);
    /* refusals that leave the code as it was */
    ASSERT_EQ_INT(redeem(&q, code, "other", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb/", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", "", now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_EQ_INT(redeem(&q, "not-a-code", "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    /* sealed: one character changed, or sealed under another server key, is not a code */
    snprintf(other, sizeof(other), "%s", code);
    other[strlen(other) / 2] = other[strlen(other) / 2] == 'A' ? 'B' : 'A';
    ASSERT_EQ_INT(redeem(&q, other, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    struct tok_svc stranger = svc;
    static const uint8_t key2[CR_HASH_KEY_LEN] = {10};
    stranger.key = key2;
    {
        struct tok_code_grant g;
        grant_of(&g, now);
        ASSERT_EQ_INT(tok_code_issue(&stranger, &g, now, other), ERR_OK);
    }
    ASSERT_EQ_INT(redeem(&q, other, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    /* the right client, URI and verifier: the grant, a jti to issue and a refresh family */
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_OK);
    ASSERT_EQ_STR(q.grant.sub, "u-ann");
    ASSERT_EQ_STR(q.grant.nonce, "n-0S6_WzA2Mj");
    ASSERT_EQ_STR(q.grant.scope, "openid read");
    ASSERT_EQ_INT(q.grant.auth_time, now - 1);
    ASSERT_EQ_STR(q.grant.sid, "sid-1");
    ASSERT_EQ_STR(q.grant.session,
                  "0000000000000000000000000000000000000000000000000000000000000007");
    ASSERT_TRUE(q.grant.jti[0] != '\0');
    ASSERT_TRUE(strlen(q.refresh_token) == TOK_REFRESH_LEN);
    char rt[TOK_REFRESH_LEN + 1], jti[TOK_JTI_LEN + 1];
    memcpy(rt, q.refresh_token, sizeof(rt));
    memcpy(jti, q.grant.jti, sizeof(jti));
    ASSERT_TRUE(fx_rt_active(F.st, key, rt, "app", now));
    /* used again: refused, and what the first use issued ends */
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now + 1), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_TRUE(q.refresh_token[0] == '\0');
    ASSERT_TRUE(!fx_rt_active(F.st, key, rt, "app", now + 1));
    ASSERT_EQ_INT(tok_revoked_known(jti, strlen(jti), now + 1), 1);
    /* used again under another spelling: libsodium 1.0.18 decodes any byte from 0x80 up as
     * '_', so a code with '_' in it and 0x80 in its place opened to the same grant, under
     * a use key of its own (the code's string): a second use. It is not a code. */
    for (int tries = 0; tries < 64; tries++) {
        issue(now, code);
        if (strchr(code, '_'))
            break;
    }
    ASSERT_TRUE(strchr(code, '_') != NULL);
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_OK);
    snprintf(other, sizeof(other), "%s", code);
    *strchr(other, '_') = (char)0x80;
    ASSERT_EQ_INT(redeem(&q, other, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_TRUE(q.refresh_token[0] == '\0');
    /* used, and presented with a wrong verifier: refused, and still a reuse */
    issue(now, code);
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_OK);
    memcpy(rt, q.refresh_token, sizeof(rt));
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", "", now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    ASSERT_TRUE(!fx_rt_active(F.st, key, rt, "app", now));
    /* expired: refused */
    issue(now - 100, code); /* (lived 60 s from 100 s ago) */
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    fx_close(&F);
}

TEST(the_grant_a_code_carries_round_trips)
{
    struct tok_code_grant g, back;
    uint8_t p[TOK_GRANT_MAX], rd[16];
    size_t n;
    memset(&g, 0, sizeof(g));
    snprintf(g.client_id, sizeof(g.client_id), "app \"q\"");
    snprintf(g.challenge, sizeof(g.challenge), "%s", challenge);
    snprintf(g.redirect_uri, sizeof(g.redirect_uri), "https://app.example/cb");
    snprintf(g.nonce, sizeof(g.nonce), "n");
    snprintf(g.sid, sizeof(g.sid), "sid-1");
    snprintf(g.session, sizeof(g.session), "%064d", 7);
    memset(g.scope, 's', TOK_SCOPE_MAX); /* the longest grant fits a code */
    memset(g.nonce, 'n', TOK_NONCE_MAX);
    memset(g.sub, 'u', STORE_SUB_MAX);
    g.gen = 7;
    g.expires_at = 1234567890123;
    g.auth_time = -5;
    ASSERT_EQ_INT(tok_code_grant_pack(&g, p, sizeof(p), &n), 0);
    ASSERT_EQ_INT(tok_code_grant_unpack(p, n, &back, rd), 0);
    ASSERT_EQ_STR(back.client_id, "app \"q\"");
    ASSERT_EQ_STR(back.sid, "sid-1");
    ASSERT_EQ_STR(back.session, g.session);
    ASSERT_EQ_STR(back.challenge, g.challenge);
    ASSERT_EQ_STR(back.scope, g.scope);
    ASSERT_EQ_STR(back.nonce, g.nonce);
    ASSERT_EQ_STR(back.sub, g.sub);
    ASSERT_TRUE(back.gen == 7 && back.expires_at == 1234567890123 && back.auth_time == -5);
    ASSERT_TRUE(back.redirect_uri[0] == '\0'); /* (only its digest travels) */
    char code[TOK_CODE_MAX + 1];
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(tok_code_issue(&svc, &g, 1, code), 0); /* (svc's key: any) */
    char again[TOK_CODE_MAX + 1];
    ASSERT_EQ_INT(tok_code_issue(&svc, &g, 1, again), 0);
    ASSERT_TRUE(strcmp(code, again) != 0);      /* (each seal its own nonce) */
    ASSERT_TRUE(strncmp(code, again, 32) != 0); /* (the nonce leads: no shared prefix) */
    /* cut short, or one byte more: not a grant */
    ASSERT_EQ_INT(tok_code_grant_unpack(p, n - 1, &back, rd), ERR_INVAL);
    p[n] = 0;
    ASSERT_EQ_INT(tok_code_grant_unpack(p, n + 1, &back, rd), ERR_INVAL);
    /* a challenge that is not S256's, a session key that is not hex: no code */
    snprintf(g.challenge, sizeof(g.challenge), "plain");
    ASSERT_EQ_INT(tok_code_grant_pack(&g, p, sizeof(p), &n), ERR_INVAL);
}
