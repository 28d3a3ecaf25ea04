/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: request handling, bytes in, answers or close out. The first input byte picks
 * how the rest is split into reads (1..16 bytes, or all at once), so framing across read
 * boundaries is explored too. Invariants checked beyond the sanitizers: every answer starts
 * with a status line; a session that closed takes no more input; an async request is
 * answered and the pipeline resumes; a streamed answer's pieces after its head are its
 * events, its end is told once, and the bytes that follow its request are never parsed; with
 * an odd split, the session is trimmed whenever it is idle (its buffers made again); every
 * header a handler sees has a token for its name and a value without control bytes (RFC 9110
 * §5.1, §5.5), checked here byte by byte against the session's word-at-a-time checks; a
 * header found by http_header has its name, whatever the case; a field that occurs once
 * (Authorization, Content-Type, Cookie, Origin, Host, Content-Length) is never there twice.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "core/buf.h"
#include "core/str.h"
#include "http/http.h"
#include "http/http_form.h"
#include "http/http_router.h"
#include "http/http_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_request *held;

/* RFC 9110's rules, the plain way, for every header the session let through. */
static void headers_are_valid(const struct http_request *r)
{
    for (unsigned i = 0; i < r->nheaders; i++) {
        struct str n = r->headers[i].name, v = r->headers[i].value;
        if (!n.len)
            abort();
        for (size_t k = 0; k < n.len; k++) {
            unsigned char c = (unsigned char)n.p[k];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr("!#$%&'*+-.^_`|~", c))))
                abort();
        }
        for (size_t k = 0; k < v.len; k++) {
            unsigned char c = (unsigned char)v.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                abort();
        }
        static const char *const once[] = {"authorization", "content-type", "cookie",
                                           "origin",        "host",         "content-length"};
        for (size_t o = 0; o < sizeof(once) / sizeof(once[0]); o++)
            if (str_eq_nocase(n, str_c(once[o])))
                for (unsigned k = i + 1; k < r->nheaders; k++)
                    if (str_eq_nocase(r->headers[k].name, n))
                        abort(); /* a field that occurs once, twice */
        char lower[64];
        if (n.len < sizeof(lower)) { /* found again by its name in lower case */
            for (size_t k = 0; k < n.len; k++)
                lower[k] = (char)(n.p[k] >= 'A' && n.p[k] <= 'Z' ? n.p[k] | 0x20 : n.p[k]);
            lower[n.len] = '\0';
            if (!http_header(r, lower).p)
                abort();
        }
    }
}

static int h_ok(struct http_request *r)
{
    headers_are_valid(r);
    http_respond(r, 200, "text/plain", "ok", 2);
    return HTTP_DONE;
}

static int h_echo(struct http_request *r)
{
    struct http_form f;
    headers_are_valid(r);
    http_form_parse(r->body, 32, r->arena, &f);
    http_add_header(r, "X-Len", "1");
    http_respond(r, 200, NULL, r->body.p, r->body.len);
    return HTTP_DONE;
}

static int h_async(struct http_request *r)
{
    held = r;
    return HTTP_ASYNC;
}

static struct http_stream *stream;
static int streamed, stream_ends;

static void on_stream_end(void *arg)
{
    (void)arg;
    if (!stream)
        abort(); /* told twice, or after it was ended here */
    stream = NULL;
    stream_ends++;
}

static int h_stream(struct http_request *r)
{
    stream = http_stream_start(r, 200, "text/event-stream", on_stream_end, NULL);
    if (stream) {
        streamed = 1;
        if (http_stream_send(stream, "data: 0\n\n", 9))
            stream = NULL;
    }
    return HTTP_DONE;
}

static void on_async_answer(void *o)
{
    (void)o;
}

static void on_release(void *o)
{
    (void)o;
}

static const struct http_session_ops ops = {on_async_answer, on_release};
static const struct http_limits lim = {2048, 24, 512, 4096};
static struct http_router *rt;

static void check_output(struct buf *tmp)
{
    bool head = tmp->len >= 12 && memcmp(tmp->p, "HTTP/1.1 ", 9) == 0;
    bool event = streamed && tmp->len >= 6 && memcmp(tmp->p, "data: ", 6) == 0;
    if (tmp->len && !head && !event)
        abort();
    buf_reset(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rt) {
        rt = http_router_new();
        http_router_add(rt, HTTP_M(HTTP_GET), "/", h_ok);
        http_router_add(rt, HTTP_M(HTTP_GET), "/u/{name}", h_ok);
        http_router_add(rt, HTTP_M(HTTP_POST) | HTTP_M(HTTP_PUT), "/echo", h_echo);
        http_router_add(rt, HTTP_M(HTTP_GET), "/async", h_async);
        http_router_add(rt, HTTP_M(HTTP_GET), "/stream", h_stream);
        http_session_global_init(lim.max_header_bytes);
    }
    if (size < 1)
        return 0;
    size_t step = data[0] % 17; /* 0: everything in one read */
    data++;
    size--;
    struct http_session *s = http_session_new(&lim, rt, NULL, &ops, NULL, NULL);
    struct buf tmp;
    buf_init(&tmp, 1 << 26);
    held = NULL;
    stream = NULL;
    streamed = stream_ends = 0;
    size_t off = 0;
    while (off < size) {
        if (stream && http_stream_send(stream, "data: 1\n\n", 9))
            stream = NULL; /* (not read: ended, without on_end) */
        if (held) {        /* answer the async request, which resumes the pipeline */
            struct http_request *r = held;
            held = NULL;
            http_respond(r, 202, NULL, "", 0);
        }
        if (http_session_take_output(s, &tmp))
            check_output(&tmp);
        if (step % 2) /* (odd splits: an idle session gives its buffers back between reads) */
            http_session_trim(s);
        http_session_kick(s);
        if (!http_session_wants_read(s)) {
            if (http_session_done(s) || !held)
                break;
            continue;
        }
        char *p;
        size_t n;
        http_session_rspace(s, &p, &n);
        if (!n)
            break;
        size_t k = step ? step : size - off;
        if (k > size - off)
            k = size - off;
        if (k > n)
            k = n;
        memcpy(p, data + off, k);
        off += k;
        http_session_received(s, k);
    }
    http_session_eof(s);
    if (held) {
        struct http_request *r = held;
        held = NULL;
        http_respond(r, 202, NULL, "", 0);
    }
    if (http_session_take_output(s, &tmp))
        check_output(&tmp);
    if (!http_session_abort(s))
        abort(); /* nothing may be left busy */
    if (stream || stream_ends > 1)
        abort(); /* a stream still open after the peer left, or ended twice */
    http_session_free(s);
    buf_fini(&tmp);
    return 0;
}
