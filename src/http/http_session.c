/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 protocol state for one connection (see http_session.h for the contract).
 *
 * Memory: `in` holds received bytes. Fields of the request being read are stored as offsets
 * from the request's first byte (req_start), so `in` may be compacted or grown between
 * execute calls; they become pointers only at dispatch, and `in` is neither grown nor
 * compacted while a handler holds the request. Body bytes are copied into the arena as they
 * arrive (chunked bodies are not contiguous in `in`) and then dropped from `in`, so `in`
 * stays within max_header_bytes plus one read. `out` collects answers until the glue takes
 * them; parsing stops while `out` holds more than OUT_SOFT_MAX (a client that pipelines but
 * does not read cannot make us buffer without bound).
 */
#include "http/http_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <http_parser.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/http.h"
#include "http/http_field.h"
#include "http/http_router.h"
#include "metrics/met.h"

#define IN_SLACK     (64 * 1024)  /* room past max_header_bytes for one read */
#define READ_MIN     (16 * 1024)  /* space offered to each read */
#define OUT_SOFT_MAX (256 * 1024) /* stop parsing while this much output is pending */
#define OUT_HARD_MAX (8u << 20)   /* an answer that would pass this closes the connection */
#define ARENA_BLOCK  4096
#define IN_KEEP      (32 * 1024) /* an idle connection gives back a larger input buffer */

struct hdr_off {
    uint32_t name_off, name_len, val_off, val_len;
};

struct http_resp_header {
    struct http_resp_header *next;
    const char *name, *value;
    size_t name_len, value_len;
};

struct http_session {
    http_parser parser;
    const struct http_limits *lim;
    const struct http_router *rt;
    const struct http_session_ops *ops;
    struct met_shard *met;
    void *owner;
    void *app;

    struct buf in;
    size_t parsed;    /* bytes of `in` given to the parser */
    size_t req_start; /* offset of the current request's first byte */
    size_t exec_base; /* offset where the current execute call began */
    size_t views_end; /* offset (from req_start) past the last URL/header byte */
    struct buf out;
    struct arena arena;

    struct http_request req;
    struct hdr_off *hoff; /* max_headers of them; NULL while idle (http_session_trim) */
    unsigned nh;
    uint32_t url_off, url_len;
    char last_cb; /* 'f' after a header field piece, 'v' after a value piece */
    char *body;
    size_t body_len, body_cap;

    enum http_phase phase;
    unsigned err_status; /* set by a callback that fails the parse */
    const char *err_desc;
    bool keep_alive;  /* of the current request */
    bool in_dispatch; /* the handler is running inside received() */
    bool draining;
    bool aborted;
    bool streaming; /* the answer's head said no length: its body is the stream's */
    void (*stream_end)(void *arg);
    void *stream_arg;
    unsigned route_id;
    unsigned long nreq; /* requests begun */
    struct sockaddr_storage peer;
};

/* ---- parser callbacks ---------------------------------------------------------------- */

static struct http_session *sess(http_parser *p)
{
    return p->data;
}

static int fail(struct http_session *s, unsigned status, const char *desc)
{
    s->err_status = status;
    s->err_desc = desc;
    return -1;
}

static uint32_t rel(struct http_session *s, const char *at)
{
    return (uint32_t)((size_t)(at - s->in.p) - s->req_start);
}

static int check_head_size(struct http_session *s, uint32_t end)
{
    if (end > s->views_end)
        s->views_end = end;
    if (end > s->lim->max_header_bytes)
        return fail(s, 431, "request header section too large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct http_session *s = sess(p);

    s->req_start = s->exec_base;
    s->views_end = 0;
    s->nh = 0;
    s->url_off = s->url_len = 0;
    s->last_cb = 0;
    s->body = NULL;
    s->body_len = s->body_cap = 0;
    s->phase = HTTP_PHASE_HEAD;
    s->req.start_ns = clock_mono_ns();
    s->nreq++;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);
    uint32_t off = rel(s, at);

    if (s->url_len == 0)
        s->url_off = off;
    s->url_len = off + (uint32_t)len - s->url_off;
    if (s->url_len > s->lim->max_url_bytes)
        return fail(s, 414, "request target too long");
    return check_head_size(s, off + (uint32_t)len);
}

/* Trailer fields (after a chunked body, RFC 9112 §7.1.2) are read and dropped: they are not
 * checked like the header section, and a gateway that filters headers (X-Forwarded-For,
 * Authorization) may pass trailers through, so merging them would let a client add what
 * the gateway removed (RFC 9110 §6.5.1). http_parser bounds their size. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);

    if (s->phase == HTTP_PHASE_BODY)
        return 0;
    uint32_t off = rel(s, at);
    if (s->last_cb != 'f') {
        if (s->nh >= s->lim->max_headers)
            return fail(s, 431, "too many header fields");
        if (!s->hoff && !(s->hoff = mem_calloc(s->lim->max_headers, sizeof(*s->hoff))))
            return fail(s, 503, "out of memory");
        struct hdr_off *h = &s->hoff[s->nh++];
        h->name_off = off;
        h->val_off = h->val_len = 0;
    }
    struct hdr_off *h = &s->hoff[s->nh - 1];
    h->name_len = off + (uint32_t)len - h->name_off;
    s->last_cb = 'f';
    return check_head_size(s, off + (uint32_t)len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);

    if (s->phase == HTTP_PHASE_BODY)
        return 0; /* a trailer's */
    uint32_t off = rel(s, at);
    struct hdr_off *h = &s->hoff[s->nh - 1];

    if (s->last_cb != 'v')
        h->val_off = off;
    h->val_len = off + (uint32_t)len - h->val_off;
    s->last_cb = 'v';
    return check_head_size(s, off + (uint32_t)len);
}

static struct str hdr_name(struct http_session *s, const struct hdr_off *h)
{
    return (struct str){s->in.p + s->req_start + h->name_off, h->name_len};
}

static struct str hdr_value(struct http_session *s, const struct hdr_off *h)
{
    const char *v = s->in.p + s->req_start + h->val_off;
    size_t n = h->val_len;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return (struct str){v, n};
}

/* Fields that occur once (RFC 9110 §5.3; RFC 6265 §5.4; RFC 6454 §7.3): sent twice, one
 * reader takes the first and another the last, and a gateway's app could act on a token
 * floodgate never checked. Refused, never guessed; each counted like Host. */
#define ONCE(n, why)                                                                               \
    {                                                                                              \
        n, sizeof(n) - 1, why                                                                      \
    } /* (the length known: no strlen per header) */
static const struct {
    const char *name;
    size_t len;
    const char *repeated; /* the 400's reason */
} once[] = {
    ONCE("authorization", "the Authorization header is repeated"),
    ONCE("content-type", "the Content-Type header is repeated"),
    ONCE("cookie", "the Cookie header is repeated"),
    ONCE("origin", "the Origin header is repeated"),
};
#undef ONCE
#define ONCE_N (sizeof(once) / sizeof(once[0]))

/* name's place in once[], or ONCE_N */
static size_t once_only(struct str name)
{
    size_t i = 0;
    while (i < ONCE_N && !str_eq_nocase(name, (struct str){once[i].name, once[i].len}))
        i++;
    return i;
}

/* Framing and version checks, RFC 9112 §6 and §3.2. Every failure closes the connection:
 * once framing is in doubt, nothing after this request can be trusted (smuggling). */
static int on_headers_complete(http_parser *p)
{
    struct http_session *s = sess(p);
    unsigned n_cl = 0, n_te = 0, n_host = 0;
    bool te_chunked = false, expect_continue = false;
    unsigned n_once[ONCE_N] = {0};
    size_t o;

    for (unsigned i = 0; i < s->nh; i++) {
        struct str name = hdr_name(s, &s->hoff[i]);
        struct str val = hdr_value(s, &s->hoff[i]);
        bool plain = http_field_value_plain(val);
        if (!plain && (memchr(val.p, '\r', val.len) || memchr(val.p, '\n', val.len)))
            return fail(s, 400, "obsolete line folding is not accepted");
        if (!http_field_name_ok(name))
            return fail(s, 400, "invalid header field name");
        if (!plain && !http_field_value_ok(val))
            return fail(s, 400, "invalid header field value");
        if (str_eq_nocase(name, STR_LIT("content-length"))) {
            n_cl++;
        } else if (str_eq_nocase(name, STR_LIT("transfer-encoding"))) {
            n_te++;
            te_chunked = str_eq_nocase(val, STR_LIT("chunked"));
        } else if (str_eq_nocase(name, STR_LIT("host"))) {
            n_host++;
        } else if ((o = once_only(name)) < ONCE_N) {
            if (++n_once[o] > 1)
                return fail(s, 400, once[o].repeated);
        } else if (str_eq_nocase(name, STR_LIT("expect"))) {
            if (!str_eq_nocase(val, STR_LIT("100-continue")))
                return fail(s, 417, "only Expect: 100-continue is supported");
            expect_continue = true;
        }
    }
    if (p->http_major != 1)
        return fail(s, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    if (n_cl > 1)
        return fail(s, 400, "duplicate Content-Length");
    if (n_te && n_cl)
        return fail(s, 400, "both Content-Length and Transfer-Encoding");
    if (n_te > 1 || (n_te && !te_chunked))
        return fail(s, 400, "unsupported Transfer-Encoding");
    if (n_te && p->http_minor == 0)
        return fail(s, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (n_host > 1 || (p->http_minor == 1 && n_host != 1))
        return fail(s, 400, "exactly one Host header is required (HTTP/1.1), at most one (1.0)");
    if (n_cl && p->content_length > s->lim->max_body_bytes)
        return fail(s, 413, "request body too large");
    if (n_cl && p->content_length > 0) {
        s->body_cap = (size_t)p->content_length;
        s->body = arena_alloc(&s->arena, s->body_cap);
        if (!s->body)
            return fail(s, 503, "out of memory");
    }
    s->keep_alive = http_should_keep_alive(p) && !s->draining;
    s->phase = HTTP_PHASE_BODY;
    if (expect_continue && (n_te || (n_cl && p->content_length > 0)) &&
        buf_puts(&s->out, "HTTP/1.1 100 Continue\r\n\r\n"))
        return fail(s, 503, "out of memory");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);

    if (len > s->lim->max_body_bytes - s->body_len)
        return fail(s, 413, "request body too large");
    if (s->body_len + len > s->body_cap) {
        /* Chunked: grow by doubling inside the arena (its cap bounds the waste). */
        size_t cap = s->body_cap ? s->body_cap * 2 : 1024;
        while (cap < s->body_len + len)
            cap *= 2;
        if (cap > s->lim->max_body_bytes)
            cap = s->lim->max_body_bytes;
        char *nb = arena_alloc(&s->arena, cap);
        if (!nb)
            return fail(s, 503, "out of memory");
        if (s->body_len)
            memcpy(nb, s->body, s->body_len);
        s->body = nb;
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_session *s = sess(p);

    s->keep_alive = s->keep_alive && http_should_keep_alive(p) && !p->upgrade;
    /* Pause: execute returns here, the request is dispatched, then parsing resumes. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- answers ------------------------------------------------------------------------- */

/* "Date: Fri, 27 Nov 2026 21:28:54 GMT\r\n", rebuilt at most once a second per thread. */
static __thread char date_line[64];
static __thread size_t date_len;
static __thread time_t date_at;

static void put_date(struct buf *o)
{
    time_t now = time(NULL);
    if (now != date_at || !date_len) {
        struct tm tm;
        gmtime_r(&now, &tm);
        date_len =
            strftime(date_line, sizeof(date_line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        date_at = now;
    }
    memcpy(o->p + o->len, date_line, date_len);
    o->len += date_len;
}

static void put(struct buf *o, const char *p, size_t n)
{
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

static size_t extra_len(const struct http_resp_header *h)
{
    size_t n = 0;
    for (; h; h = h->next)
        n += h->name_len + h->value_len + 4;
    return n;
}

/* Appends the status line, headers and body. ERR_LIMIT/ERR_NOMEM if it does not fit. */
static int write_answer(struct http_session *s, unsigned status, const char *ctype,
                        const void *body, size_t len, const struct http_resp_header *extra,
                        bool is_head)
{
    const char *reason = http_status_str((enum http_status)status);
    size_t rlen = strlen(reason);
    size_t clen = ctype ? strlen(ctype) : 0;
    size_t need = 64 + rlen + 64 + clen + 16 + 48 + 40 + extra_len(extra) + (is_head ? 0 : len);
    char num[24];

    if (need > OUT_HARD_MAX - s->out.len)
        return ERR_LIMIT;
    int rc = buf_reserve(&s->out, need);
    if (rc)
        return rc;
    struct buf *o = &s->out;
    PUT_LIT(o, "HTTP/1.1 ");
    put(o, num, str_utoa(num, status));
    put(o, " ", 1);
    put(o, reason, rlen);
    PUT_LIT(o, "\r\n");
    put_date(o);
    if (ctype) {
        PUT_LIT(o, "Content-Type: ");
        put(o, ctype, clen);
        PUT_LIT(o, "\r\n");
    }
    if (!s->streaming) {
        PUT_LIT(o, "Content-Length: ");
        put(o, num, str_utoa(num, len));
        PUT_LIT(o, "\r\n");
    }
    if (!s->keep_alive)
        PUT_LIT(o, "Connection: close\r\n");
    else if (s->req.http_minor == 0)
        PUT_LIT(o, "Connection: keep-alive\r\n");
    for (; extra; extra = extra->next) {
        put(o, extra->name, extra->name_len);
        PUT_LIT(o, ": ");
        put(o, extra->value, extra->value_len);
        PUT_LIT(o, "\r\n");
    }
    PUT_LIT(o, "\r\n");
    if (!is_head && len)
        put(o, body, len);
    return ERR_OK;
}

static void access_log(struct http_session *s, unsigned status, uint64_t dur_ns)
{
    char ts[32], addr[64] = "-", num[24];
    struct buf line;

    buf_init(&line, 16384);
    if (s->peer.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&s->peer)->sin_addr, addr, sizeof(addr));
    else if (s->peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&s->peer)->sin6_addr, addr, sizeof(addr));
    log_timestamp(ts);
    buf_printf(&line, "{\"ts\":\"%s\",\"remote\":\"%s\",\"method\":\"%s\",\"path\":\"", ts, addr,
               http_method_str((enum http_method)s->req.method));
    buf_json_escape(&line, s->req.path.p, s->req.path.len > 1024 ? 1024 : s->req.path.len);
    buf_puts(&line, "\",\"status\":");
    buf_append(&line, num, str_utoa(num, status));
    buf_puts(&line, ",\"dur_us\":");
    buf_append(&line, num, str_utoa(num, dur_ns / 1000));
    if (buf_puts(&line, "}\n") == ERR_OK)
        log_access(line.p, line.len);
    buf_fini(&line);
}

static void run(struct http_session *s);

/* The request is answered: account for it, release its memory, go on. */
static void finish(struct http_session *s, unsigned status)
{
    uint64_t dur = clock_mono_ns() - s->req.start_ns;

    if (s->met)
        met_request(s->met, s->route_id, status, dur);
    if (log_access_enabled())
        access_log(s, status, dur);
    arena_reset(&s->arena);
    s->req._extra = NULL;
    s->phase = s->streaming ? HTTP_PHASE_STREAM : s->keep_alive ? HTTP_PHASE_IDLE : HTTP_PHASE_DONE;
}

static void answer(struct http_session *s, unsigned status, const char *ctype, const void *body,
                   size_t len)
{
    bool is_head = s->req.method == HTTP_HEAD;

    if (s->aborted) {
        /* Nobody to answer: just release. */
        s->keep_alive = false;
    } else if (write_answer(s, status, ctype, body, len, s->req._extra, is_head)) {
        /* The answer does not fit: end the connection rather than send half of it. */
        s->keep_alive = false;
    }
    finish(s, status);
}

/* A protocol error: answer and stop reading this connection. */
static void protocol_error(struct http_session *s, unsigned status, const char *desc)
{
    struct buf body;

    if (s->phase == HTTP_PHASE_IDLE)
        s->req.start_ns = clock_mono_ns();
    s->route_id = 0;
    s->keep_alive = false;
    s->req.method = HTTP_GET; /* so a HEAD's error still carries its body */
    s->req._extra = NULL;
    if (s->met)
        met_add(&s->met->bad_requests, 1);
    buf_init(&body, 1024);
    buf_puts(&body, "{\"error\":\"");
    buf_puts(&body, status == 413   ? "request_too_large"
                    : status == 408 ? "request_timeout"
                    : status >= 500 ? "server_error"
                                    : "invalid_request");
    buf_puts(&body, "\",\"error_description\":\"");
    buf_puts(&body, desc);
    int rc = buf_puts(&body, "\"}");
    answer(s, status, "application/json", rc ? "" : body.p, rc ? 0 : body.len);
    buf_fini(&body);
    s->phase = HTTP_PHASE_DONE;
}

static unsigned parse_error_status(struct http_session *s, enum http_errno e)
{
    if (s->err_status)
        return s->err_status;
    if (e == HPE_HEADER_OVERFLOW)
        return 431;
    return 400;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void build_request(struct http_session *s)
{
    struct http_request *r = &s->req;
    const char *base = s->in.p + s->req_start;

    r->method = s->parser.method;
    r->http_minor = s->parser.http_minor;
    r->target = (struct str){base + s->url_off, s->url_len};
    const char *q = memchr(r->target.p, '?', r->target.len);
    if (q) {
        r->path = (struct str){r->target.p, (size_t)(q - r->target.p)};
        r->query = (struct str){q + 1, r->target.len - r->path.len - 1};
    } else {
        r->path = r->target;
        r->query = STR_NULL;
    }
    /* absolute-form (RFC 9112 §3.2.2): take the path out of "http://host/path". */
    if (r->path.len && r->path.p[0] != '/' && r->path.p[0] != '*') {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(r->target.p, r->target.len, 0, &u) == 0 &&
            (u.field_set & (1 << UF_PATH))) {
            r->path =
                (struct str){r->target.p + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
        }
    }
    /* the views in the request's arena: an idle connection holds none */
    struct http_header_view *views = s->nh ? arena_alloc(&s->arena, s->nh * sizeof(*views)) : NULL;
    if (!views)
        s->nh = 0; /* (out of memory: no headers rather than a crash; a handler that needs
                      one refuses the request) */
    for (unsigned i = 0; i < s->nh; i++) {
        views[i].name = hdr_name(s, &s->hoff[i]);
        views[i].value = hdr_value(s, &s->hoff[i]);
    }
    r->headers = views;
    r->nheaders = s->nh;
    r->body = (struct str){s->body ? s->body : "", s->body_len};
    r->arena = &s->arena;
    r->app = s->app;
    r->peer = (const struct sockaddr *)&s->peer;
    r->_s = s;
    r->_extra = NULL;
}

static void dispatch(struct http_session *s)
{
    struct http_request *r = &s->req;
    unsigned allow = 0;

    s->phase = HTTP_PHASE_BUSY;
    build_request(s);
    const struct http_route *route =
        http_router_match(s->rt, r->method, r->path, r->params, &r->nparams, &allow);
    s->route_id = route ? route->id : 0;
    if (!route) {
        if (allow) {
            char methods[256];
            http_methods_str(allow, methods, sizeof(methods));
            http_add_header(r, "Allow", methods);
            http_respond_error(r, 405, "method_not_allowed", NULL);
        } else {
            http_respond_error(r, 404, "not_found", NULL);
        }
        return;
    }
    s->in_dispatch = true;
    int rc = route->handler(r);
    s->in_dispatch = false;
    if (s->phase == HTTP_PHASE_BUSY && rc != HTTP_ASYNC) {
        log_msg(LOG_ERROR, "handler for %s returned without answering", route->pattern);
        http_respond_error(r, 500, "server_error", NULL);
    }
}

/* Drops body bytes and compacts `in`, keeping every offset the current request uses. */
static void tidy_input(struct http_session *s)
{
    if (s->phase == HTTP_PHASE_BUSY)
        return;
    if (s->phase == HTTP_PHASE_BODY && s->parsed == s->in.len) {
        /* Body bytes are in the arena now; only the head's views must stay. */
        size_t keep = s->req_start + s->views_end;
        if (keep < s->in.len)
            s->in.len = s->parsed = keep;
    }
    if (s->phase == HTTP_PHASE_IDLE && s->parsed == s->in.len) {
        s->in.len = s->parsed = s->req_start = 0;
        buf_shrink(&s->in, IN_KEEP);
        return;
    }
    if (s->req_start > 0 && s->in.cap - s->in.len < READ_MIN) {
        memmove(s->in.p, s->in.p + s->req_start, s->in.len - s->req_start);
        s->in.len -= s->req_start;
        s->parsed -= s->req_start;
        s->req_start = 0;
    }
}

static void run(struct http_session *s)
{
    while (s->parsed < s->in.len && s->out.len < OUT_SOFT_MAX && !s->aborted &&
           (s->phase == HTTP_PHASE_IDLE || s->phase == HTTP_PHASE_HEAD ||
            s->phase == HTTP_PHASE_BODY)) {
        if (s->phase == HTTP_PHASE_IDLE)
            s->req_start = s->parsed;
        s->exec_base = s->parsed;
        size_t avail = s->in.len - s->parsed;
        size_t n = http_parser_execute(&s->parser, &settings, s->in.p + s->parsed, avail);
        s->parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&s->parser, 0);
            bool upgrade = s->parser.upgrade;
            dispatch(s);
            if (upgrade && s->phase != HTTP_PHASE_BUSY)
                s->phase = HTTP_PHASE_DONE; /* the rest is not HTTP/1.1: stop here */
            else if (upgrade)
                s->keep_alive = false;
            continue;
        }
        if (e != HPE_OK) {
            unsigned st = parse_error_status(s, e);
            protocol_error(s, st, s->err_desc ? s->err_desc : http_errno_description(e));
            return;
        }
    }
    if (s->phase == HTTP_PHASE_HEAD && s->in.len - s->req_start > s->lim->max_header_bytes) {
        protocol_error(s, 431, "request header section too large");
        return;
    }
    tidy_input(s);
}

/* ---- public -------------------------------------------------------------------------- */

void http_session_global_init(size_t max_header_bytes)
{
    /* Our own check is exact; the parser's is a backstop for state we do not see. */
    http_parser_set_max_header_size((uint32_t)max_header_bytes + 1024);
}

/* The buffers and the arena, empty: nothing is allocated until a request needs it. */
static void buffers_init(struct http_session *s)
{
    buf_init(&s->in, s->lim->max_header_bytes + IN_SLACK);
    buf_init(&s->out, OUT_HARD_MAX);
    /* Room for a full body (chunked growth may hold two copies) plus the answer. */
    arena_init(&s->arena, ARENA_BLOCK, 2 * s->lim->max_body_bytes + 256 * 1024);
}

struct http_session *http_session_new(const struct http_limits *lim, const struct http_router *rt,
                                      struct met_shard *met, const struct http_session_ops *ops,
                                      void *owner, void *app)
{
    struct http_session *s = mem_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    s->lim = lim;
    s->rt = rt;
    s->met = met;
    s->ops = ops;
    s->owner = owner;
    s->app = app;
    buffers_init(s);
    s->phase = HTTP_PHASE_IDLE;
    s->keep_alive = true;
    return s;
}

void http_session_free(struct http_session *s)
{
    if (!s)
        return;
    arena_fini(&s->arena);
    buf_fini(&s->in);
    buf_fini(&s->out);
    mem_free(s->hoff);
    mem_free(s);
}

void http_session_set_peer(struct http_session *s, const struct sockaddr *sa, size_t len)
{
    if (len > sizeof(s->peer))
        len = sizeof(s->peer);
    memcpy(&s->peer, sa, len);
}

void http_session_rspace(struct http_session *s, char **p, size_t *n)
{
    *p = NULL;
    *n = 0;
    if (!http_session_wants_read(s))
        return;
    size_t want = READ_MIN;
    if (want > s->in.max - s->in.len)
        want = s->in.max - s->in.len;
    if (want == 0 || buf_reserve(&s->in, want))
        return;
    *p = s->in.p + s->in.len;
    *n = s->in.cap - s->in.len;
}

void http_session_received(struct http_session *s, size_t n)
{
    if (s->met)
        met_add(&s->met->bytes_in, n);
    if (s->phase == HTTP_PHASE_STREAM)
        return; /* a stream's peer has nothing more to ask: read only to see it leave */
    s->in.len += n;
    run(s);
}

/* The stream ends from this side's view (the peer left, the server drains): its owner is
 * told once, and the connection closes once its output is written. */
static void stream_gone(struct http_session *s)
{
    void (*end)(void *) = s->stream_end;
    s->stream_end = NULL;
    s->phase = HTTP_PHASE_DONE;
    if (end)
        end(s->stream_arg);
}

void http_session_eof(struct http_session *s)
{
    if (s->phase == HTTP_PHASE_STREAM)
        stream_gone(s);
    else if (s->phase == HTTP_PHASE_HEAD || s->phase == HTTP_PHASE_BODY)
        s->phase = HTTP_PHASE_DONE; /* incomplete request: nothing to answer */
    else if (s->phase == HTTP_PHASE_IDLE)
        s->phase = HTTP_PHASE_DONE;
    else
        s->keep_alive = false; /* busy: answer, then close */
}

void http_session_timeout(struct http_session *s)
{
    if (s->phase == HTTP_PHASE_HEAD || s->phase == HTTP_PHASE_BODY)
        protocol_error(s, 408, "request not received in time");
    else
        s->phase = HTTP_PHASE_DONE;
}

void http_session_drain(struct http_session *s)
{
    s->draining = true;
    if (s->phase == HTTP_PHASE_STREAM)
        stream_gone(s);
    else if (s->phase == HTTP_PHASE_IDLE)
        s->phase = HTTP_PHASE_DONE;
    else
        s->keep_alive = false;
}

bool http_session_trim(struct http_session *s)
{
    if (s->phase != HTTP_PHASE_IDLE || s->in.len != s->parsed || s->out.len)
        return false;
    buf_fini(&s->in);
    buf_fini(&s->out);
    arena_fini(&s->arena);
    buffers_init(s);
    s->parsed = s->req_start = 0;
    mem_free(s->hoff);
    s->hoff = NULL;
    return true;
}

void http_session_kick(struct http_session *s)
{
    if (s->phase != HTTP_PHASE_BUSY && s->phase != HTTP_PHASE_DONE)
        run(s);
}

bool http_session_abort(struct http_session *s)
{
    s->aborted = true;
    if (s->phase == HTTP_PHASE_STREAM)
        stream_gone(s);
    return s->phase != HTTP_PHASE_BUSY;
}

size_t http_session_take_output(struct http_session *s, struct buf *dst)
{
    struct buf tmp = *dst;

    if (!s->out.len)
        return 0;
    *dst = s->out;
    s->out = tmp;
    s->out.len = 0;
    s->out.max = OUT_HARD_MAX;
    return dst->len;
}

enum http_phase http_session_phase(const struct http_session *s)
{
    return s->phase;
}

unsigned long http_session_requests(const struct http_session *s)
{
    return s->nreq;
}

bool http_session_wants_read(const struct http_session *s)
{
    return !s->aborted && s->phase != HTTP_PHASE_BUSY && s->phase != HTTP_PHASE_DONE &&
           s->out.len < OUT_SOFT_MAX;
}

bool http_session_done(const struct http_session *s)
{
    return s->phase == HTTP_PHASE_DONE;
}

/* ---- http.h: handler-facing calls ------------------------------------------------------ */

struct str http_header(const struct http_request *r, const char *name)
{
    struct str want = str_c(name);

    for (unsigned i = 0; i < r->nheaders; i++)
        if (str_eq_nocase(r->headers[i].name, want))
            return r->headers[i].value;
    return STR_NULL;
}

bool http_content_type_is(const struct http_request *r, const char *type)
{
    struct str ct = http_header(r, "content-type");
    size_t n = 0;

    if (!ct.p)
        return false;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
        n++;
    return str_eq_nocase((struct str){ct.p, n}, str_c(type));
}

int http_add_header(struct http_request *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (!http_field_unbroken((struct str){name, nl}, true) ||
        !http_field_unbroken((struct str){value, vl}, false))
        return ERR_INVAL;
    /* one allocation: the header, then its name and value, each terminated */
    struct http_resp_header *h = arena_alloc(r->arena, sizeof(*h) + nl + vl + 2);
    if (!h)
        return ERR_NOMEM;
    char *p = (char *)(h + 1);
    memcpy(p, name, nl + 1);
    memcpy(p + nl + 1, value, vl + 1);
    h->name = p;
    h->value = p + nl + 1;
    h->name_len = nl;
    h->value_len = vl;
    /* Append, so headers go out in the order they were added. */
    h->next = NULL;
    struct http_resp_header **pp = &r->_extra;
    while (*pp)
        pp = &(*pp)->next;
    *pp = h;
    return ERR_OK;
}

void http_respond(struct http_request *r, unsigned status, const char *ctype, const void *body,
                  size_t len)
{
    struct http_session *s = r->_s;
    bool async = !s->in_dispatch && s->phase == HTTP_PHASE_BUSY;

    if (s->phase != HTTP_PHASE_BUSY)
        return; /* answered twice: the first answer stands */
    answer(s, status, ctype, body, len);
    if (!async)
        return;
    /* An answer from a completion: the connection may go on with pipelined requests. */
    if (s->aborted) {
        s->ops->on_release(s->owner);
        return;
    }
    run(s);
    s->ops->on_async_answer(s->owner);
}

void http_respond_json(struct http_request *r, unsigned status, const char *json)
{
    http_respond(r, status, "application/json", json, strlen(json));
}

void http_respond_error(struct http_request *r, unsigned status, const char *code, const char *desc)
{
    struct buf b;

    buf_init(&b, 4096);
    buf_puts(&b, "{\"error\":\"");
    buf_json_escape(&b, code, strlen(code));
    if (desc) {
        buf_puts(&b, "\",\"error_description\":\"");
        buf_json_escape(&b, desc, strlen(desc));
    }
    if (buf_puts(&b, "\"}"))
        http_respond(r, status, NULL, "", 0);
    else
        http_respond(r, status, "application/json", b.p, b.len);
    buf_fini(&b);
}

/* ---- http.h: a streamed answer ------------------------------------------------------- */

struct http_stream *http_stream_start(struct http_request *r, unsigned status, const char *ctype,
                                      void (*on_end)(void *arg), void *arg)
{
    struct http_session *s = r->_s;
    bool async = !s->in_dispatch && s->phase == HTTP_PHASE_BUSY;

    if (s->phase != HTTP_PHASE_BUSY)
        return NULL;
    if (s->aborted || s->draining) { /* nobody to stream to, or no time to */
        http_respond(r, 503, NULL, "", 0);
        return NULL;
    }
    if (r->method == HTTP_HEAD) { /* the head alone */
        http_respond(r, status, ctype, "", 0);
        return NULL;
    }
    s->keep_alive = false; /* the body ends when the connection does */
    s->streaming = true;   /* (write_answer leaves Content-Length out) */
    s->streaming = write_answer(s, status, ctype, "", 0, s->req._extra, false) == ERR_OK;
    if (s->streaming) {
        s->stream_end = on_end;
        s->stream_arg = arg;
    }
    finish(s, status); /* (the phase: the stream's, or done if its head did not fit) */
    if (async)
        s->ops->on_async_answer(s->owner);
    return s->streaming ? (struct http_stream *)s : NULL;
}

int http_stream_send(struct http_stream *st, const void *p, size_t n)
{
    struct http_session *s = (struct http_session *)st;

    if (n > OUT_SOFT_MAX - s->out.len || buf_append(&s->out, p, n)) {
        http_stream_end(st); /* the peer does not read: the stream ends here */
        return ERR_LIMIT;
    }
    s->ops->on_async_answer(s->owner);
    return ERR_OK;
}

void http_stream_end(struct http_stream *st)
{
    struct http_session *s = (struct http_session *)st;
    s->stream_end = NULL;
    s->phase = HTTP_PHASE_DONE;
    s->ops->on_async_answer(s->owner);
}

unsigned http_request_route_id(const struct http_request *r)
{
    return r->_s->route_id;
}
