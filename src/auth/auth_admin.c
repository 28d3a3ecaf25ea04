/* SPDX-License-Identifier: MIT */
/* Account and client administration; see auth_admin.h. */
#include "auth/auth_admin.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "auth/auth_client_web.h"
#include "auth/auth_login.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/cr.h"
#include "event/ev.h"
#include "policy/pol_control.h"
#include "token/tok_jws.h"
#include "token/tok_keys.h"
#include "token/tok_scope.h"

/* The new user stored, with its profile (if any), then its index entry. */
static int create(const struct auth_svc *svc, const char *name, const char *phc, int64_t now,
                  const struct auth_user *profile, struct auth_user *u)
{
    auth_user_init(u, name, phc, now);
    if (profile) {
        memcpy(u->email, profile->email, sizeof(u->email));
        memcpy(u->display, profile->display, sizeof(u->display));
        u->email_verified = profile->email_verified;
    }
    int rc = auth_user_put(svc->st, u, false);
    return rc ? rc : auth_user_index(svc->st, u, false);
}

int auth_admin_user_add(const struct auth_svc *svc, const char *name, struct str pw, int64_t now,
                        const struct auth_user *profile, struct auth_user *u)
{
    char phc[AUTH_PHC_MAX];
    int rc = auth_pw_hash(&svc->pp, pw.p, pw.len, phc, sizeof(phc));
    cr_wipe((void *)(uintptr_t)pw.p, pw.len);
    if (rc)
        return ERR_NOMEM;
    return create(svc, name, phc, now, profile, u);
}

int auth_admin_user_import(const struct auth_svc *svc, const char *name, const char *phc,
                           int64_t now, const struct auth_user *profile, struct auth_user *u)
{
    bool ok, rehash;
    if (strlen(phc) >= AUTH_PHC_MAX ||
        auth_pw_verify(phc, "", 0, &svc->pp, &ok, &rehash) == ERR_INVAL)
        return ERR_INVAL;
    return create(svc, name, phc, now, profile, u);
}

static void sessions_revoked(const char *sub, const char *reason)
{
    log_kv(LOG_WARN, "every session of a user revoked", "sub", sub, "reason", reason, LOG_END);
    if (ev_wanted(EV_USER_SESSIONS_REVOKED)) {
        struct ev e;
        ev_begin(&e, EV_USER_SESSIONS_REVOKED);
        ev_user(&e, sub);
        ev_str(&e, "reason", reason);
        ev_publish(&e);
    }
}

int auth_admin_user_change(const struct auth_svc *svc, const char *name, enum auth_user_change what,
                           struct str pw, int64_t now, struct auth_user *u)
{
    char phc[AUTH_PHC_MAX] = "";
    if (what == AUTH_USER_PASSWORD) {
        int rc = auth_pw_hash(&svc->pp, pw.p, pw.len, phc, sizeof(phc));
        cr_wipe((void *)(uintptr_t)pw.p, pw.len);
        if (rc)
            return ERR_NOMEM;
    }
    int rc = auth_user_change(svc->st, name, what, phc[0] ? phc : NULL, now, u);
    if (rc)
        return rc;
    if (what == AUTH_USER_DELETE)
        auth_user_index(svc->st, u, true); /* (one left behind names no one: ids are checked) */
    if (auth_user_change_ends_sessions(what))
        sessions_revoked(u->id, what == AUTH_USER_DISABLE  ? "disabled"
                                : what == AUTH_USER_DELETE ? "deleted"
                                                           : "password_changed");
    if (what == AUTH_USER_PASSWORD)
        auth_admin_unlock(svc, name, "password_changed"); /* a reset also unlocks */
    return ERR_OK;
}

void auth_admin_unlock(const struct auth_svc *svc, const char *name, const char *how)
{
    struct auth_user u;
    auth_unlock_user(svc, name);
    if (!ev_wanted(EV_ACCOUNT_UNLOCKED))
        return;
    struct ev e;
    ev_begin(&e, EV_ACCOUNT_UNLOCKED);
    if (auth_user_get(svc->st, name, &u) == ERR_OK) /* the id, not the name (events_user_ids) */
        ev_user(&e, u.id);
    ev_str(&e, "by", how);
    ev_publish(&e);
}

void auth_admin_pin_mode(struct pol_state *pol, int mode, const char *by)
{
    if (!pol_state_pin(pol, mode))
        return;
    const char *name = pol_mode_name((enum pol_mode)mode);
    log_kv(LOG_WARN, "policy mode set by an operator", "mode", name, "by", by, LOG_END);
    if (ev_wanted(EV_POLICY_MODE_CHANGED)) {
        struct ev e;
        ev_begin(&e, EV_POLICY_MODE_CHANGED);
        ev_str(&e, "to", name);
        ev_str(&e, "by", by);
        ev_publish(&e);
    }
}

int auth_admin_client_create(const struct auth_svc *svc, struct auth_client *c,
                             const struct auth_client_web *w, int64_t now,
                             char secret_out[AUTH_SECRET_LEN + 1])
{
    int rc = auth_client_create(svc->st, svc->key, c, w, now, secret_out);
    if (rc == ERR_OK && ev_wanted(EV_CLIENT_CREATED)) {
        struct ev e;
        ev_begin(&e, EV_CLIENT_CREATED);
        ev_str(&e, "client_id", c->id);
        ev_str(&e, "name", c->name);
        ev_publish(&e);
    }
    return rc;
}

const char *auth_hash_kind(const char *phc)
{
    if (strncmp(phc, "$argon2id$", 10) == 0)
        return "argon2id";
    if (strncmp(phc, "$2", 2) == 0)
        return "bcrypt";
    if (strstr(phc, "pbkdf2"))
        return "pbkdf2-sha256";
    return "unknown";
}

static int json_str(struct buf *b, const char *s);

int auth_user_json(struct buf *b, const struct auth_user *u)
{
    /* (names and ids are of a restricted alphabet: nothing to escape; the profile is) */
    int rc = buf_printf(b,
                        "{\"username\":\"%s\",\"id\":\"%s\",\"disabled\":%s,\"created\":%lld,"
                        "\"hash\":\"%s\",\"email_verified\":%s,\"email\":",
                        u->name, u->id, u->disabled ? "true" : "false", (long long)u->created_at,
                        auth_hash_kind(u->phc), u->email_verified ? "true" : "false");
    if (!rc)
        rc = json_str(b, u->email);
    if (!rc)
        rc = buf_puts(b, ",\"name\":");
    if (!rc)
        rc = json_str(b, u->display);
    return rc ? rc : buf_puts(b, "}");
}

static int json_str(struct buf *b, const char *s)
{
    int rc = buf_puts(b, "\"");
    if (!rc)
        rc = buf_json_escape(b, s, strlen(s));
    return rc ? rc : buf_puts(b, "\"");
}

int auth_client_json(struct buf *b, const struct auth_client *c, const struct auth_client_web *w,
                     const char *secret)
{
    int rc = buf_puts(b, "{\"client_id\":");
    if (!rc)
        rc = json_str(b, c->id);
    if (!rc)
        rc = buf_puts(b, ",\"name\":");
    if (!rc)
        rc = json_str(b, c->name);
    if (!rc && secret && secret[0]) {
        rc = buf_puts(b, ",\"client_secret\":");
        if (!rc)
            rc = json_str(b, secret);
    }
    if (!rc)
        rc = buf_puts(b, ",\"grants\":");
    if (!rc)
        rc = auth_grants_json(c->grants, b);
    if (!rc)
        rc = buf_puts(b, ",\"scope\":");
    if (!rc)
        rc = json_str(b, c->scopes);
    if (!rc)
        rc = buf_puts(b, ",\"audience\":");
    if (!rc)
        rc = json_str(b, c->audiences);
    if (!rc)
        rc = buf_printf(b, ",\"access_ttl\":%lld,\"introspection\":%s,\"created\":%lld",
                        (long long)c->access_ttl, c->introspect_any ? "true" : "false",
                        (long long)c->created_at);
    if (!rc)
        rc = auth_client_flags_json(c, b);
    if (!rc && w)
        rc = auth_client_web_json(w, b);
    return rc ? rc : buf_puts(b, "}");
}

struct list_ctx {
    struct buf *b;
    int n;
    enum store_table t;
};

static int on_item(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct list_ctx *l = ctx;
    struct auth_user u;
    struct auth_client c;
    struct auth_client_web w; /* (on a worker's or the CLI's stack: 10 KiB) */
    int rc;

    if (l->t == STORE_T_USERS
            ? auth_user_decode(key, klen, val, vlen, &u)
            : auth_client_decode(key, klen, val, vlen, &c) || auth_client_decode_web(val, vlen, &w))
        return ERR_OK;
    rc = l->n ? buf_puts(l->b, ",") : ERR_OK;
    if (!rc)
        rc =
            l->t == STORE_T_USERS ? auth_user_json(l->b, &u) : auth_client_json(l->b, &c, &w, NULL);
    l->n++;
    return rc;
}

int auth_admin_list(struct store *st, bool clients, struct buf *b)
{
    struct list_ctx l = {b, 0, clients ? STORE_T_CLIENTS : STORE_T_USERS};
    int rc = buf_puts(b, "[");
    if (!rc)
        rc = store_each(st, l.t, on_item, &l);
    return rc ? rc : buf_puts(b, "]");
}

static int list_field(json_t *o, const char *name, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, name);
    char tmp[AUTH_LIST_MAX + 1];

    if (!v)
        return ERR_OK;
    if (json_is_array(v)) { /* ["a","b"] is accepted as well as "a b" */
        size_t i, n = 0;
        json_t *it;
        tmp[0] = '\0';
        json_array_foreach(v, i, it)
        {
            const char *s = json_string_value(it);
            if (!s || n + strlen(s) + 2 > sizeof(tmp))
                return ERR_INVAL;
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%s%s", n ? " " : "", s);
        }
    } else if (json_is_string(v) && json_string_length(v) < sizeof(tmp)) {
        memcpy(tmp, json_string_value(v), json_string_length(v) + 1);
    } else {
        return ERR_INVAL;
    }
    for (char *p = tmp; *p; p++)
        if (*p == ',')
            *p = ' ';
    return tok_scope_normalize(str_c(tmp), dst, cap);
}

int auth_client_from_json(json_t *o, struct auth_client *c, struct auth_client_web *w,
                          const char **why)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *method = json_string_value(json_object_get(o, "token_endpoint_auth_method"));
    const char *alg = json_string_value(json_object_get(o, "id_token_signed_response_alg"));
    char grants[AUTH_LIST_MAX + 1] = "client_credentials";
    json_t *ttl = json_object_get(o, "access_ttl");
    json_t *intro = json_object_get(o, "introspection"), *fp = json_object_get(o, "first_party");

    if (auth_client_web_from_json(o, w, why))
        return ERR_INVAL;
    if (w->n[AUTH_WEB_REDIRECT]) /* a browser's client, unless told otherwise */
        snprintf(grants, sizeof(grants), "authorization_code refresh_token");
    *why = "name is required; grants of client_credentials, refresh_token, password, "
           "authorization_code; access_ttl 10..86400; introspection and first_party true or "
           "false; token_endpoint_auth_method none, client_secret_basic or client_secret_post";
    int bad = (intro && !json_is_boolean(intro)) || (fp && !json_is_boolean(fp)) || !name ||
              strlen(name) > AUTH_NAME_MAX || list_field(o, "grants", grants, sizeof(grants)) ||
              auth_grants_parse(grants, &c->grants) || !c->grants ||
              list_field(o, "scopes", c->scopes, sizeof(c->scopes)) ||
              list_field(o, "audiences", c->audiences, sizeof(c->audiences)) ||
              (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 10 ||
                       json_integer_value(ttl) > TOK_ACCESS_TTL_MAX_S)) ||
              (method && strcmp(method, "none") && strcmp(method, "client_secret_basic") &&
               strcmp(method, "client_secret_post"));
    if (bad)
        return ERR_INVAL;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->access_ttl = ttl ? json_integer_value(ttl) : 0;
    c->introspect_any = json_is_true(intro);
    c->first_party = json_is_true(fp);
    c->public_client = method && strcmp(method, "none") == 0;
    c->id_token_alg = alg ? (uint8_t)tok_alg_parse(alg) : 0;
    if (alg && !c->id_token_alg) {
        *why = "id_token_signed_response_alg is RS256, ES256 or EdDSA";
        return ERR_INVAL;
    }
    auth_client_web_default_origins(w);
    return auth_client_validate(c, w, why);
}

int auth_admin_client_delete(const struct auth_svc *svc, const char *id)
{
    return store_exec_kv(svc->st, STORE_OP_DELETE, STORE_T_CLIENTS, id, NULL, 0);
}
