/* SPDX-License-Identifier: MIT */
/*
 * The live console on the admin listener: GET /admin/console (the page, its script and
 * stylesheet: no secret in them, served to anyone who reaches the admin listener; the page
 * asks for the admin token and keeps it in the tab) and GET /admin/stream (behind the admin
 * token): Server-Sent Events, one `data:` line a second with the document the main thread
 * published (policy/pol_console.h).
 *
 * Each loop thread keeps its own watchers and one timer, made with the first stream and
 * closed with the last: when nobody watches, the console costs nothing but the main
 * thread's tick. The document is copied once per thread per second, then written to each
 * stream; a watcher that does not read is dropped by http_stream_send.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "api/api.h"
#include "api/api_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "http/http.h"
#include "loop/loop.h"
#include "web/web.h"

#define WATCHERS_MAX 32 /* per instance: consoles open at once */

struct watcher {
    struct watcher *next;
    struct http_stream *st;
    struct api_watchers *w;
};

struct api_watchers {
    uv_timer_t timer;
    struct api_ctx *ctx;
    struct watcher *head;
    uint64_t seq; /* of the document last sent */
    struct buf doc, event;
};

static void closed(uv_handle_t *h)
{
    struct api_watchers *w = h->data;
    buf_fini(&w->doc);
    buf_fini(&w->event);
    mem_free(w);
}

static void drop(struct watcher *x)
{
    struct api_watchers *w = x->w;
    struct watcher **pp = &w->head;
    while (*pp != x)
        pp = &(*pp)->next;
    *pp = x->next;
    mem_free(x);
    atomic_fetch_sub(&w->ctx->sh->console.watchers, 1);
    if (!w->head) { /* the last one: the thread stops watching */
        w->ctx->watchers = NULL;
        uv_close((uv_handle_t *)&w->timer, closed);
    }
}

/* The peer left, or the server drains. */
static void on_end(void *arg)
{
    drop(arg);
}

/* The document as one event onto each stream; a stream whose peer does not read is gone. */
static void send_all(struct api_watchers *w)
{
    for (struct watcher *x = w->head, *next; x; x = next) {
        next = x->next;
        if (http_stream_send(x->st, w->event.p, w->event.len))
            drop(x); /* (w may be gone now: only when x was the last) */
    }
}

static void on_second(uv_timer_t *t)
{
    struct api_watchers *w = t->data;
    if (!pol_console_read(&w->ctx->sh->console, &w->seq, &w->doc))
        return;
    buf_reset(&w->event);
    if (buf_puts(&w->event, "data: ") || buf_append(&w->event, w->doc.p, w->doc.len) ||
        buf_puts(&w->event, "\n\n"))
        return;
    send_all(w);
}

static struct api_watchers *watchers(struct api_ctx *ctx)
{
    if (ctx->watchers)
        return ctx->watchers;
    struct api_watchers *w = mem_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->ctx = ctx;
    buf_init(&w->doc, 1u << 20);
    buf_init(&w->event, (1u << 20) + 16);
    uv_timer_init(&ctx->lp->uv, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_second, 250, 250); /* (a new second is seen within 250 ms) */
    ctx->watchers = w;
    return w;
}

/* GET /admin/stream: one event a second until the peer leaves. */
int api_admin_stream(struct http_request *r)
{
    struct api_ctx *ctx = r->app;

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (atomic_load(&ctx->sh->console.watchers) >= WATCHERS_MAX)
        return api__fail_retry(r, ERR_LIMIT, "too many consoles are open", 5);
    struct watcher *x = mem_calloc(1, sizeof(*x));
    struct api_watchers *w = x ? watchers(ctx) : NULL;
    if (!w) {
        mem_free(x);
        return api__fail(r, ERR_NOMEM, NULL);
    }
    http_add_header(r, "Cache-Control", "no-store");
    http_add_header(r, "X-Accel-Buffering", "no"); /* (nginx: pass each event on at once) */
    x->w = w;
    x->st = http_stream_start(r, 200, "text/event-stream", on_end, x);
    atomic_fetch_add(&ctx->sh->console.watchers, 1);
    x->next = w->head;
    w->head = x;
    if (!x->st) { /* (answered otherwise: a HEAD, or the server drains) */
        drop(x);
        return HTTP_DONE;
    }
    /* the reconnection delay, and the last second at once; a send that fails has ended the
     * stream without on_end (http_stream_send) */
    static const char hello[] = "retry: 2000\n\n";
    if (http_stream_send(x->st, hello, sizeof(hello) - 1) ||
        (w->event.len && http_stream_send(x->st, w->event.p, w->event.len)))
        drop(x);
    return HTTP_DONE;
}

/* GET /admin/console and /admin/console/{name}: the page and its assets, from memory, with
 * a policy that allows nothing from elsewhere; GET /admin/openapi.json the same way. */
int api_admin_console(struct http_request *r)
{
    char name[32] = "console.html";
    const char *ctype, *body;

    if (str_eq(r->path, STR_LIT("/admin/openapi.json")))
        snprintf(name, sizeof(name), "openapi.json");
    else if (r->nparams == 1 && r->params[0].len < sizeof(name) &&
             !str_eq(r->params[0], STR_LIT("openapi.json")))
        snprintf(name, sizeof(name), "%.*s", (int)r->params[0].len, r->params[0].p);
    else if (r->nparams)
        return api__error(r, 404, "not_found", NULL);
    if (!(body = web_console_asset(name, &ctype)))
        return api__error(r, 404, "not_found", NULL);
    http_add_header(r, "Content-Security-Policy",
                    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'");
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "X-Frame-Options", "DENY");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_add_header(r, "Cache-Control", "no-cache");
    http_respond(r, 200, ctype, body, strlen(body));
    return HTTP_DONE;
}
