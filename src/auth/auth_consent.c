/* SPDX-License-Identifier: MIT */
/* Consent; see auth_consent.h. */
#include "auth/auth_consent.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "json/json.h"

static size_t key_of(const struct auth_consent *q, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%s\n%s", q->sub, q->client_id);
}

/* The allowed scopes in a record ("" if none or unreadable). */
static void scopes_of(const struct buf *b, char *out, size_t cap)
{
    json_t *o = json_loadb(b->p, b->len, 0, NULL);
    const char *s = json_string_value(json_object_get(o, "scope"));
    snprintf(out, cap, "%s", s ? s : "");
    json_decref(o);
}

static int finish(struct auth_consent *q, int rc, bool deferred)
{
    buf_fini(&q->_b);
    buf_fini(&q->_new);
    if (deferred)
        q->done(q, rc);
    return rc;
}

static int read_done(struct auth_consent *q, int status, bool deferred)
{
    char have[TOK_SCOPE_MAX + 1] = "";
    if (status && status != ERR_NOTFOUND)
        return finish(q, ERR_BACKEND, deferred);
    if (status == ERR_OK)
        scopes_of(&q->_b, have, sizeof(have));
    if (q->_step == 0) { /* check */
        q->granted = tok_scope_subset(str_c(q->scope), have);
        return finish(q, ERR_OK, deferred);
    }
    /* grant: the union, written over what was read (or anew) */
    char all[2 * TOK_SCOPE_MAX + 2], norm[TOK_SCOPE_MAX + 1];
    snprintf(all, sizeof(all), "%s %s", have, q->scope);
    if (tok_scope_normalize(str_c(all), norm, sizeof(norm)))
        snprintf(norm, sizeof(norm), "%s", q->scope);
    json_t *o = json_pack("{ss sI}", "scope", norm, "granted_at", (json_int_t)q->now);
    char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!j || buf_puts(&q->_new, j)) {
        json_free_str(j);
        return finish(q, ERR_NOMEM, deferred);
    }
    json_free_str(j);
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.kind = status == ERR_OK ? STORE_OP_REPLACE : STORE_OP_PUT_NEW;
    q->_op.table = STORE_T_CONSENTS;
    q->_op.key_len = key_of(q, (char *)q->_op.key, sizeof(q->_op.key));
    q->_op.value = q->_new.p;
    q->_op.value_len = q->_new.len;
    q->_op.now = q->now;
    q->_op.on_done = NULL;
    q->_step = 2;
    return ERR_AGAIN; /* (the caller submits: see submit) */
}

static void on_op(struct store_op *op);

static int submit(struct auth_consent *q, bool deferred)
{
    q->_op.on_done = on_op;
    if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
        return ERR_AGAIN;
    return finish(q, ERR_BACKEND, deferred);
}

static void on_op(struct store_op *op)
{
    struct auth_consent *q = (struct auth_consent *)(void *)op;
    if (q->_step == 2) {
        /* (a race with another grant: the next authorization asks again, harmlessly) */
        finish(q, op->status && op->status != ERR_CONFLICT ? ERR_BACKEND : ERR_OK, true);
        return;
    }
    int rc = read_done(q, op->status, true);
    if (rc == ERR_AGAIN && q->_step == 2)
        submit(q, true);
}

static int start(struct auth_consent *q, int step)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->granted = false;
    q->_step = step;
    buf_init(&q->_b, 4096);
    buf_init(&q->_new, 4096);
    size_t n = key_of(q, q->_key, sizeof(q->_key));
    q->_op.on_done = on_op;
    int rc = store_get(q->svc->st, STORE_T_CONSENTS, q->_key, n, &q->_b, q->lp, &q->_op);
    if (rc == ERR_AGAIN)
        return ERR_AGAIN;
    rc = read_done(q, rc, false);
    return rc == ERR_AGAIN && q->_step == 2 ? submit(q, false) : rc;
}

int auth_consent_check(struct auth_consent *q)
{
    return start(q, 0);
}

int auth_consent_grant(struct auth_consent *q)
{
    return start(q, 1);
}

int auth_consent_revoke(const struct auth_svc *svc, const char *sub, const char *client_id)
{
    char k[AUTH_USER_ID_LEN + AUTH_CLIENT_ID_MAX + 2];
    snprintf(k, sizeof(k), "%s\n%s", sub, client_id);
    return store_exec_kv(svc->st, STORE_OP_DELETE, STORE_T_CONSENTS, k, NULL, 0);
}

const char *auth_scope_description(const char *scope)
{
    static const struct {
        const char *scope, *what;
    } known[] = {
        {"openid", "Know who you are (your account identifier)"},
        {"profile", "See your username and name"},
        {"email", "See your email address"},
        {"offline_access", "Stay signed in when you are away (a refresh token)"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(scope, known[i].scope) == 0)
            return known[i].what;
    return "";
}
