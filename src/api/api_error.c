/* SPDX-License-Identifier: MIT */
/*
 * The one table where a domain result (an ERR_* code) becomes an HTTP answer: its status,
 * its RFC 6749 §5.2-style error code and a default description. Every refusal that is not
 * about the request's own syntax goes through api__fail; a 503 always tells when to come
 * back (Retry-After) and is never cached.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "api/api_int.h"
#include "auth/auth_origins.h"
#include "core/arena.h"
#include "core/buf.h"
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

int api__json(struct http_request *r, unsigned status, const char *json)
{
    http_respond_json(r, status, json);
    return HTTP_DONE;
}

int api__error(struct http_request *r, unsigned status, const char *code, const char *desc)
{
    http_respond_error(r, status, code, desc);
    return HTTP_DONE;
}

int api__cors(struct http_request *r, int kind, const char *methods)
{
    struct str origin = http_header(r, "origin");
    bool ok = origin.len && origin.len < 512 &&
              auth_origins_allowed((enum auth_origins_kind)kind, origin);
    char o[512];

    if (ok) {
        memcpy(o, origin.p, origin.len);
        o[origin.len] = '\0';
        http_add_header(r, "Access-Control-Allow-Origin", o);
    }
    if (origin.len)
        http_add_header(r, "Vary", "Origin");
    if (r->method != HTTP_OPTIONS)
        return -1;
    if (ok) {
        http_add_header(r, "Access-Control-Allow-Methods", methods);
        http_add_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        http_add_header(r, "Access-Control-Max-Age", "600");
    }
    http_respond(r, 204, NULL, "", 0);
    return HTTP_DONE;
}

int api__bearer_refused(struct http_request *r, unsigned status, const char *error,
                        const char *desc)
{
    char challenge[96];
    snprintf(challenge, sizeof(challenge), "Bearer realm=\"floodgate\", error=\"%s\"", error);
    http_add_header(r, "WWW-Authenticate", challenge);
    return api__error(r, status, error, desc);
}

void api__retry_after(struct http_request *r, uint64_t seconds)
{
    char v[24];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(seconds ? seconds : 1));
    http_add_header(r, "Retry-After", v);
}

int api__fail(struct http_request *r, int rc, const char *desc)
{
    return api__fail_retry(r, rc, desc, 1);
}

int api__fail_retry(struct http_request *r, int rc, const char *desc, uint64_t retry_s)
{
    size_t i = 0;
    while (i < sizeof(map) / sizeof(map[0]) && map[i].rc != rc)
        i++;
    unsigned status = i < sizeof(map) / sizeof(map[0]) ? map[i].status : 503;
    const char *code = i < sizeof(map) / sizeof(map[0]) ? map[i].code : "temporarily_unavailable";
    if (!desc && i < sizeof(map) / sizeof(map[0]))
        desc = map[i].desc;
    if (status == 503)
        api__retry_after(r, retry_s);
    api__no_store(r);
    return api__error(r, status, code, desc);
}

int api__answer_buf(struct http_request *r, int rc, struct buf *b, const char *ctype,
                    const char *cache_control)
{
    if (rc) {
        http_respond_error(r, 500, "server_error", rc == ERR_LIMIT ? "answer too large" : NULL);
    } else {
        if (cache_control)
            http_add_header(r, "Cache-Control", cache_control);
        http_respond(r, 200, ctype ? ctype : "application/json", b->p, b->len);
    }
    buf_fini(b);
    return HTTP_DONE;
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
