/* SPDX-License-Identifier: MIT */
/*
 * Connection glue between libuv and http_session.
 *
 * Writes: answers produced while handling one read are taken as one buffer and sent with
 * one uv_try_write (a pipelined batch leaves in one write); only what the kernel did not
 * take goes through uv_write, whose buffer must stay put until its callback, hence the
 * swap in http_session_take_output.
 *
 * Closing: after the last answer the write side is shut down and the connection lingers,
 * discarding input, until the peer closes or 2 s pass (nginx's lingering close). Closing at
 * once with unread input would send RST, which can destroy the answer before the client
 * reads it, typically a 400 or 413 sent while the client is still sending.
 *
 * A connection whose request is on a worker when it dies becomes a zombie: its socket is
 * closed but its memory stays until the handler answers (http_session ops.on_release).
 */
#include "http/http_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "loop/loop.h"
#include "metrics/met.h"

#define SWEEP_MS    250
#define WHEEL_SLOTS 512 /* x SWEEP_MS = 128 s ahead; a later visit comes round again */
#define LINGER_MS   2000
#define WBUF_KEEP   (64 * 1024)
#define BACKLOG     4096

/* A link of the timer wheel's lists: circular, a slot's head is a sentinel. */
struct wlink {
    struct wlink *prev, *next; /* a connection's: NULL when it waits in no slot */
};

struct conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct http_server *srv;
    struct http_session *s;
    struct buf wbuf; /* bytes handed to uv_write, stable until on_write */
    struct conn *prev, *next;
    uint64_t deadline; /* uv_now ms; 0 = none */
    uint64_t write_deadline;
    struct wlink w;      /* in the wheel's slot of visit_tick */
    uint64_t visit_tick; /* the sweep tick (uv_now / SWEEP_MS) of its next visit */
    enum http_phase phase_seen;
    unsigned long nreq_seen;
    unsigned long nreq_swept; /* the request count when the last request began */
    uint64_t began;           /* uv_now ms then (quiet for SWEEP_MS since: trim) */
    bool reading, writing, closing, lingering, zombie, trimmed;
};

struct http_server {
    struct loop *lp;
    uv_tcp_t listener;
    uv_timer_t sweep;
    const struct http_server_opts *opt;
    const struct http_router *rt;
    struct met_shard *met;
    void *app;
    http_server_stopped_cb on_stopped;
    struct conn *conns;
    unsigned nconns, nzombies;
    bool draining, listener_closed, stopped;
    uint64_t drain_deadline;
    uint64_t tick; /* the last tick swept */
    struct wlink wheel[WHEEL_SLOTS];
};

static void after(struct conn *c);
static void close_conn(struct conn *c);
static void arm(struct conn *c, uint64_t when);
static void wheel_unlink(struct conn *c);
static void maybe_stopped(struct http_server *srv);

static const char reject_503[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 62\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n"
    "{\"error\":\"unavailable\",\"error_description\":\"too many connections\"}";

/* host:port as a passive stream address (free it with freeaddrinfo), or NULL. */
static struct addrinfo *resolve(const char *host, unsigned port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char portstr[8];

    if (port > 65535)
        return NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0)
        return NULL;
    return ai;
}

int http_listen_free(const char *host, unsigned port)
{
    struct addrinfo *ai;
    int one = 1, rc = ERR_OK;

    if (port == 0)
        return ERR_OK; /* (the kernel picks a port nobody has) */
    if (!(ai = resolve(host, port)))
        return ERR_INVAL;
    /* Without SO_REUSEPORT, the bind fails while any socket listens there, whoever it
     * belongs to; SO_REUSEADDR lets it past connections left in TIME_WAIT. Never listens. */
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
        rc = ERR_IO;
    else if (bind(fd, ai->ai_addr, ai->ai_addrlen))
        rc = errno == EADDRINUSE ? ERR_CONFLICT : ERR_IO;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    errno = saved;
    return rc;
}

int http_listen_open(const char *host, unsigned port, int *fd_out, unsigned *port_out)
{
    struct addrinfo *ai = resolve(host, port);
    int one = 1;

    if (!ai)
        return ERR_INVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
        goto fail;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, BACKLOG))
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl))
        goto fail;
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(ai);
    *fd_out = fd;
    return ERR_OK;
fail : {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    errno = saved;
    return ERR_IO;
}
}

/* ---- connection lifetime ------------------------------------------------------------- */

static void list_remove(struct conn *c)
{
    struct http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->nconns--;
}

static void conn_free(struct conn *c)
{
    http_session_free(c->s);
    buf_fini(&c->wbuf);
    mem_free(c);
}

static void on_release(void *owner)
{
    struct conn *c = owner;
    struct http_server *srv = c->srv;

    srv->nzombies--;
    conn_free(c);
    maybe_stopped(srv);
}

static void on_async_answer(void *owner)
{
    after(owner);
}

static const struct http_session_ops session_ops = {
    .on_async_answer = on_async_answer,
    .on_release = on_release,
};

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct http_server *srv = c->srv;

    atomic_fetch_sub(c->srv->opt->open_conns, 1);
    met_add(&srv->met->conn_closed, 1);
    list_remove(c);
    if (http_session_abort(c->s)) {
        conn_free(c);
    } else {
        c->zombie = true;
        srv->nzombies++;
    }
    maybe_stopped(srv);
}

static void close_conn(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    wheel_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- reading ------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    static __thread char discard[4096];
    char *p;
    size_t n;

    (void)suggested;
    if (c->lingering) {
        *b = uv_buf_init(discard, sizeof(discard));
        return;
    }
    http_session_rspace(c->s, &p, &n);
    *b = uv_buf_init(p, (unsigned)n);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = st->data;

    (void)b;
    if (c->closing)
        return;
    if (c->lingering) {
        if (nread < 0)
            close_conn(c);
        return;
    }
    if (nread > 0) {
        http_session_received(c->s, (size_t)nread);
    } else if (nread == UV_ENOBUFS) {
        uv_read_stop(st);
        c->reading = false;
    } else if (nread == UV_EOF) {
        http_session_eof(c->s);
        uv_read_stop(st);
        c->reading = false;
    } else if (nread < 0) {
        close_conn(c);
        return;
    }
    after(c);
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->writing = false;
    c->write_deadline = 0;
    if (status < 0 || c->closing) {
        close_conn(c);
        return;
    }
    met_add(&c->srv->met->bytes_out, c->wbuf.len);
    buf_reset(&c->wbuf);
    buf_shrink(&c->wbuf, WBUF_KEEP);
    http_session_kick(c->s);
    after(c);
}

/* Sends pending output. Returns false if the connection was closed. */
static bool flush(struct conn *c)
{
    struct http_server *srv = c->srv;

    while (!c->writing) {
        size_t n = http_session_take_output(c->s, &c->wbuf);
        if (!n)
            return true;
        uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w == (int)n) {
            met_add(&srv->met->bytes_out, n);
            buf_reset(&c->wbuf);
            http_session_kick(c->s); /* output drained: parsing may go on */
            continue;
        }
        if (w < 0 && w != UV_EAGAIN) {
            close_conn(c);
            return false;
        }
        if (w < 0)
            w = 0;
        met_add(&srv->met->bytes_out, (uint64_t)w);
        /* uv_write takes the rest; keep the written prefix out of the accounting. */
        memmove(c->wbuf.p, c->wbuf.p + w, n - (size_t)w);
        c->wbuf.len = n - (size_t)w;
        b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
            close_conn(c);
            return false;
        }
        c->writing = true;
        c->write_deadline = uv_now(&srv->lp->uv) + srv->opt->write_timeout_ms;
        arm(c, c->write_deadline);
    }
    return true;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    if (status < 0 || c->closing) {
        close_conn(c);
        return;
    }
    /* Written and shut: read and discard until the peer closes or the linger time ends. */
    c->lingering = true;
    c->deadline = uv_now(&c->srv->lp->uv) + LINGER_MS;
    arm(c, c->deadline);
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    if (!c->reading)
        close_conn(c);
}

static void set_deadline(struct conn *c)
{
    const struct http_server_opts *o = c->srv->opt;
    uint64_t now = uv_now(&c->srv->lp->uv);
    enum http_phase ph = http_session_phase(c->s);
    unsigned long nreq = http_session_requests(c->s);

    /* A new request resets the deadline even if it began in the read that ended the
     * previous one (pipelining), when the phase alone would look unchanged. */
    if (ph == c->phase_seen && nreq == c->nreq_seen)
        return;
    c->phase_seen = ph;
    c->nreq_seen = nreq;
    switch (ph) {
    case HTTP_PHASE_IDLE:
        c->deadline = now + o->idle_timeout_ms;
        break;
    case HTTP_PHASE_HEAD:
        c->deadline = now + o->header_timeout_ms;
        break;
    case HTTP_PHASE_BODY:
        c->deadline = now + o->body_timeout_ms;
        break;
    case HTTP_PHASE_BUSY:
    case HTTP_PHASE_DONE:
    case HTTP_PHASE_STREAM: /* (a slow reader is held to write_timeout) */
        c->deadline = 0;
        break;
    }
    /* Visited SWEEP_MS from now (the trim check: no request begun by then, the buffers go
     * back), or at the deadline if sooner. */
    if (nreq != c->nreq_swept) {
        c->nreq_swept = nreq;
        c->began = now;
        c->trimmed = false;
    }
    arm(c, c->deadline && c->deadline < now + SWEEP_MS ? c->deadline : now + SWEEP_MS);
}

/* Brings the socket in line with the session: send output, read or not, close when done. */
static void after(struct conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (!flush(c))
        return;
    if (http_session_done(c->s)) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        if (!c->writing && !c->lingering) {
            c->sreq.data = c;
            c->lingering = true; /* from here on, input is discarded */
            if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown))
                close_conn(c);
        }
        return;
    }
    /* Reading stops lazily: a session that wants nothing now (a request in flight, output
     * piling up) gives on_alloc no room, and the socket stops at the first bytes that arrive
     * then (UV_ENOBUFS in on_read). Most clients send nothing while they wait for their
     * answer, so a request answered later (a store write, a hash) costs no system call to
     * stop reading and none to start again: libuv spends two epoll_ctl calls on that pair,
     * 4 us a request on this machine's virtual CPUs. */
    if (http_session_wants_read(c->s) && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
            close_conn(c);
            return;
        }
        c->reading = true;
    }
    set_deadline(c);
}

/* ---- accepting ----------------------------------------------------------------------- */

static void free_handle(uv_handle_t *h)
{
    mem_free(h);
}

static void reject(struct http_server *srv)
{
    uv_tcp_t *t = xmalloc(sizeof(*t));

    uv_tcp_init(&srv->lp->uv, t);
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t) == 0) {
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)reject_503, sizeof(reject_503) - 1);
        uv_try_write((uv_stream_t *)t, &b, 1);
    }
    met_add(&srv->met->conn_rejected, 1);
    uv_close((uv_handle_t *)t, free_handle);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct http_server *srv = l->data;

    if (status < 0 || srv->draining)
        return;
    unsigned open = atomic_fetch_add(srv->opt->open_conns, 1);
    if (open >= srv->opt->max_connections) {
        atomic_fetch_sub(srv->opt->open_conns, 1);
        reject(srv);
        return;
    }
    struct conn *c = mem_calloc(1, sizeof(*c));
    struct http_session *s =
        c ? http_session_new(&srv->opt->limits, srv->rt, srv->met, &session_ops, c, srv->app)
          : NULL;
    if (!s) {
        mem_free(c);
        atomic_fetch_sub(srv->opt->open_conns, 1);
        reject(srv);
        return;
    }
    c->s = s;
    c->srv = srv;
    buf_init(&c->wbuf, SIZE_MAX);
    uv_tcp_init(&srv->lp->uv, &c->tcp);
    c->tcp.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    met_add(&srv->met->conn_accepted, 1);
    if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
        close_conn(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        http_session_set_peer(s, (struct sockaddr *)&ss, (size_t)sl);
    /* Until the first byte, the connection is held to the header timeout, not idle's. */
    c->phase_seen = HTTP_PHASE_IDLE;
    c->began = uv_now(&srv->lp->uv);
    c->deadline = c->began + srv->opt->header_timeout_ms;
    arm(c, c->deadline);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
        close_conn(c);
        return;
    }
    c->reading = true;
}

/* ---- timers and shutdown ------------------------------------------------------------- */

/* A keep-alive connection on which no request began for SWEEP_MS (and nothing is being
 * written) gives its buffers back: an idle connection costs its structs, not its buffers.
 * One that keeps asking keeps them. */
static void trim(struct conn *c, uint64_t now)
{
    unsigned long nreq = http_session_requests(c->s);
    if (nreq != c->nreq_swept) {
        c->nreq_swept = nreq;
        c->began = now;
        c->trimmed = false;
        return;
    }
    if (now - c->began < SWEEP_MS || c->trimmed || c->writing || c->lingering ||
        !http_session_trim(c->s))
        return;
    buf_fini(&c->wbuf);
    buf_init(&c->wbuf, c->wbuf.max);
    c->trimmed = true;
}

/* ---- the timer wheel -----------------------------------------------------------------
 *
 * Each connection waits in the slot of its next visit: its nearest deadline, or a trim
 * check SWEEP_MS after a request began. A sweep visits only the slots that came due, so
 * idle connections cost nothing between their visits (walking them all every sweep held
 * the active ones' answers back by a millisecond per 10,000). A deadline that moves later
 * costs nothing either: the connection is visited at the old time and waits again for the
 * new one. Only a visit that must come sooner moves it. */

static void wheel_unlink(struct conn *c)
{
    if (!c->w.next)
        return;
    c->w.prev->next = c->w.next;
    c->w.next->prev = c->w.prev;
    c->w.next = c->w.prev = NULL;
}

static void wheel_link(struct wlink *head, struct wlink *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}

/* Visits c no later than the first sweep at or after uv time `when` (ms). */
static void arm(struct conn *c, uint64_t when)
{
    struct http_server *srv = c->srv;
    uint64_t tick = (when + SWEEP_MS - 1) / SWEEP_MS;

    if (tick <= srv->tick)
        tick = srv->tick + 1;
    if (c->w.next && c->visit_tick <= tick)
        return; /* visited by then already */
    wheel_unlink(c);
    c->visit_tick = tick;
    wheel_link(&srv->wheel[tick % WHEEL_SLOTS], &c->w);
}

/* A connection's visit: its deadlines, else the trim; then it waits for the next. */
static void visit(struct conn *c, uint64_t now)
{
    if (c->writing && c->write_deadline && now >= c->write_deadline) {
        met_add(&c->srv->met->conn_timed_out, 1);
        close_conn(c);
        return;
    }
    if (c->lingering && c->deadline && now >= c->deadline) {
        close_conn(c);
        return;
    }
    if (!c->lingering && c->deadline && now >= c->deadline) {
        met_add(&c->srv->met->conn_timed_out, 1);
        c->deadline = 0;
        http_session_timeout(c->s);
        after(c);
    } else {
        trim(c, now);
    }
    if (c->closing)
        return;
    uint64_t next = c->trimmed ? UINT64_MAX : c->began + SWEEP_MS;
    if (c->writing && c->write_deadline && c->write_deadline < next)
        next = c->write_deadline;
    if (c->deadline && c->deadline < next)
        next = c->deadline;
    if (next != UINT64_MAX)
        arm(c, next);
}

static void on_sweep(uv_timer_t *t)
{
    struct http_server *srv = t->data;
    uint64_t now = uv_now(&srv->lp->uv), from = srv->tick + 1;

    log_access_flush();
    if (srv->draining && now >= srv->drain_deadline) {
        for (struct conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            close_conn(c);
        }
        return;
    }
    if (now / SWEEP_MS < from)
        return;                          /* (no tick has passed) */
    srv->tick = now / SWEEP_MS;          /* (visits armed from here on go past it) */
    if (srv->tick - from >= WHEEL_SLOTS) /* (the loop stalled: every slot once) */
        from = srv->tick - WHEEL_SLOTS + 1;
    for (uint64_t tick = from; tick <= srv->tick; tick++) {
        struct wlink *head = &srv->wheel[tick % WHEEL_SLOTS], due;
        if (head->next == head)
            continue;
        /* The slot's list moves to `due`: a visit that arms again never lands in it. */
        due.next = head->next;
        due.prev = head->prev;
        due.next->prev = due.prev->next = &due;
        head->next = head->prev = head;
        while (due.next != &due) {
            struct conn *c = CONTAINER_OF(due.next, struct conn, w);
            wheel_unlink(c);
            if (c->visit_tick > srv->tick) /* a later round's */
                wheel_link(&srv->wheel[c->visit_tick % WHEEL_SLOTS], &c->w);
            else
                visit(c, now);
        }
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    srv->stopped = true;
    if (srv->on_stopped)
        srv->on_stopped(srv);
}

static void maybe_stopped(struct http_server *srv)
{
    if (!srv->draining || srv->nconns || srv->nzombies || !srv->listener_closed ||
        uv_is_closing((uv_handle_t *)&srv->sweep))
        return;
    uv_close((uv_handle_t *)&srv->sweep, on_timer_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    srv->listener_closed = true;
    maybe_stopped(srv);
}

void http_server_drain(struct http_server *srv)
{
    if (srv->draining)
        return;
    srv->draining = true;
    srv->drain_deadline = uv_now(&srv->lp->uv) + srv->opt->drain_timeout_ms;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        http_session_drain(c->s);
        after(c);
    }
}

int http_server_start(struct loop *lp, int fd, const struct http_server_opts *opt,
                      const struct http_router *rt, struct met_shard *met, void *app,
                      http_server_stopped_cb on_stopped, struct http_server **out)
{
    struct http_server *srv = xcalloc(1, sizeof(*srv));

    srv->lp = lp;
    srv->opt = opt;
    srv->rt = rt;
    srv->met = met;
    srv->app = app;
    srv->on_stopped = on_stopped;
    uv_tcp_init(&lp->uv, &srv->listener);
    srv->listener.data = srv;
    int err = uv_tcp_open(&srv->listener, fd);
    if (!err)
        err = uv_listen((uv_stream_t *)&srv->listener, BACKLOG, on_connection);
    if (err) {
        log_msg(LOG_ERROR, "loop %u: cannot listen on the socket: %s", lp->index, uv_strerror(err));
        close(fd);
        mem_free(srv);
        return ERR_IO;
    }
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        srv->wheel[i].prev = srv->wheel[i].next = &srv->wheel[i];
    srv->tick = uv_now(&lp->uv) / SWEEP_MS;
    uv_timer_init(&lp->uv, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    *out = srv;
    return ERR_OK;
}

void http_server_free(struct http_server *srv)
{
    mem_free(srv);
}

unsigned http_server_conns(const struct http_server *srv)
{
    return srv->nconns;
}

bool http_server_draining(const struct http_server *srv)
{
    return srv->draining;
}
