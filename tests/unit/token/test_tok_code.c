/* SPDX-License-Identifier: MIT */
/* Authorization codes without HTTP (#13 item 6): one use by its client, with its redirect
 * URI and PKCE verifier; a second use revokes what the first issued; every refusal leaves
 * the code as it was. On the embedded store, with a real loop. */
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

static void on_issued(struct tok_code_issue *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

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

static void issue(int64_t now, char code[TOK_CODE_LEN + 1])
{
    struct tok_code_issue q;
    memset(&q, 0, sizeof(q));
    q.svc = &svc;
    q.lp = &F.lp;
    q.now = now;
    q.done = on_issued;
    snprintf(q.grant.client_id, sizeof(q.grant.client_id), "app");
    snprintf(q.grant.redirect_uri, sizeof(q.grant.redirect_uri), "https://app.example/cb");
    snprintf(q.grant.challenge, sizeof(q.grant.challenge), "%s", challenge);
    snprintf(q.grant.nonce, sizeof(q.grant.nonce), "n-0S6_WzA2Mj");
    snprintf(q.grant.sub, sizeof(q.grant.sub), "u-ann");
    snprintf(q.grant.scope, sizeof(q.grant.scope), "openid read");
    q.grant.auth_time = now - 1;
    answers = 0;
    ASSERT_EQ_INT(wait_answer(tok_code_issue(&q)), ERR_OK);
    memcpy(code, q.code, TOK_CODE_LEN + 1);
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
    char code[TOK_CODE_LEN + 1];
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
    /* the right client, URI and verifier: the grant, a jti to issue and a refresh family */
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_OK);
    ASSERT_EQ_STR(q.grant.sub, "u-ann");
    ASSERT_EQ_STR(q.grant.nonce, "n-0S6_WzA2Mj");
    ASSERT_EQ_STR(q.grant.scope, "openid read");
    ASSERT_EQ_INT(q.grant.auth_time, now - 1);
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
    /* expired: refused */
    issue(now - 100, code); /* (lived 60 s from 100 s ago) */
    ASSERT_EQ_INT(redeem(&q, code, "app", "https://app.example/cb", verifier, now), 0);
    ASSERT_EQ_INT(q.outcome, TOK_CODE_INVALID);
    fx_close(&F);
}

TEST(the_grant_record_round_trips)
{
    struct tok_code_grant g, back;
    struct buf b;
    memset(&g, 0, sizeof(g));
    snprintf(g.client_id, sizeof(g.client_id), "app \"q\"");
    snprintf(g.nonce, sizeof(g.nonce), "n");
    snprintf(g.sid, sizeof(g.sid), "sid-1");
    snprintf(g.session, sizeof(g.session), "%064d", 7);
    g.used = true;
    g.has_family = true;
    memset(g.family, 0xab, sizeof(g.family));
    g.gen = 7;
    buf_init(&b, 4096);
    ASSERT_EQ_INT(tok_code_grant_json(&g, &b), 0);
    ASSERT_EQ_INT(tok_code_grant_parse(b.p, b.len, &back), 0);
    ASSERT_EQ_STR(back.client_id, "app \"q\"");
    ASSERT_EQ_STR(back.sid, "sid-1");
    ASSERT_EQ_STR(back.session, g.session); /* (every field comes back: the test names each) */
    ASSERT_TRUE(back.used && back.has_family && back.gen == 7);
    ASSERT_EQ_MEM(back.family, sizeof(back.family), g.family, sizeof(g.family));
    ASSERT_EQ_INT(tok_code_grant_parse("{\"client_id\":1}", 15, &back), ERR_INVAL);
    buf_fini(&b);
}
