/* SPDX-License-Identifier: MIT */
/* Open registration; see auth_register.h. */
#include "auth/auth_register.h"

#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "event/ev.h"

/* On a worker: the name is checked first (a blocking store read, never on a loop thread),
 * so a taken name costs no hashing; the insert re-checks atomically. */
static void work(struct pool_job *pj)
{
    struct auth_registration *q = (struct auth_registration *)(void *)pj;
    struct auth_user existing;
    q->_rc = auth_user_get(q->svc->st, q->u.name, &existing);
    if (q->_rc == ERR_OK)
        q->_taken = 1;
    else if (q->_rc == ERR_NOTFOUND) {
        q->_rc = auth_pw_hash(&q->svc->pp, q->pw.p, q->pw.len, q->u.phc, sizeof(q->u.phc));
        pj->hashed = 1;
    }
    cr_wipe((void *)(uintptr_t)q->pw.p, q->pw.len);
}

static void indexed(struct store_op *op);

static void stored(struct store_op *op)
{
    struct auth_registration *q = CONTAINER_OF(op, struct auth_registration, _op);

    buf_fini(&q->_rec);
    if (op->status) {
        q->done(q, op->status == ERR_CONFLICT ? ERR_CONFLICT : ERR_BACKEND);
        return;
    }
    /* then its index entry (auth_user_index), before the answer */
    memset(op, 0, sizeof(*op));
    op->kind = STORE_OP_PUT_NEW;
    op->table = STORE_T_SUBS;
    op->key_len = strlen(q->u.id);
    memcpy(op->key, q->u.id, op->key_len);
    op->value = q->u.name;
    op->value_len = strlen(q->u.name);
    op->now = q->now;
    op->on_done = indexed;
    if (store_submit(q->svc->st, q->lp, op) != ERR_AGAIN)
        indexed(op); /* (op->status 0: the user stands; UserInfo answers its sub alone) */
}

static void indexed(struct store_op *op)
{
    struct auth_registration *q = CONTAINER_OF(op, struct auth_registration, _op);
    log_kv(LOG_INFO, "user registered", "user_id", q->u.id, LOG_END);
    if (ev_wanted(EV_USER_REGISTERED)) {
        struct ev e;
        ev_begin(&e, EV_USER_REGISTERED);
        ev_user(&e, q->u.id);
        ev_ip(&e, q->ip);
        ev_publish(&e);
    }
    q->done(q, ERR_OK);
}

static void hashed(struct pool_job *pj)
{
    struct auth_registration *q = (struct auth_registration *)(void *)pj;
    struct store_op *op = &q->_op;

    if (pj->cancelled || q->_taken || q->_rc) {
        q->done(q, pj->cancelled ? ERR_AGAIN : q->_taken ? ERR_CONFLICT : ERR_NOMEM);
        return;
    }
    buf_init(&q->_rec, 8192);
    if (auth_user_op(op, STORE_OP_PUT_NEW, &q->u, &q->_rec, stored) == ERR_OK &&
        store_submit(q->svc->st, q->lp, op) == ERR_AGAIN)
        return;
    buf_fini(&q->_rec);
    q->done(q, ERR_BACKEND);
}

int auth_register(struct auth_registration *q)
{
    const struct auth_svc *svc = q->svc;
    char name[AUTH_USERNAME_MAX + 1];

    q->bad = q->why = NULL;
    q->retry_ms = 0;
    if (auth_username_normalize(q->user, name)) {
        q->bad = "invalid_username";
        q->why = "usernames are 1-64 of a-z 0-9 . _ - @ + (case-insensitive)";
        return ERR_INVAL;
    }
    if (auth_password_policy(q->pw, svc->denylist, &q->why)) {
        q->bad = "invalid_password";
        return ERR_INVAL;
    }
    auth_user_init(&q->u, name, "", q->now);
    if (auth_user_profile(&q->u, q->email, q->display, &q->why)) {
        q->bad = "invalid_request";
        return ERR_INVAL;
    }
    q->_pj.on_work = work;
    q->_pj.on_done = hashed;
    return auth_svc_submit(svc, q->lp, &q->_pj, &q->retry_ms) == ERR_OK ? ERR_AGAIN : ERR_LIMIT;
}
