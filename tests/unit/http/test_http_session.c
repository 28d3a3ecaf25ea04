/* SPDX-License-Identifier: MIT */
/* The protocol session driven with raw bytes, no sockets: framing, limits, smuggling. */
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "core/arena.h"
#include "core/buf.h"
#include "harness.h"
#include "http/http.h"
#include "http/http_router.h"
#include "http/http_session.h"

static struct http_request *held; /* the request an async handler keeps */
static int releases, async_answers;

static int h_a(struct http_request *r)
{
    http_respond(r, 200, "text/plain", "A", 1);
    return HTTP_DONE;
}

static int h_echo(struct http_request *r)
{
    http_respond(r, 200, "application/octet-stream", r->body.p, r->body.len);
    return HTTP_DONE;
}

static int h_param(struct http_request *r)
{
    http_respond(r, 200, "text/plain", r->params[0].p, r->params[0].len);
    return HTTP_DONE;
}

/* The X-T header's value, or "-": what a handler sees of a header. */
static int h_xt(struct http_request *r)
{
    struct str v = http_header(r, "x-t");
    if (!v.p)
        v = STR_LIT("-");
    http_respond(r, 200, "text/plain", v.p, v.len);
    return HTTP_DONE;
}

static int h_async(struct http_request *r)
{
    held = r;
    return HTTP_ASYNC;
}

static int h_forgets(struct http_request *r)
{
    (void)r;
    return HTTP_DONE;
}

static struct http_stream *stream;
static int stream_ends;

static void on_stream_end(void *arg)
{
    (void)arg;
    stream_ends++;
    stream = NULL;
}

static int h_stream(struct http_request *r)
{
    http_add_header(r, "Cache-Control", "no-store");
    stream = http_stream_start(r, 200, "text/event-stream", on_stream_end, NULL);
    if (stream)
        http_stream_send(stream, "data: 1\n\n", 9);
    return HTTP_DONE;
}

static void on_async_answer(void *o)
{
    (void)o;
    async_answers++;
}

static void on_release(void *o)
{
    (void)o;
    releases++;
}

static const struct http_session_ops ops = {on_async_answer, on_release};
static struct http_limits lim = {1024, 16, 256, 100};
static struct http_router *rt;

static struct http_session *mk(void)
{
    if (!rt) {
        rt = http_router_new();
        http_router_add(rt, HTTP_M(HTTP_GET), "/a", h_a);
        http_router_add(rt, HTTP_M(HTTP_POST), "/echo", h_echo);
        http_router_add(rt, HTTP_M(HTTP_POST), "/xt", h_xt);
        http_router_add(rt, HTTP_M(HTTP_GET), "/u/{name}", h_param);
        http_router_add(rt, HTTP_M(HTTP_GET), "/async", h_async);
        http_router_add(rt, HTTP_M(HTTP_GET), "/forgets", h_forgets);
        http_router_add(rt, HTTP_M(HTTP_GET), "/stream", h_stream);
    }
    http_session_global_init(lim.max_header_bytes);
    held = NULL;
    stream = NULL;
    releases = async_answers = stream_ends = 0;
    return http_session_new(&lim, rt, NULL, &ops, NULL, NULL);
}

/* Feeds `in` in pieces of `step` bytes (0: all at once); returns all output in `out`. */
static void feed(struct http_session *s, const char *in, size_t step, struct buf *out)
{
    size_t len = strlen(in), off = 0;
    struct buf tmp;

    buf_init(&tmp, 1 << 24);
    while (off < len && http_session_wants_read(s)) {
        char *p;
        size_t n;
        http_session_rspace(s, &p, &n);
        if (!n)
            break;
        size_t k = step ? step : len - off;
        if (k > len - off)
            k = len - off;
        if (k > n)
            k = n;
        memcpy(p, in + off, k);
        off += k;
        http_session_received(s, k);
        if (http_session_take_output(s, &tmp)) {
            buf_append(out, tmp.p, tmp.len);
            buf_reset(&tmp);
            http_session_kick(s);
        }
    }
    if (http_session_take_output(s, &tmp))
        buf_append(out, tmp.p, tmp.len);
    buf_fini(&tmp);
    buf_append(out, "", 1); /* NUL for strstr; not counted below */
    out->len--;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TEST(simple_get_and_keepalive)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(strncmp(out.p, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT_TRUE(strstr(out.p, "\r\nContent-Length: 1\r\n") != NULL);
    ASSERT_TRUE(strstr(out.p, "\r\nDate: ") != NULL);
    ASSERT_TRUE(strstr(out.p, "Connection: close") == NULL);
    ASSERT_TRUE(out.len > 4 && memcmp(out.p + out.len - 5, "\r\n\r\nA", 5) == 0);
    ASSERT_EQ_INT(http_session_phase(s), HTTP_PHASE_IDLE);
    buf_fini(&out);
    http_session_free(s);
}

TEST(pipelined_batch_answers_in_order_byte_by_byte)
{
    const char *in = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                     "GET /u/bob HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t step = 0; step <= 7; step++) {
        struct http_session *s = mk();
        struct buf out;
        buf_init(&out, 1 << 20);
        feed(s, in, step, &out);
        const char *a = strstr(out.p, "\r\n\r\nA");
        const char *h = strstr(out.p, "\r\n\r\nhello");
        const char *c = strstr(out.p, "\r\n\r\nabcde");
        const char *b = strstr(out.p, "\r\n\r\nbob");
        ASSERT_TRUE(a && h && c && b);
        ASSERT_TRUE(a < h && h < c && c < b);
        ASSERT_EQ_INT(count(out.p, "HTTP/1.1 200 OK"), 4);
        buf_fini(&out);
        http_session_free(s);
    }
}

static void expect_status_and_close(const char *in, const char *status)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, in, 0, &out);
    if (strncmp(out.p, status, strlen(status)) != 0)
        harness_fail(__FILE__, __LINE__, "want %s, got %.40s", status, out.p);
    if (!strstr(out.p, "Connection: close"))
        harness_fail(__FILE__, __LINE__, "no Connection: close in %.80s", out.p);
    if (!http_session_done(s))
        harness_fail(__FILE__, __LINE__, "session not done after %s", status);
    buf_fini(&out);
    http_session_free(s);
}

TEST(smuggling_is_refused)
{
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Length: 3\r\n\r\n0\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                            "Content-Length: 3\r\n\r\nabc",
                            "HTTP/1.1 400 ");
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "zz\r\nabc\r\n0\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 400 ");
    expect_status_and_close("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("GET /a HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 400 ");
    /* RFC 9112 §3.2: more than one Host is refused in any version */
    expect_status_and_close("GET /a HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
    /* a field that occurs once, sent twice (any case): readers could disagree on which */
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\n"
                            "authorization: Bearer b\r\n\r\n",
                            "HTTP/1.1 400 ");
    {
        struct buf out;
        struct http_session *s = mk();
        buf_init(&out, 1 << 16);
        feed(s, "GET /a HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCOOKIE: a=2\r\n\r\n", 0, &out);
        ASSERT_TRUE(strstr(out.p, "the Cookie header is repeated") != NULL); /* named */
        buf_fini(&out);
        http_session_free(s);
    }
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\n"
                            "Content-Length: 0\r\nContent-Type: c/d\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\nCookie: s=2\r\n\r\n",
                            "HTTP/1.1 400 ");
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: a\r\nOrigin: https://a\r\n"
                            "ORIGIN: https://b\r\n\r\n",
                            "HTTP/1.1 400 ");
}

TEST(limits)
{
    char big[2048];
    /* body over max_body_bytes (100), by Content-Length and by chunks */
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
                            "HTTP/1.1 413 ");
    expect_status_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "60\r\n"
                            "0123456789012345678901234567890123456789012345678901234567890123"
                            "45678901234567890123456789012345\r\n"
                            "10\r\n0123456789abcdef\r\n0\r\n\r\n",
                            "HTTP/1.1 413 ");
    /* target over max_url_bytes (256) */
    snprintf(big, sizeof(big), "GET /%0300d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    expect_status_and_close(big, "HTTP/1.1 414 ");
    /* headers over max_header_bytes (1024) */
    snprintf(big, sizeof(big), "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: %01100d\r\n\r\n", 0);
    expect_status_and_close(big, "HTTP/1.1 431 ");
    /* more than max_headers (16) */
    char many[1024];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET /a HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "X-A: b\r\n");
    snprintf(many + n, sizeof(many) - n, "\r\n");
    expect_status_and_close(many, "HTTP/1.1 431 ");
    expect_status_and_close("GET /a HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ");
    expect_status_and_close("GET /a HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", "HTTP/1.1 417 ");
    expect_status_and_close("\x01\x02garbage\r\n\r\n", "HTTP/1.1 400 ");
}

TEST(header_limit_hits_without_line_end)
{
    /* A header that never ends must not be buffered past the limit (slow memory attack). */
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    memcpy(big, "GET /a HTTP/1.1\r\nX: ", 20);
    expect_status_and_close(big, "HTTP/1.1 431 ");
}

TEST(head_has_length_but_no_body)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(strstr(out.p, "Content-Length: 1\r\n") != NULL);
    ASSERT_TRUE(out.len > 4 && memcmp(out.p + out.len - 4, "\r\n\r\n", 4) == 0);
    buf_fini(&out);
    http_session_free(s);
}

TEST(method_not_allowed_lists_allow)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "DELETE /a HTTP/1.1\r\nHost: x\r\n\r\nGET /zz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(strncmp(out.p, "HTTP/1.1 405 ", 13) == 0);
    ASSERT_TRUE(strstr(out.p, "Allow: GET, HEAD\r\n") != NULL);
    ASSERT_TRUE(strstr(out.p, "HTTP/1.1 404 ") != NULL);
    buf_fini(&out);
    http_session_free(s);
}

TEST(http10_keepalive_and_close)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, &out);
    ASSERT_TRUE(strstr(out.p, "Connection: keep-alive\r\n") != NULL);
    ASSERT_EQ_INT(http_session_done(s), 0);
    buf_reset(&out);
    feed(s, "GET /a HTTP/1.0\r\n\r\n", 0, &out);
    ASSERT_TRUE(strstr(out.p, "Connection: close\r\n") != NULL);
    ASSERT_EQ_INT(http_session_done(s), 1);
    buf_fini(&out);
    http_session_free(s);
}

TEST(async_answer_resumes_pipeline)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /async HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_EQ_INT(out.len, 0);
    ASSERT_TRUE(held != NULL);
    ASSERT_EQ_INT(http_session_phase(s), HTTP_PHASE_BUSY);
    ASSERT_EQ_INT(http_session_wants_read(s), 0);
    http_respond(held, 201, NULL, "", 0);
    ASSERT_EQ_INT(async_answers, 1);
    struct buf tmp;
    buf_init(&tmp, 1 << 20);
    ASSERT_TRUE(http_session_take_output(s, &tmp) > 0);
    tmp.p[tmp.len - 1] = 0;
    ASSERT_TRUE(strncmp(tmp.p, "HTTP/1.1 201 Created", 20) == 0);
    ASSERT_TRUE(strstr(tmp.p, "HTTP/1.1 200 OK") != NULL); /* the pipelined one followed */
    buf_fini(&tmp);
    buf_fini(&out);
    http_session_free(s);
}

TEST(abort_while_busy_releases_on_answer)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_EQ_INT(http_session_abort(s), 0);
    http_respond(held, 200, NULL, "", 0);
    ASSERT_EQ_INT(releases, 1);
    ASSERT_EQ_INT(async_answers, 0);
    buf_fini(&out);
    http_session_free(s);
}

TEST(handler_that_forgets_to_answer_gets_500)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /forgets HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(strncmp(out.p, "HTTP/1.1 500 ", 13) == 0);
    buf_fini(&out);
    http_session_free(s);
}

TEST(timeout_mid_request_is_408)
{
    struct http_session *s = mk();
    struct buf out, tmp;
    buf_init(&out, 1 << 20);
    buf_init(&tmp, 1 << 20);
    feed(s, "GET /a HTTP/1.1\r\nHo", 0, &out);
    ASSERT_EQ_INT(http_session_phase(s), HTTP_PHASE_HEAD);
    http_session_timeout(s);
    ASSERT_TRUE(http_session_take_output(s, &tmp) > 0);
    ASSERT_TRUE(strncmp(tmp.p, "HTTP/1.1 408 ", 13) == 0);
    ASSERT_EQ_INT(http_session_done(s), 1);
    buf_fini(&tmp);
    buf_fini(&out);
    http_session_free(s);
}

TEST(drain_closes_after_current)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    http_session_drain(s);
    http_respond(held, 200, NULL, "", 0);
    struct buf tmp;
    buf_init(&tmp, 1 << 20);
    http_session_take_output(s, &tmp);
    buf_append(&tmp, "", 1);
    ASSERT_TRUE(strstr(tmp.p, "Connection: close") != NULL);
    ASSERT_EQ_INT(http_session_done(s), 1);
    buf_fini(&tmp);
    buf_fini(&out);
    http_session_free(s);
}

TEST(expect_continue_is_answered)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
         0, &out);
    ASSERT_EQ_STR(out.p, "HTTP/1.1 100 Continue\r\n\r\n");
    buf_reset(&out);
    feed(s, "ok", 0, &out);
    ASSERT_TRUE(strncmp(out.p, "HTTP/1.1 200 OK", 15) == 0);
    buf_fini(&out);
    http_session_free(s);
}

TEST(response_header_injection_refused)
{
    struct http_request r;
    struct arena a;
    memset(&r, 0, sizeof(r));
    arena_init(&a, 1024, 4096);
    r.arena = &a;
    ASSERT_TRUE(http_add_header(&r, "X", "a\r\nSet-Cookie: x") != 0);
    ASSERT_TRUE(http_add_header(&r, "X\r\nY", "a") != 0);
    ASSERT_EQ_INT(http_add_header(&r, "X", "ok"), 0);
    arena_fini(&a);
}

TEST(request_counter_sees_pipelined_starts)
{
    struct http_session *s = mk();
    struct buf out;
    buf_init(&out, 1 << 20);
    feed(s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HT", 0, &out);
    /* the first request ended and the second began in one read: same phase, new request */
    ASSERT_EQ_INT(http_session_phase(s), HTTP_PHASE_HEAD);
    ASSERT_EQ_INT(http_session_requests(s), 2);
    buf_fini(&out);
    http_session_free(s);
}

/* A streamed answer: a head without a length, then each piece as it is sent; the next
 * request on the connection is not read; the peer leaving (or a drain) ends it once; a peer
 * that does not read has it ended, without the callback. */
TEST(a_stream_sends_until_its_peer_leaves)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    struct http_session *s = mk();
    feed(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(stream != NULL);
    ASSERT_EQ_INT(http_session_phase(s), HTTP_PHASE_STREAM);
    ASSERT_TRUE(strstr(out.p, "HTTP/1.1 200 OK\r\n") == out.p);
    ASSERT_TRUE(strstr(out.p, "Content-Type: text/event-stream\r\n") != NULL);
    ASSERT_TRUE(strstr(out.p, "Cache-Control: no-store\r\n") != NULL);
    ASSERT_TRUE(strstr(out.p, "Connection: close\r\n") != NULL);
    ASSERT_EQ_INT(count(out.p, "Content-Length"), 0);
    ASSERT_TRUE(strstr(out.p, "\r\n\r\ndata: 1\n\n") != NULL);
    ASSERT_EQ_INT(count(out.p, "HTTP/1.1"), 1); /* (the pipelined /a is never answered) */
    ASSERT_TRUE(http_session_wants_read(s));    /* (to see the peer leave) */
    async_answers = 0;
    ASSERT_EQ_INT(http_stream_send(stream, "data: 2\n\n", 9), 0);
    ASSERT_EQ_INT(async_answers, 1);
    buf_reset(&out);
    feed(s, "ignored bytes", 0, &out);
    ASSERT_TRUE(strcmp(out.p, "data: 2\n\n") == 0);
    http_session_eof(s);
    ASSERT_EQ_INT(stream_ends, 1);
    ASSERT_TRUE(http_session_done(s));
    ASSERT_TRUE(http_session_abort(s));
    ASSERT_EQ_INT(stream_ends, 1); /* once */
    http_session_free(s);

    s = mk(); /* a drain ends it; so does the connection's loss */
    buf_reset(&out);
    feed(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    http_session_drain(s);
    ASSERT_EQ_INT(stream_ends, 1);
    ASSERT_TRUE(http_session_done(s));
    http_session_free(s);
    s = mk();
    feed(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    ASSERT_TRUE(http_session_abort(s));
    ASSERT_EQ_INT(stream_ends, 1);
    http_session_free(s);

    s = mk(); /* a peer that reads nothing: cut at 256 KiB pending, no callback */
    feed(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 0, &out);
    static char piece[4096];
    memset(piece, 'x', sizeof(piece));
    int rc = 0, sent = 0;
    while (!rc && sent < 1000) {
        rc = http_stream_send(stream, piece, sizeof(piece));
        sent++;
    }
    ASSERT_TRUE(rc != 0 && sent < 100);
    ASSERT_TRUE(http_session_done(s));
    ASSERT_EQ_INT(stream_ends, 0);
    http_session_free(s);
    buf_fini(&out);
}

/* An idle keep-alive session gives back its buffers, arena and header table, and the next
 * request on it is served as before (its headers included); a session that is reading a
 * request or has output waiting is not trimmed. */
TEST(an_idle_session_is_trimmed_and_serves_again)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    struct http_session *s = mk();
    feed(s, "GET /u/ann HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n", 0, &out);
    ASSERT_TRUE(strstr(out.p, "\r\n\r\nann") != NULL);
    ASSERT_TRUE(http_session_trim(s));
    buf_reset(&out);
    feed(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 0, &out);
    ASSERT_TRUE(strstr(out.p, "HTTP/1.1 200 OK\r\n") == out.p);
    ASSERT_TRUE(strstr(out.p, "\r\n\r\nhello") != NULL);
    ASSERT_TRUE(http_session_trim(s));
    ASSERT_TRUE(http_session_trim(s)); /* (again: nothing to give, still idle) */
    buf_reset(&out);
    feed(s, "GET /a HTTP/1.1\r\nHost: x\r\n", 0, &out); /* half a request */
    ASSERT_TRUE(!http_session_trim(s));
    feed(s, "\r\n", 0, &out);
    ASSERT_TRUE(strstr(out.p, "HTTP/1.1 200 OK\r\n") == out.p);
    http_session_free(s);

    s = mk(); /* answered, the answer not taken yet */
    char *p;
    size_t n;
    static const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    http_session_rspace(s, &p, &n);
    memcpy(p, req, sizeof(req) - 1);
    http_session_received(s, sizeof(req) - 1);
    ASSERT_TRUE(!http_session_trim(s));
    http_session_free(s);
    buf_fini(&out);
}

/* The status a request with this header line gets: 200 or 400 (0 for anything else). */
static int header_status(const char *line)
{
    char req[256];
    struct buf out;
    struct http_session *s = mk();
    snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n", line);
    buf_init(&out, 1 << 16);
    feed(s, req, 0, &out);
    int st = !strncmp(out.p, "HTTP/1.1 200 ", 13)   ? 200
             : !strncmp(out.p, "HTTP/1.1 400 ", 13) ? 400
                                                    : 0;
    buf_fini(&out);
    http_session_free(s);
    return st;
}

/* Every byte, at every place within an eight-byte word of a header value, and in a header
 * name: accepted exactly when RFC 9110 allows it (a value: HTAB, SP to '~', 0x80 up; a name:
 * tchar), whichever way the session checks it. (NUL, CR and LF frame the line: not sent.) */
TEST(header_bytes_are_judged_one_by_one)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    char line[64];
    for (unsigned b = 1; b < 256; b++) {
        if (b == '\r' || b == '\n')
            continue;
        bool ok = b == '\t' || (b >= 0x20 && b != 0x7f);
        for (unsigned at = 0; at < 10; at++) {
            snprintf(line, sizeof(line), "X-V: a%.*s%cz0123456789", (int)at, "bcdefghijk", (int)b);
            int st = header_status(line);
            if (st != (ok ? 200 : 400))
                harness_fail(__FILE__, __LINE__, "value byte 0x%02x at %u: %d", b, at, st);
        }
        if (b == ':' || b == '\t')
            continue; /* (they end the name; a space does not, for http_parser) */
        ok = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
             strchr(tchar, (int)b);
        snprintf(line, sizeof(line), "X%cy: v", (int)b);
        int st = header_status(line);
        if (st != (ok ? 200 : 400))
            harness_fail(__FILE__, __LINE__, "name byte 0x%02x: %d", b, st);
    }
}

/* Trailer fields after a chunked body are dropped: a handler never sees them as headers
 * (a gateway that strips a header may let the same field through as a trailer), and one
 * that would be refused in the header section does not fail the request. */
TEST(trailers_are_not_headers)
{
    struct buf out;
    struct http_session *s = mk();
    buf_init(&out, 1 << 16);
    feed(s,
         "POST /xt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n0\r\nX-T: from-trailer\r\nBad Name: v\r\n\r\n"
         "POST /xt HTTP/1.1\r\nHost: x\r\nX-T: header\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\nX-T: trailer\r\n\r\n",
         0, &out);
    ASSERT_EQ_INT(count(out.p, "HTTP/1.1 200 "), 2);
    ASSERT_TRUE(strstr(out.p, "\r\n\r\n-HTTP/1.1 200 ") != NULL); /* the first saw none */
    ASSERT_TRUE(strstr(out.p, "\r\n\r\nheader") != NULL);
    ASSERT_TRUE(!strstr(out.p, "trailer"));
    buf_fini(&out);
    http_session_free(s);
    /* dropped, but not read without end: http_parser bounds a trailer section too */
    static char big[200 * 1024];
    size_t at = (size_t)snprintf(big, sizeof(big),
                                 "POST /xt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                 "\r\n0\r\nX-T: ");
    memset(big + at, 'a', sizeof(big) - at - 1);
    expect_status_and_close(big, "HTTP/1.1 4");
}
