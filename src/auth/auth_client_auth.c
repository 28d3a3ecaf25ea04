/* SPDX-License-Identifier: MIT */
/* Client authentication; see auth_client_auth.h. */
#include "auth/auth_client_auth.h"

#include <string.h>

#include "core/err.h"
#include "core/log.h"

/* The verdict on a record (rc ERR_OK) or its absence. */
static int decided(struct auth_client_check *q, int rc)
{
    static const uint8_t dummy[CR_HASH_LEN];

    if (rc == ERR_BACKEND || rc == ERR_NOMEM)
        return ERR_BACKEND;
    /* Unknown client: the same compare against a dummy, so timing does not tell. A public
     * client has no secret: its id alone, and only without one. */
    bool ok = cr_eq(q->_digest, rc == ERR_OK ? q->c.secret_digest : dummy, CR_HASH_LEN) &&
              rc == ERR_OK && q->_has_secret && !q->c.public_client;
    if (rc == ERR_OK && q->c.public_client)
        ok = !q->_has_secret;
    cr_wipe(q->_digest, sizeof(q->_digest));
    if (!ok) {
        q->reason = rc != ERR_OK                           ? "unknown_client"
                    : q->c.public_client && q->_has_secret ? "public_client_with_secret"
                    : !q->_has_secret                      ? "no_secret"
                                                           : "wrong_secret";
        return ERR_DENIED;
    }
    return ERR_OK;
}

static int read_done(struct auth_client_check *q, int rc)
{
    if (rc == ERR_OK)
        rc = auth_client_decode(q->id.p, q->id.len, q->_b.p, q->_b.len, &q->c);
    buf_fini(&q->_b);
    auth_client_cache_put(q->cache, q->gen, rc, q->id.p, q->id.len, &q->c);
    return decided(q, rc);
}

static void on_read(struct store_op *op)
{
    struct auth_client_check *q = (struct auth_client_check *)(void *)op;
    q->done(q, read_done(q, op->status));
}

int auth_client_check(struct auth_client_check *q)
{
    struct str s = q->secret;

    memset(&q->_op, 0, sizeof(q->_op));
    q->_has_secret = s.len > 0;
    auth_secret_digest(q->svc->key, s.p ? s.p : "", s.len, q->_digest);
    int rc = q->id.len && q->id.len <= AUTH_CLIENT_ID_MAX
                 ? auth_client_cache_find(q->cache, q->gen, q->id.p, q->id.len, &q->c)
                 : ERR_INVAL; /* no such client can exist: nothing to read */
    /* A cached record may predate a secret rotation: before refusing, read it afresh (a
     * rotated secret works at once; a wrong one costs a read that does not block). */
    bool reread =
        rc == ERR_OK && q->_has_secret && !cr_eq(q->_digest, q->c.secret_digest, CR_HASH_LEN);
    if (rc == ERR_INVAL || (rc == ERR_OK && !reread))
        return decided(q, rc == ERR_OK ? ERR_OK : ERR_NOTFOUND);
    q->_op.on_done = on_read;
    buf_init(&q->_b, 16384);
    rc = store_get(q->svc->st, STORE_T_CLIENTS, q->id.p, q->id.len, &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : read_done(q, rc);
}
