/* SPDX-License-Identifier: MIT */
/* CORS origins; see auth_origins.h. */
#include "auth/auth_origins.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_client.h"
#include "auth/auth_client_web.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"

struct set {
    char **v;
    size_t n, cap;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct set sets[2]; /* by enum auth_origins_kind */

static void set_free(struct set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int set_add(struct set *s, const char *o)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], o) == 0)
            return ERR_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = strdup(o);
    return s->v[s->n] ? (s->n++, ERR_OK) : ERR_NOMEM;
}

/* Swaps in a new set for kind (the old one freed). */
static void publish(enum auth_origins_kind kind, struct set *fresh)
{
    pthread_rwlock_wrlock(&lock);
    struct set old = sets[kind];
    sets[kind] = *fresh;
    pthread_rwlock_unlock(&lock);
    set_free(&old);
}

static int on_client(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct set *s = ctx;
    struct auth_client_web *w = malloc(sizeof(*w));
    (void)key;
    (void)klen;
    if (!w)
        return ERR_NOMEM;
    int rc = ERR_OK;
    if (auth_client_decode_web(val, vlen, w) == ERR_OK)
        for (unsigned i = 0; i < w->n[AUTH_WEB_ORIGIN] && rc == ERR_OK; i++)
            rc = set_add(s, w->origin[i]);
    free(w);
    return rc;
}

int auth_origins_reload(struct store *st)
{
    struct set fresh = {0};
    int rc = store_each(st, STORE_T_CLIENTS, on_client, &fresh);
    if (rc) {
        set_free(&fresh);
        return rc;
    }
    publish(AUTH_ORIGINS_CLIENTS, &fresh);
    return ERR_OK;
}

int auth_origins_configure(const char *list, const char **why)
{
    struct auth_client_web w;
    struct set fresh = {0};
    memset(&w, 0, sizeof(w));
    if (auth_client_web_add(&w, AUTH_WEB_ORIGIN, str_c(list), why))
        return ERR_INVAL;
    for (unsigned i = 0; i < w.n[AUTH_WEB_ORIGIN]; i++)
        if (set_add(&fresh, w.origin[i])) {
            set_free(&fresh);
            return ERR_NOMEM;
        }
    publish(AUTH_ORIGINS_API, &fresh);
    return ERR_OK;
}

bool auth_origins_allowed(enum auth_origins_kind kind, struct str origin)
{
    bool ok = false;
    pthread_rwlock_rdlock(&lock);
    for (size_t i = 0; i < sets[kind].n && !ok; i++)
        ok = str_eq(origin, str_c(sets[kind].v[i]));
    pthread_rwlock_unlock(&lock);
    return ok;
}

void auth_origins_free(void)
{
    struct set none = {0};
    publish(AUTH_ORIGINS_CLIENTS, &none);
    publish(AUTH_ORIGINS_API, &none);
}
