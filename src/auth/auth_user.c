/* SPDX-License-Identifier: MIT */
/* User records, the username rule, the password policy; see auth_user.h. */
#include "auth/auth_user.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "json/json.h"
#include "loop/loop.h"
#include "store/store.h"

int auth_username_normalize(struct str in, char *out)
{
    if (in.len == 0 || in.len > AUTH_USERNAME_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c | 0x20);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '@' || c == '+'))
            return ERR_INVAL;
        out[i] = (char)c;
    }
    out[in.len] = '\0';
    return ERR_OK;
}

/* A sorted array of owned strings; lookups by binary search. */
struct auth_denylist {
    char **items;
    size_t n;
};

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int auth_denylist_load(const char *path, struct auth_denylist **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[AUTH_PASSWORD_MAX + 2];
    struct auth_denylist *d;

    if (!f) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    d = xcalloc(1, sizeof(*d));
    size_t cap_items = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (!n)
            continue;
        if (d->n == cap_items) {
            cap_items = cap_items ? cap_items * 2 : 1024;
            d->items = xrealloc(d->items, cap_items * sizeof(char *));
        }
        d->items[d->n++] = xstrdup(line);
    }
    fclose(f);
    qsort(d->items, d->n, sizeof(char *), cmp);
    *out = d;
    return ERR_OK;
}

void auth_denylist_free(struct auth_denylist *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        mem_free(d->items[i]);
    mem_free(d->items);
    mem_free(d);
}

int auth_password_policy(struct str pw, const struct auth_denylist *d, const char **why)
{
    char tmp[AUTH_PASSWORD_MAX + 1];

    if (pw.len < AUTH_PASSWORD_MIN) {
        *why = "password must be at least 8 bytes";
        return ERR_INVAL;
    }
    if (pw.len > AUTH_PASSWORD_MAX) {
        *why = "password must be at most 1024 bytes";
        return ERR_INVAL;
    }
    if (memchr(pw.p, 0, pw.len)) {
        *why = "password must not contain NUL";
        return ERR_INVAL;
    }
    if (d && d->n) {
        memcpy(tmp, pw.p, pw.len);
        tmp[pw.len] = '\0';
        const char *key = tmp;
        int found = bsearch(&key, d->items, d->n, sizeof(char *), cmp) != NULL;
        cr_wipe(tmp, sizeof(tmp));
        if (found) {
            *why = "this password is too common; choose another";
            return ERR_INVAL;
        }
    }
    return ERR_OK;
}

int auth_user_encode(const struct auth_user *u, struct buf *out)
{
    int rc = buf_puts(out, "{\"id\":\"");
    if (!rc)
        rc = buf_json_escape(out, u->id, strlen(u->id));
    if (!rc)
        rc = buf_puts(out, "\",\"hash\":\"");
    if (!rc)
        rc = buf_json_escape(out, u->phc, strlen(u->phc));
    if (!rc)
        rc = buf_printf(out,
                        "\",\"disabled\":%s,\"created\":%lld,\"password_changed\":%lld,"
                        "\"sessions\":%llu,\"email_verified\":%s,\"email\":\"",
                        u->disabled ? "true" : "false", (long long)u->created_at,
                        (long long)u->password_changed_at, (unsigned long long)u->sessions,
                        u->email_verified ? "true" : "false");
    if (!rc)
        rc = buf_json_escape(out, u->email, strlen(u->email));
    if (!rc)
        rc = buf_puts(out, "\",\"name\":\"");
    if (!rc)
        rc = buf_json_escape(out, u->display, strlen(u->display));
    return rc ? rc : buf_puts(out, "\"}");
}

int auth_user_decode(const char *name, size_t nlen, const char *json, size_t n, struct auth_user *u)
{
    json_error_t je;
    int rc = ERR_INVAL;

    memset(u, 0, sizeof(*u));
    if (nlen > AUTH_USERNAME_MAX)
        return ERR_INVAL;
    memcpy(u->name, name, nlen);
    json_t *j = json_loadb(json, n, 0, &je);
    if (!j)
        return ERR_INVAL;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *h = json_string_value(json_object_get(j, "hash"));
    if (!id || !h || strlen(id) > AUTH_USER_ID_LEN || strlen(h) >= AUTH_PHC_MAX)
        goto out;
    memcpy(u->id, id, strlen(id) + 1);
    memcpy(u->phc, h, strlen(h) + 1);
    u->disabled = json_is_true(json_object_get(j, "disabled"));
    u->created_at = json_integer_value(json_object_get(j, "created"));
    u->password_changed_at = json_integer_value(json_object_get(j, "password_changed"));
    json_t *g = json_object_get(j, "sessions"); /* absent in records from before it */
    if (g && (!json_is_integer(g) || json_integer_value(g) < 0))
        goto out;
    u->sessions = g ? (uint64_t)json_integer_value(g) : 0;
    json_t *e = json_object_get(j, "email"), *d = json_object_get(j, "name");
    if ((e && json_copy_str(j, "email", u->email, sizeof(u->email))) ||
        (d && json_copy_str(j, "name", u->display, sizeof(u->display))))
        goto out;
    u->email_verified = json_is_true(json_object_get(j, "email_verified"));
    rc = ERR_OK;
out:
    json_decref(j);
    return rc;
}

/* Security-sensitive (user enumeration): an unknown name costs the decode a record costs. */
static const char dummy_rec[] =
    "{\"id\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"hash\":\"$argon2id$v=19$m=19456,t=2,p=1$"
    "AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"disabled\":false,"
    "\"created\":1700000000,\"password_changed\":1700000000,\"sessions\":0,"
    "\"email_verified\":false,\"email\":\"\",\"name\":\"\"}";

int auth_user_get_raw(struct store *st, const char *name, struct auth_user *u, struct buf *raw)
{
    int rc = store_get(st, STORE_T_USERS, name, strlen(name), raw, NULL, NULL);
    if (rc == ERR_OK)
        return auth_user_decode(name, strlen(name), raw->p, raw->len, u);
    if (rc == ERR_NOTFOUND) {
        auth_user_decode(name, strlen(name), dummy_rec, sizeof(dummy_rec) - 1, u);
        memset(u, 0, sizeof(*u));
    }
    return rc;
}

int auth_user_get(struct store *st, const char *name, struct auth_user *u)
{
    struct buf b;

    buf_init(&b, 8192);
    int rc = auth_user_get_raw(st, name, u, &b);
    buf_fini(&b);
    return rc;
}

bool auth_user_change_ends_sessions(enum auth_user_change what)
{
    return what != AUTH_USER_ENABLE;
}

static void exec_inline(struct store_op *op)
{
    (void)op; /* store_exec answers by its return value */
}

#define CHANGE_TRIES 8

int auth_user_change(struct store *st, const char *name, enum auth_user_change what,
                     const char *phc, int64_t now, struct auth_user *u)
{
    struct buf raw, rec;
    struct store_op op;
    int rc = ERR_CONFLICT;

    buf_init(&raw, 8192);
    buf_init(&rec, 8192);
    for (int i = 0; i < CHANGE_TRIES && rc == ERR_CONFLICT; i++) {
        buf_reset(&raw);
        buf_reset(&rec);
        if ((rc = auth_user_get_raw(st, name, u, &raw)))
            break;
        memset(&op, 0, sizeof(op));
        op.on_done = exec_inline;
        op.table = STORE_T_USERS;
        op.key_len = strlen(name);
        memcpy(op.key, name, op.key_len);
        op.expect = raw.p;
        op.expect_len = raw.len;
        op.now = now;
        if (auth_user_change_ends_sessions(what)) {
            u->sessions++;
            snprintf(op.sess_sub, sizeof(op.sess_sub), "%s", u->id);
            op.sess_gen = u->sessions;
        }
        switch (what) {
        case AUTH_USER_DISABLE:
        case AUTH_USER_ENABLE:
            u->disabled = what == AUTH_USER_DISABLE;
            break;
        case AUTH_USER_PASSWORD:
            snprintf(u->phc, sizeof(u->phc), "%s", phc);
            u->password_changed_at = now;
            break;
        case AUTH_USER_DELETE:
            break;
        }
        if (what == AUTH_USER_DELETE) {
            op.kind = STORE_OP_DELETE;
        } else {
            op.kind = STORE_OP_REPLACE;
            if ((rc = auth_user_encode(u, &rec)))
                break;
            op.value = rec.p;
            op.value_len = rec.len;
        }
        rc = store_exec(st, &op);
    }
    buf_fini(&raw);
    buf_fini(&rec);
    return rc;
}

int auth_user_put(struct store *st, const struct auth_user *u, bool replace)
{
    struct buf b;

    buf_init(&b, 8192);
    int rc = auth_user_encode(u, &b);
    if (rc == ERR_OK)
        rc = store_exec_kv(st, replace ? STORE_OP_REPLACE : STORE_OP_PUT_NEW, STORE_T_USERS,
                           u->name, b.p, b.len);
    buf_fini(&b);
    return rc;
}

int auth_user_op(struct store_op *op, enum store_op_kind kind, const struct auth_user *u,
                 struct buf *rec, void (*on_done)(struct store_op *op))
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->on_done = on_done;
    op->table = STORE_T_USERS;
    op->key_len = strlen(u->name);
    memcpy(op->key, u->name, op->key_len);
    int rc = auth_user_encode(u, rec);
    if (rc == ERR_OK) {
        op->value = rec->p;
        op->value_len = rec->len;
    }
    return rc;
}

void auth_user_init(struct auth_user *u, const char *name, const char *phc, int64_t now)
{
    uint8_t rnd[16];

    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    cr_random(rnd, sizeof(rnd));
    cr_b64url_encode(rnd, sizeof(rnd), u->id, sizeof(u->id));
    snprintf(u->phc, sizeof(u->phc), "%s", phc);
    u->created_at = now;
    u->password_changed_at = now;
}

int auth_user_profile(struct auth_user *u, const char *email, const char *display, const char **why)
{
    if (email) {
        size_t n = strlen(email);
        const char *at = strchr(email, '@');
        bool ok =
            n >= 3 && n <= AUTH_EMAIL_MAX && at && at > email && at[1] && !strchr(at + 1, '@');
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)email[i] > 0x20 && email[i] != 0x7f && email[i] != '"' &&
                 email[i] != '<' && email[i] != '>';
        if (!ok) {
            *why = "email: 3-254 characters, one @, no spaces";
            return ERR_INVAL;
        }
        snprintf(u->email, sizeof(u->email), "%s", email);
    }
    if (display) {
        size_t n = strlen(display);
        bool ok = n >= 1 && n <= AUTH_DISPLAY_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)display[i] >= 0x20 && display[i] != 0x7f;
        if (!ok) {
            *why = "name: 1-128 printable characters";
            return ERR_INVAL;
        }
        snprintf(u->display, sizeof(u->display), "%s", display);
    }
    return ERR_OK;
}

int auth_user_index(struct store *st, const struct auth_user *u, bool remove)
{
    int rc = store_exec_kv(st, remove ? STORE_OP_DELETE : STORE_OP_REPLACE, STORE_T_SUBS, u->id,
                           remove ? NULL : u->name, remove ? 0 : strlen(u->name));
    if (!remove && rc == ERR_NOTFOUND)
        rc = store_exec_kv(st, STORE_OP_PUT_NEW, STORE_T_SUBS, u->id, u->name, strlen(u->name));
    return remove && rc == ERR_NOTFOUND ? ERR_OK : rc;
}

/* The backfill's first pass: the users without an index entry, as "id\0name\0" pairs, at
 * most BACKFILL_BYTES of them per pass. Nothing is written while the users are read: a write
 * committed while store_each's read transaction is open cannot reuse the pages it frees, so
 * a commit per user grew data.mdb by about 28 KiB per user (2.8 GB for 100,000 users, and
 * as many fsyncs) on the first start after the upgrade. */
#define BACKFILL_BYTES (32u << 20)
#define BACKFILL_BATCH 4096 /* writes in flight at once: the writer commits them as groups */

static size_t backfill_bytes = BACKFILL_BYTES;
#ifdef FG_TESTING
void auth_user_backfill_pass(size_t bytes)
{
    backfill_bytes = bytes ? bytes : BACKFILL_BYTES;
}
#endif

struct backfill {
    struct store *st;
    struct buf pairs;
    bool full; /* this pass stopped at BACKFILL_BYTES: another one follows */
};

static int backfill_one(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct backfill *b = ctx;
    struct auth_user u;
    struct buf have;
    if (auth_user_decode(key, klen, val, vlen, &u))
        return ERR_OK;
    buf_init(&have, 256);
    int rc = store_get(b->st, STORE_T_SUBS, u.id, strlen(u.id), &have, NULL, NULL);
    buf_fini(&have);
    if (rc != ERR_NOTFOUND)
        return ERR_OK;
    if (b->pairs.len + sizeof(u.id) + sizeof(u.name) > backfill_bytes) {
        b->full = true;
        return ERR_LIMIT; /* (ends this pass) */
    }
    return buf_append(&b->pairs, u.id, strlen(u.id) + 1) ||
                   buf_append(&b->pairs, u.name, strlen(u.name) + 1)
               ? ERR_NOMEM
               : ERR_OK;
}

static int by_id(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

struct backfill_op {
    struct store_op op;
    unsigned *left, *added;
};

static void on_backfilled(struct store_op *op)
{
    struct backfill_op *w = (struct backfill_op *)(void *)op;
    (*w->left)--;
    if (op->status == ERR_OK)
        (*w->added)++;
}

/* The second pass: the pairs written in the order of their ids (neighbours in the index's
 * tree share its pages), BACKFILL_BATCH at a time through the store's group commit, on a
 * loop of its own. ERR_OK, or the first write that failed for another reason than an entry
 * written meanwhile. */
static int backfill_write(struct store *st, struct buf *pairs, unsigned *added)
{
    size_t n = 0;
    for (size_t i = 0; i < pairs->len; i += strlen(pairs->p + i) + 1)
        n++;
    const char **ids = mem_malloc((n / 2 + 1) * sizeof(*ids));
    struct backfill_op *ops = mem_malloc(BACKFILL_BATCH * sizeof(*ops));
    struct loop lp;
    int rc = ids && ops && loop_init(&lp, 0) == ERR_OK ? ERR_OK : ERR_NOMEM;
    if (rc) {
        mem_free(ids);
        mem_free(ops);
        return rc;
    }
    n = 0;
    for (size_t i = 0; i < pairs->len; i += strlen(pairs->p + i) + 1) {
        ids[n++] = pairs->p + i;
        i += strlen(pairs->p + i) + 1; /* (its name) */
    }
    qsort(ids, n, sizeof(*ids), by_id);
    for (size_t base = 0; base < n && !rc; base += BACKFILL_BATCH) {
        unsigned k = n - base < BACKFILL_BATCH ? (unsigned)(n - base) : BACKFILL_BATCH;
        unsigned left = 0;
        for (unsigned i = 0; i < k; i++) {
            struct backfill_op *w = &ops[i];
            const char *id = ids[base + i], *name = id + strlen(id) + 1;
            memset(w, 0, sizeof(*w));
            w->left = &left;
            w->added = added;
            w->op.kind = STORE_OP_PUT_NEW;
            w->op.on_done = on_backfilled;
            w->op.table = STORE_T_SUBS;
            w->op.key_len = strlen(id);
            memcpy(w->op.key, id, w->op.key_len);
            w->op.value = name;
            w->op.value_len = strlen(name);
            if (store_submit(st, &lp, &w->op) != ERR_AGAIN) {
                rc = ERR_BACKEND;
                break;
            }
            left++;
        }
        while (left)
            uv_run(&lp.uv, UV_RUN_ONCE);
        for (unsigned i = 0; i < k && !rc; i++)
            if (ops[i].op.status && ops[i].op.status != ERR_CONFLICT)
                rc = ops[i].op.status;
    }
    store_loop_release(st, &lp);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    mem_free(ids);
    mem_free(ops);
    return rc;
}

int auth_user_index_backfill(struct store *st, unsigned *added)
{
    struct backfill b = {.st = st};
    uint64_t users = 0, subs = 0, bytes;
    int rc;

    *added = 0;
    /* Once, for an embedded store from before the index (its counts are O(1) to read); a
     * shared store's old users answer UserInfo with their sub alone. */
    if (store_shared(st) || store_usage(st, STORE_T_USERS, &users, &bytes) ||
        store_usage(st, STORE_T_SUBS, &subs, &bytes) || subs >= users)
        return ERR_OK;
    buf_init(&b.pairs, backfill_bytes);
    do {
        b.full = false;
        buf_reset(&b.pairs);
        rc = store_each(st, STORE_T_USERS, backfill_one, &b);
        if (b.full)
            rc = ERR_OK;
        if (rc == ERR_OK && b.pairs.len)
            rc = backfill_write(st, &b.pairs, added);
    } while (rc == ERR_OK && b.full);
    buf_fini(&b.pairs);
    return rc;
}

static int lookup_end(struct auth_user_lookup *q, int rc, bool found, bool deferred)
{
    q->found = found;
    buf_fini(&q->_buf);
    if (deferred)
        q->done(q, rc);
    return rc;
}

static void on_lookup(struct store_op *op);

static int lookup_step(struct auth_user_lookup *q, int status, bool deferred)
{
    if (status && status != ERR_NOTFOUND)
        return lookup_end(q, ERR_BACKEND, false, deferred);
    if (status == ERR_NOTFOUND)
        return lookup_end(q, ERR_OK, false, deferred);
    if (q->_step == 1) { /* the record: its id must be the sub */
        bool ok =
            auth_user_decode(q->_name, strlen(q->_name), q->_buf.p, q->_buf.len, &q->u) == ERR_OK &&
            strcmp(q->u.id, q->sub) == 0 && !q->u.disabled;
        return lookup_end(q, ERR_OK, ok, deferred);
    }
    if (q->_buf.len == 0 || q->_buf.len > AUTH_USERNAME_MAX)
        return lookup_end(q, ERR_OK, false, deferred);
    memcpy(q->_name, q->_buf.p, q->_buf.len);
    q->_name[q->_buf.len] = '\0';
    q->_step = 1;
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.on_done = on_lookup;
    int rc = store_get(q->st, STORE_T_USERS, q->_name, strlen(q->_name), &q->_buf, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : lookup_step(q, rc, deferred);
}

static void on_lookup(struct store_op *op)
{
    struct auth_user_lookup *q = (struct auth_user_lookup *)(void *)op;
    lookup_step(q, op->status, true);
}

int auth_user_lookup(struct auth_user_lookup *q)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->found = false;
    q->_step = 0;
    buf_init(&q->_buf, 16384);
    q->_op.on_done = on_lookup;
    int rc = store_get(q->st, STORE_T_SUBS, q->sub, strlen(q->sub), &q->_buf, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : lookup_step(q, rc, false);
}
