/* SPDX-License-Identifier: MIT */
/*
 * The rehearsal's HTTP/1.1 client: keep-alive connections in pools, a queue per pool for
 * arrivals that find no connection free (a full queue drops them: the generator, not the
 * server, was saturated), http_parser reading the answers, a timeout per request. One libuv
 * loop, one thread.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/queue.h"
#include "rehearse/rh_int.h"

static http_parser_settings parser_settings;

struct rh_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    http_parser parser;
    struct rh_pool *pool;
    struct rh_req *req;
    struct rh_conn *prev, *next; /* idle list */
    struct buf out, body;
    struct rh_answer answer;
    char field[16]; /* the header being read, lower case, cut */
    size_t field_len;
    bool in_value;
    int cookie_state; /* 1: reading the first Set-Cookie's name=value, 2: done */
    int status, closes;
    bool complete, keep, connected, closing, idle_listed;
    bool writing;  /* a uv_write not yet called back */
    bool answered; /* the request's answer was handed over */
    char rbuf[16384];
};

/* ---- connections ---------------------------------------------------------------------- */

static void conn_close(struct rh_conn *c);
static void pool_pump(struct rh_pool *p);

static void idle_remove(struct rh_conn *c)
{
    if (!c->idle_listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->pool->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->idle_listed = false;
}

static void idle_push(struct rh_conn *c)
{
    c->prev = NULL;
    c->next = c->pool->idle;
    if (c->next)
        c->next->prev = c;
    c->pool->idle = c;
    c->idle_listed = true;
}

/* Hands the request its answer (or failure) and frees it. */
static void req_finish(struct rh_run *run, struct rh_req *q, int status, const char *body,
                       size_t len)
{
    q->done(run, q, status, body, len);
    free(q);
}

static void conn_fail(struct rh_conn *c, int status)
{
    struct rh_req *q = c->req;
    c->req = NULL;
    conn_close(c);
    if (q)
        req_finish(c->pool->run, q, status, NULL, 0);
}

static void on_timeout(uv_timer_t *t)
{
    conn_fail(t->data, ST_TIMEOUT);
}

/* The connection is free for the next request: kept (idle) or closed. */
static void conn_release(struct rh_conn *c)
{
    struct rh_pool *p = c->pool;
    if (!c->keep || p->run->stage == STAGE_DONE)
        conn_close(c);
    else
        idle_push(c);
    pool_pump(p);
}

static void on_write(uv_write_t *w, int status)
{
    struct rh_conn *c = w->data;
    c->writing = false;
    if (c->closing)
        return;
    if (status < 0)
        conn_fail(c, ST_ERROR);
    else if (c->answered) /* (the answer came before this callback: the request is free now) */
        conn_release(c);
}

static void conn_send(struct rh_conn *c)
{
    struct rh_req *q = c->req;
    buf_reset(&c->out);
    buf_reset(&c->body);
    memset(&c->answer, 0, sizeof(c->answer));
    c->answer.retry_after = -1;
    c->field_len = 0;
    c->in_value = false;
    c->cookie_state = 0;
    c->status = 0;
    c->complete = false;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    if (buf_append(&c->out, q->bytes, q->len)) {
        conn_fail(c, ST_ERROR);
        return;
    }
    uint64_t now = uv_hrtime();
    if (q->flow >= 0 && q->phase >= 0 && now > q->t0) /* the phases' arrivals only */
        rh_hist_record(&c->pool->run->lag, (now - q->t0) / 1000);
    uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
    uv_timer_start(&c->timer, on_timeout, c->pool->run->sc.timeout_ms, 0);
    c->answered = false;
    c->writing = true;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
        c->writing = false;
        conn_fail(c, ST_ERROR);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct rh_conn *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* The answer is handed over before the connection is offered again, so a request the
 * caller sends from its callback cannot reset the body and headers it is reading; and the
 * connection waits for its write's callback (an answer may arrive first, in the same loop
 * turn), since a uv_write_t may not be reused before then. */
static void conn_answered(struct rh_conn *c)
{
    struct rh_pool *p = c->pool;
    struct rh_req *q = c->req;
    uv_timer_stop(&c->timer);
    c->req = NULL;
    c->answered = true;
    p->run->answer = &c->answer;
    req_finish(p->run, q, c->status, c->body.p ? c->body.p : "", c->body.len);
    p->run->answer = NULL;
    if (c->closing)
        pool_pump(p);
    else if (!c->writing)
        conn_release(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct rh_conn *c = s->data;
    if (n == 0 || c->closing)
        return;
    if (n < 0 || !c->req) { /* EOF, error, or bytes nobody asked for */
        conn_fail(c, ST_ERROR);
        return;
    }
    size_t used = http_parser_execute(&c->parser, &parser_settings, b->base, (size_t)n);
    if (c->complete) {
        conn_answered(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != (size_t)n)
        conn_fail(c, ST_ERROR);
}

static void on_connect(uv_connect_t *r, int status)
{
    struct rh_conn *c = r->data;
    if (c->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
        conn_fail(c, ST_ERROR);
        return;
    }
    c->connected = true;
    conn_send(c);
}

static void on_closed(uv_handle_t *h)
{
    struct rh_conn *c = h->data;
    if (--c->closes == 0) {
        buf_fini(&c->out);
        buf_fini(&c->body);
        free(c);
    }
}

static void conn_close(struct rh_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    idle_remove(c);
    c->pool->nconns--;
    c->pool->run->open_conns--;
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

static int on_headers_complete(http_parser *hp)
{
    struct rh_conn *c = hp->data;
    c->status = hp->status_code;
    return 0;
}

/* Header names and values may arrive in pieces: a name is gathered until its value starts,
 * and the value of a header we keep is appended to (what does not fit is dropped whole). */
static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct rh_conn *c = hp->data;
    if (c->in_value) {
        c->in_value = false;
        c->field_len = 0;
    }
    for (size_t i = 0; i < n && c->field_len < sizeof(c->field) - 1; i++) {
        char ch = at[i];
        c->field[c->field_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    c->field[c->field_len] = '\0';
    return 0;
}

static void append_cut(char *dst, size_t cap, const char *at, size_t n)
{
    size_t have = strlen(dst);
    if (have + n >= cap) { /* too long to be of use: kept empty */
        dst[0] = '\0';
        return;
    }
    memcpy(dst + have, at, n);
    dst[have + n] = '\0';
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct rh_conn *c = hp->data;
    bool first = !c->in_value;
    c->in_value = true;
    if (strcmp(c->field, "location") == 0) {
        append_cut(c->answer.location, sizeof(c->answer.location), at, n);
    } else if (strcmp(c->field, "set-cookie") == 0) {
        if (first) /* the first cookie's name=value only */
            c->cookie_state = c->answer.cookie[0] ? 2 : 1;
        size_t keep = 0;
        while (keep < n && at[keep] != ';')
            keep++;
        if (c->cookie_state == 1)
            append_cut(c->answer.cookie, sizeof(c->answer.cookie), at, keep);
        if (keep < n)
            c->cookie_state = 2;
    } else if (strcmp(c->field, "retry-after") == 0 && first) {
        c->answer.retry_after = 0;
        for (size_t i = 0; i < n && at[i] >= '0' && at[i] <= '9' && c->answer.retry_after < 3600;
             i++)
            c->answer.retry_after = c->answer.retry_after * 10 + (at[i] - '0');
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct rh_conn *c = hp->data;
    (void)buf_append(&c->body, at, n); /* past BODY_MAX the rest is not needed */
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct rh_conn *c = hp->data;
    c->complete = true;
    c->keep = http_should_keep_alive(hp);
    http_parser_pause(hp, 1);
    return 0;
}

static struct rh_conn *conn_open(struct rh_pool *p, struct rh_req *q)
{
    struct rh_run *run = p->run;
    struct rh_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->pool = p;
    c->req = q;
    buf_init(&c->out, 1 << 20);
    buf_init(&c->body, BODY_MAX);
    uv_tcp_init(run->loop, &c->tcp);
    uv_timer_init(run->loop, &c->timer);
    c->tcp.data = c->timer.data = c->connect.data = c->write.data = c;
    p->nconns++;
    run->open_conns++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_timeout, run->sc.timeout_ms, 0);
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&p->addr, on_connect)) {
        c->req = NULL;
        conn_close(c);
        req_finish(run, q, ST_ERROR, NULL, 0);
        return NULL;
    }
    return c;
}

/* Starts queued requests while connections are idle or may be opened. */
static void pool_pump(struct rh_pool *p)
{
    while (p->qhead && (p->idle || p->nconns < p->max)) {
        struct rh_req *q = p->qhead;
        p->qhead = q->next;
        if (!p->qhead)
            p->qtail = NULL;
        p->qlen--;
        q->next = NULL;
        if (p->idle) {
            struct rh_conn *c = p->idle;
            idle_remove(c);
            c->req = q;
            conn_send(c);
        } else {
            conn_open(p, q);
        }
    }
}

void rh_pool_submit(struct rh_pool *p, struct rh_req *q)
{
    if (p->qlen >= QUEUE_MAX) {
        req_finish(p->run, q, ST_DROPPED, NULL, 0);
        return;
    }
    QUEUE_APPEND(p->qhead, p->qtail, q, next);
    p->qlen++;
    pool_pump(p);
}

void rh_pool_close_idle(struct rh_pool *p)
{
    while (p->idle)
        conn_close(p->idle);
}

/* "http://host:port" (IPv4, [IPv6] or a name, resolved once). */
int rh_pool_init(struct rh_run *run, struct rh_pool *p, const char *url, unsigned max, char *err,
                 size_t cap)
{
    char host[256], port[8] = "80";
    const char *s = url;
    memset(p, 0, sizeof(*p));
    p->run = run;
    p->max = max;
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= sizeof(host) || (s[n] && strcmp(s + n, "/") != 0)) {
        snprintf(err, cap, "'%s': expected http://HOST:PORT", url);
        return ERR_INVAL;
    }
    memcpy(host, s, n);
    host[n] = 0;
    snprintf(p->host, sizeof(p->host), "%s", host);
    char *colon = strrchr(host, ':'), *bracket = strrchr(host, ']');
    if (colon && (!bracket || colon > bracket)) {
        *colon = 0;
        snprintf(port, sizeof(port), "%s", colon + 1);
    }
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(h, port, &hints, &ai);
    if (rc) {
        snprintf(err, cap, "'%s': %s", url, gai_strerror(rc));
        return ERR_INVAL;
    }
    memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

struct rh_req *rh_req_new(int flow, req_done_cb done, const struct buf *b)
{
    struct rh_req *q = malloc(sizeof(*q) + b->len);
    if (!q)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->flow = flow;
    q->phase = -1;
    q->done = done;
    q->len = b->len;
    memcpy(q->bytes, b->p, b->len);
    return q;
}

void rh_http_init(void)
{
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
}
