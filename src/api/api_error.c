/* SPDX-License-Identifier: MIT */
/*
 * The one table where a domain result (an ERR_* code) becomes an HTTP answer: its status,
 * its RFC 6749 §5.2-style error code and a default description. Every refusal that is not
 * about the request's own syntax goes through api__fail; a 503 always tells when to come
 * back (Retry-After) and is never cached.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/arena.h"
#include "core/err.h"
#include "http/http.h"

static const struct {
    int rc;
    unsigned status;
    const char *code;
    const char *desc;
} map[] = {
    {ERR_INVAL, 400, "invalid_request", NULL},
    {ERR_DENIED, 403, "access_denied", NULL},
    {ERR_NOTFOUND, 404, "not_found", NULL},
    {ERR_CONFLICT, 409, "conflict", "already exists"},
    {ERR_LIMIT, 503, "temporarily_unavailable", "store busy"},
    {ERR_AGAIN, 503, "temporarily_unavailable", NULL}, /* not now */
    {ERR_BACKEND, 503, "temporarily_unavailable", "store unavailable"},
    {ERR_NOMEM, 503, "temporarily_unavailable", NULL},
    {ERR_IO, 503, "temporarily_unavailable", NULL},
};

void api__fail(struct http_request *r, int rc, const char *desc)
{
    api__fail_retry(r, rc, desc, 1);
}

void api__fail_retry(struct http_request *r, int rc, const char *desc, uint64_t retry_s)
{
    size_t i = 0;
    while (i < sizeof(map) / sizeof(map[0]) && map[i].rc != rc)
        i++;
    unsigned status = i < sizeof(map) / sizeof(map[0]) ? map[i].status : 503;
    const char *code = i < sizeof(map) / sizeof(map[0]) ? map[i].code : "temporarily_unavailable";
    if (!desc && i < sizeof(map) / sizeof(map[0]))
        desc = map[i].desc;
    if (status == 503) {
        char secs[24];
        snprintf(secs, sizeof(secs), "%llu", (unsigned long long)(retry_s ? retry_s : 1));
        http_add_header(r, "Retry-After", secs);
    }
    api__no_store(r);
    http_respond_error(r, status, code, desc);
}

void *api__alloc(struct http_request *r, size_t size)
{
    void *j = arena_alloc(r->arena, size);
    if (!j)
        api__fail(r, ERR_NOMEM, NULL);
    return j;
}

void *api__job(struct http_request *r, size_t size)
{
    void *j = api__alloc(r, size);
    if (j)
        memset(j, 0, size);
    return j;
}
