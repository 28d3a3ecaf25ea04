/* SPDX-License-Identifier: MIT */
#include "auth/auth_admin_op.h"

#include <stdio.h>

#include "auth/auth_admin.h"
#include "auth/auth_consent.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "token/tok_keys.h"
#include "token/tok_svc.h"

static const enum auth_user_change changes[] = {
    [AUTH_ADMIN_USER_PASSWD] = AUTH_USER_PASSWORD,
    [AUTH_ADMIN_USER_DISABLE] = AUTH_USER_DISABLE,
    [AUTH_ADMIN_USER_ENABLE] = AUTH_USER_ENABLE,
    [AUTH_ADMIN_USER_DELETE] = AUTH_USER_DELETE,
};

static void user_op(const struct auth_svc *svc, struct auth_admin_op *op, int64_t now)
{
    struct auth_user u;

    switch (op->action) {
    case AUTH_ADMIN_USER_ADD:
    case AUTH_ADMIN_USER_IMPORT:
        op->rc = op->action == AUTH_ADMIN_USER_ADD
                     ? auth_admin_user_add(svc, op->name, op->secret, now, &op->profile, &u)
                     : auth_admin_user_import(svc, op->name, op->secret.p, now, &op->profile, &u);
        op->created = true;
        if (op->rc == ERR_OK)
            buf_printf(&op->out, "{\"username\":\"%s\",\"id\":\"%s\"}", u.name, u.id);
        break;
    case AUTH_ADMIN_CONSENT_REVOKE:
        op->rc = auth_user_get(svc->st, op->name, &u);
        if (op->rc == ERR_OK)
            op->rc = auth_consent_revoke(svc, u.id, op->client_id);
        if (op->rc == ERR_OK)
            buf_printf(&op->out,
                       "{\"username\":\"%s\",\"client_id\":\"%s\",\"consent\":\"revoked\"}",
                       op->name, op->client_id);
        break;
    case AUTH_ADMIN_USER_UNLOCK:
        auth_admin_unlock(svc, op->name, "admin_api");
        buf_printf(&op->out, "{\"username\":\"%s\",\"unlocked\":true}", op->name);
        op->rc = ERR_OK;
        break;
    case AUTH_ADMIN_USER_PASSWD:
    case AUTH_ADMIN_USER_DISABLE:
    case AUTH_ADMIN_USER_ENABLE:
    case AUTH_ADMIN_USER_DELETE:
        op->rc = auth_admin_user_change(svc, op->name, changes[op->action], op->secret, now, &u);
        if (op->action == AUTH_ADMIN_USER_PASSWD)
            buf_printf(&op->out, "{\"username\":\"%s\",\"password\":\"changed\"}", op->name);
        else if (op->action == AUTH_ADMIN_USER_DELETE)
            buf_printf(&op->out, "{\"deleted\":\"%s\"}", op->name);
        else
            buf_printf(&op->out, "{\"username\":\"%s\",\"disabled\":%s}", op->name,
                       op->action == AUTH_ADMIN_USER_DISABLE ? "true" : "false");
        break;
    default:
        op->rc = ERR_INVAL; /* not an action */
    }
}

static void list_op(const struct auth_svc *svc, struct auth_admin_op *op)
{
    buf_init(&op->list, 8u << 20);
    op->rc = op->action == AUTH_ADMIN_LIST_EVENTS
                 ? pol_announce_list(svc->st, &op->list)
                 : auth_admin_list(svc->st, op->action == AUTH_ADMIN_LIST_CLIENTS, &op->list);
}

void auth_admin_op_run(const struct auth_svc *svc, struct auth_admin_op *op, int64_t now)
{
    char secret[AUTH_SECRET_LEN + 1];

    op->created = false;
    auth_admin_op_fini(op); /* (an op run again starts afresh) */
    buf_init(&op->out, 65536);
    switch (op->action) {
    case AUTH_ADMIN_CLIENT_ADD:
    case AUTH_ADMIN_CLIENT_SECRET:
        op->created = op->action == AUTH_ADMIN_CLIENT_ADD;
        op->rc = op->created ? auth_admin_client_create(svc, &op->client, &op->web, now, secret)
                             : auth_client_rotate_secret(svc->st, svc->key, op->name, secret);
        if (op->created && op->rc == ERR_OK)
            auth_client_json(&op->out, &op->client, &op->web, secret);
        else if (op->rc == ERR_OK)
            buf_printf(&op->out, "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}", op->name,
                       secret);
        cr_wipe(secret, sizeof(secret));
        break;
    case AUTH_ADMIN_CLIENT_DELETE:
    case AUTH_ADMIN_EVENT_DELETE:
        op->rc = op->action == AUTH_ADMIN_CLIENT_DELETE ? auth_admin_client_delete(svc, op->name)
                                                        : pol_announce_cancel(svc->st, op->name);
        buf_printf(&op->out, "{\"deleted\":\"%s\"}", op->name);
        break;
    case AUTH_ADMIN_EVENT_ADD: {
        char id[POL_ANNOUNCE_ID_MAX + 1], json[POL_ANNOUNCE_JSON_MAX];
        op->rc = pol_announce_schedule(svc->st, op->event.name, op->event.at, op->event.duration,
                                       op->event.expect, id, json);
        op->created = true;
        if (op->rc == ERR_OK) /* (id and json are filled only then) */
            buf_printf(&op->out, "{\"id\":\"%s\",\"event\":%s}", id, json);
        break;
    }
    case AUTH_ADMIN_KEY_ROTATE: {
        struct tok_key_rotation rot;
        op->rc = tok_keys_rotate_by(svc->st, &svc->tok->keys, now, &rot);
        tok_keys_rotated(&rot, "admin_api"); /* (the keys made, even before a failure) */
        buf_printf(&op->out, "{\"kid\":\"%s\",\"active_from\":%lld,\"keys\":[",
                   tok_key_rotation_kid(&rot, svc->tok->keys.alg), (long long)rot.from);
        for (unsigned i = 0; i < rot.n; i++)
            buf_printf(&op->out, "%s{\"kid\":\"%s\",\"alg\":\"%s\"}", i ? "," : "", rot.keys[i].kid,
                       tok_alg_name(rot.keys[i].alg));
        buf_puts(&op->out, "]}");
        break;
    }
    case AUTH_ADMIN_LIST_USERS:
    case AUTH_ADMIN_LIST_CLIENTS:
    case AUTH_ADMIN_LIST_EVENTS:
        list_op(svc, op);
        break;
    default:
        user_op(svc, op, now);
    }
}

void auth_admin_op_fini(struct auth_admin_op *op)
{
    if (op->out.p)
        cr_wipe(op->out.p, op->out.cap);
    buf_fini(&op->out);
}

const char *auth_admin_op_why(const struct auth_admin_op *op)
{
    if (op->rc == ERR_LIMIT)
        return "the list is too long for one answer";
    if (op->rc != ERR_INVAL)
        return NULL;
    return op->action == AUTH_ADMIN_EVENT_ADD
               ? "at: epoch seconds, YYYY-MM-DDTHH:MM:SSZ or +DURATION; expect 1..1000; "
                 "duration 1s..30d; name of at most 100 characters"
           : op->action == AUTH_ADMIN_CLIENT_SECRET ? "a public client has no secret"
                                                    : "not a supported hash";
}
