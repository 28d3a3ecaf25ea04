/* SPDX-License-Identifier: MIT */
/*
 * Routes compiled only into test builds (FG_TESTING, set by BUILD=asan and BUILD=debug),
 * never into release: /test/work occupies a worker for a given time so the tests can fill
 * the queue and hold requests in flight during shutdown; /test/echo returns a decoded form
 * or JSON body so the tests can check body handling end to end.
 */
#ifdef FG_TESTING

#include <stdio.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "core/err.h"
#include "http/http.h"
#include "http/http_form.h"
#include "json/json.h"
#include "loop/pool.h"

struct work_job {
    struct pool_job job; /* first: the pool hands back this pointer */
    struct http_request *r;
    unsigned ms;
};

static void work_run(struct pool_job *j)
{
    struct work_job *w = (struct work_job *)(void *)j;
    struct timespec ts = {w->ms / 1000, (long)(w->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void work_done(struct pool_job *j)
{
    struct work_job *w = (struct work_job *)(void *)j;
    char body[96];

    if (j->cancelled) {
        api__fail(w->r, ERR_AGAIN, "not run: shutting down, or it waited past hash_deadline");
        return;
    }
    snprintf(body, sizeof(body), "{\"slept_ms\":%u,\"waited_ms\":%llu}", w->ms,
             (unsigned long long)(j->wait_ns / 1000000));
    http_respond_json(w->r, 200, body);
}

int api_test_work(struct http_request *r)
{
    struct http_form q;
    struct str ms = STR_LIT("0");
    uint64_t v;

    if (http_form_parse(r->query, 8, r->arena, &q) == ERR_OK)
        http_form_get(&q, "ms", &ms);
    if (str_to_u64(ms, &v) || v > 10000)
        return api__error(r, 400, "invalid_request", "ms must be 0..10000");
    struct work_job *w = api__alloc(r, sizeof(*w));
    if (!w)
        return HTTP_DONE;
    w->r = r;
    w->ms = (unsigned)v;
    w->job.on_work = work_run;
    w->job.on_done = work_done;
    return api_submit(r, &w->job) ? HTTP_DONE : HTTP_ASYNC;
}

int api_test_echo(struct http_request *r)
{
    char err[160];

    if (http_content_type_is(r, "application/x-www-form-urlencoded")) {
        struct http_form f;
        if (http_form_parse(r->body, 64, r->arena, &f))
            return api__error(r, 400, "invalid_request", "malformed form body");
        json_t *o = json_object();
        for (size_t i = 0; i < f.n; i++)
            json_object_set_new(o, f.pairs[i].name.p,
                                json_stringn(f.pairs[i].value.p, f.pairs[i].value.len));
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (s)
            http_respond_json(r, 200, s);
        else
            http_respond_error(r, 400, "invalid_request", "form is not valid UTF-8");
        json_free_str(s);
        return HTTP_DONE;
    }
    if (http_content_type_is(r, "application/json")) {
        json_t *o;
        if (json_parse_object(r->body, &o, err, sizeof(err)))
            return api__error(r, 400, "invalid_request", err);
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        http_respond_json(r, 200, s ? s : "{}");
        json_free_str(s);
        return HTTP_DONE;
    }
    return api__error(r, 415, "unsupported_media_type",
                      "use application/json or application/x-www-form-urlencoded");
}

#endif
