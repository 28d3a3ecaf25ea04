/* SPDX-License-Identifier: MIT */
/* An asynchronous Redis Cluster client; see redis_cluster.h. */
#include "redis/redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "redis/redis_conn.h"
#include "redis/redis_slot.h"

#define RETRY_FIRST_MS 10
/* A command refused because its slot's primary is not connected has the map read again,
 * at most this often: the replica may have been promoted, and nothing else would say so
 * before the old primary's connection comes back, if it ever does. */
#define REFUSED_READ_MS 100

struct node {
    struct redis_cluster *cl;
    struct redis_conn *conn;
    struct redis_url url;
    bool up, primary;
    uint64_t commands, redirects, errors, replies, latency_ns;
};

/* A command out: its arguments copied after it, so a redirection can send it again. */
struct cmd {
    struct redis_cluster *cl;
    redis_cluster_reply_cb cb;
    void *arg;
    unsigned slot;
    int hops, tries;
    int node; /* where it went last */
    uint64_t due_ms;
    uint64_t sent_ns; /* when it went there, for the node's latency */
    struct cmd *next; /* waiting for the map, or for a retry */
    int argc;
    const char **argv;
    size_t *lens;
};

struct redis_cluster {
    uv_loop_t *loop;
    uv_timer_t timer; /* retries */
    struct redis_url auth;
    unsigned nnodes;
    struct node *nodes[REDIS_CLUSTER_NODES];
    int16_t slot_node[REDIS_SLOTS]; /* -1: no primary known */
    unsigned covered;               /* slots with a primary */
    bool have_map, refreshing, want_refresh, closing, was_up;
    unsigned asked;           /* nodes asked for the map in this read (see ask_map) */
    uint64_t refused_read_ms; /* the last map read for a refused command */
    struct cmd *waiting, **waiting_tail;
    unsigned nwaiting;
    struct cmd *retrying;
    unsigned alive; /* commands not answered yet */
    unsigned retry_min_ms, retry_max_ms;
    const char *const *init;
    redis_cluster_state_cb state;
    void *arg;
    unsigned open; /* connections not closed yet (while closing), and the timer */
    void (*closed)(void *);
    void *closed_arg;
};

void redis_cluster_drop(struct redis_cluster *cl, unsigned slot)
{
    int i = slot < REDIS_SLOTS ? cl->slot_node[slot] : -1;
    if (i >= 0 && !cl->closing)
        redis_conn_drop(cl->nodes[i]->conn);
}

static void on_node_state(struct redis_conn *c, bool up, const char *why, void *arg);

/* ---- nodes ------------------------------------------------------------------------------ */

static int node_index(struct redis_cluster *cl, const char *host, int port)
{
    for (unsigned i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i]->url.port == port && strcmp(cl->nodes[i]->url.host, host) == 0)
            return (int)i;
    return -1;
}

/* The node at host:port, connecting to it if it is new; -1 when the table is full. */
static int node_get(struct redis_cluster *cl, const char *host, int port)
{
    int i = node_index(cl, host, port);
    if (i >= 0 || cl->nnodes == REDIS_CLUSTER_NODES || cl->closing)
        return i;
    struct node *n = xcalloc(1, sizeof(*n));
    n->cl = cl;
    n->url = cl->auth;
    snprintf(n->url.host, sizeof(n->url.host), "%s", host);
    n->url.port = port;
    n->url.path[0] = '\0';
    n->url.db = 0;
    n->conn = redis_conn_new(cl->loop, &n->url, cl->retry_min_ms, cl->retry_max_ms, cl->init,
                             on_node_state, n);
    if (!n->conn) {
        mem_free(n);
        return -1;
    }
    cl->nodes[cl->nnodes] = n;
    return (int)cl->nnodes++;
}

static int node_of_conn(const struct redis_cluster *cl, const struct redis_conn *c)
{
    for (unsigned i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i]->conn == c)
            return (int)i;
    return -1;
}

static void update_state(struct redis_cluster *cl)
{
    const char *why = NULL;
    if (!cl->have_map)
        why = "no slot map yet";
    else if (cl->covered < REDIS_SLOTS)
        why = "slots without a primary";
    for (unsigned i = 0; !why && i < cl->nnodes; i++)
        if (cl->nodes[i]->primary && !cl->nodes[i]->up)
            why = "a primary is not connected";
    bool up = why == NULL;
    if (up != cl->was_up && !cl->closing) {
        cl->was_up = up;
        cl->state(cl, up, why, cl->arg);
    }
}

/* ---- commands --------------------------------------------------------------------------- */

static void deliver(struct cmd *c, const struct redis_reply *r);
static void send_to(struct cmd *c, int node, bool asking);

static void on_reply(struct redis_conn *conn, const struct redis_reply *r, void *arg);

static bool is_error(const struct redis_reply *r, const char *prefix)
{
    size_t n, pn = strlen(prefix);
    const char *s = redis_reply_str(r, &n);
    return redis_reply_kind(r) == RK_ERROR && n >= pn && memcmp(s, prefix, pn) == 0;
}

static void on_timer(uv_timer_t *t);

static void retry_later(struct cmd *c)
{
    struct redis_cluster *cl = c->cl;
    uint64_t now = clock_mono_ns() / 1000000u;
    c->due_ms = now + ((uint64_t)RETRY_FIRST_MS << (c->tries - 1));
    c->next = cl->retrying;
    cl->retrying = c;
    uint64_t first = c->due_ms;
    for (struct cmd *q = cl->retrying; q; q = q->next)
        first = q->due_ms < first ? q->due_ms : first;
    uv_timer_start(&cl->timer, on_timer, first > now ? first - now : 0, 0);
}

static void on_reply(struct redis_conn *conn, const struct redis_reply *r, void *arg)
{
    struct cmd *c = arg;
    struct redis_cluster *cl = c->cl;
    struct node *from = c->node >= 0 ? cl->nodes[c->node] : NULL;
    (void)conn;

    if (from && r) {
        from->replies++;
        from->latency_ns += clock_mono_ns() - c->sent_ns;
    }
    if (!r || cl->closing) {
        if (!r && !cl->closing)
            redis_cluster_refresh(cl); /* (a node gone: a failover may follow) */
        deliver(c, r);
        return;
    }
    if (redis_reply_kind(r) != RK_ERROR) {
        deliver(c, r);
        return;
    }
    size_t n;
    const char *s = redis_reply_str(r, &n);
    enum redis_redirect kind;
    unsigned slot;
    char host[REDIS_HOST_MAX + 1];
    int port;
    if (redis_redirect_parse(s, n, &kind, &slot, host, &port) == ERR_OK) {
        if (from)
            from->redirects++;
        int to = node_get(cl, host[0] ? host : (from ? from->url.host : ""), port);
        if (to < 0 || ++c->hops > REDIS_CLUSTER_HOPS) {
            deliver(c, r);
            return;
        }
        if (kind == REDIS_MOVED) {
            if (cl->slot_node[slot] < 0)
                cl->covered++;
            cl->slot_node[slot] = (int16_t)to;
            redis_cluster_refresh(cl);
        }
        send_to(c, to, kind == REDIS_ASK);
        return;
    }
    if (from)
        from->errors++;
    if (is_error(r, "TRYAGAIN") || is_error(r, "CLUSTERDOWN") || is_error(r, "LOADING")) {
        if (is_error(r, "CLUSTERDOWN"))
            redis_cluster_refresh(cl);
        if (++c->tries < REDIS_CLUSTER_TRIES) {
            retry_later(c);
            return;
        }
    }
    deliver(c, r);
}

static void send_to(struct cmd *c, int node, bool asking)
{
    struct redis_cluster *cl = c->cl;
    struct node *n = node >= 0 ? cl->nodes[node] : NULL;
    c->node = node;
    if (!n) {
        deliver(c, NULL);
        return;
    }
    n->commands++;
    c->sent_ns = clock_mono_ns();
    if (asking) {
        const char *asking_argv[] = {"ASKING"};
        const size_t asking_len[] = {6};
        (void)redis_conn_cmd(n->conn, NULL, NULL, 1, asking_argv, asking_len);
    }
    if (redis_conn_cmd(n->conn, on_reply, c, c->argc, c->argv, c->lens) != ERR_OK)
        deliver(c, NULL);
}

static void maybe_closed(struct redis_cluster *cl);

static void deliver(struct cmd *c, const struct redis_reply *r)
{
    struct redis_cluster *cl = c->cl;
    if (c->cb)
        c->cb(cl, r, c->arg);
    mem_free(c);
    cl->alive--;
    if (cl->closing)
        maybe_closed(cl);
}

static void on_timer(uv_timer_t *t)
{
    struct redis_cluster *cl = t->data;
    uint64_t now = clock_mono_ns() / 1000000u, next = UINT64_MAX;
    struct cmd *due = NULL, **pp = &cl->retrying;
    while (*pp) {
        struct cmd *c = *pp;
        if (c->due_ms <= now) {
            *pp = c->next;
            c->next = due;
            due = c;
        } else {
            next = c->due_ms < next ? c->due_ms : next;
            pp = &c->next;
        }
    }
    if (next != UINT64_MAX)
        uv_timer_start(&cl->timer, on_timer, next - now, 0);
    while (due) {
        struct cmd *c = due;
        due = c->next;
        send_to(c, cl->slot_node[c->slot], false);
    }
}

int redis_cluster_cmd(struct redis_cluster *cl, unsigned slot, redis_cluster_reply_cb cb, void *arg,
                      int argc, const char **argv, const size_t *lens)
{
    if (slot >= REDIS_SLOTS || argc <= 0)
        return ERR_INVAL;
    if (cl->closing)
        return ERR_BACKEND;
    int node = cl->have_map ? cl->slot_node[slot] : -1;
    if (cl->have_map && (node < 0 || !cl->nodes[node]->up)) {
        uint64_t now = clock_mono_ns() / 1000000u;
        if (now - cl->refused_read_ms >= REFUSED_READ_MS) { /* (a replica promoted since?) */
            cl->refused_read_ms = now;
            redis_cluster_refresh(cl);
        }
        return ERR_BACKEND;
    }
    if (!cl->have_map && cl->nwaiting >= REDIS_CLUSTER_WAITING)
        return ERR_BACKEND;
    size_t bytes = sizeof(struct cmd) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++)
        bytes += lens[i];
    struct cmd *c = mem_malloc(bytes);
    if (!c)
        return ERR_NOMEM;
    memset(c, 0, sizeof(*c));
    c->cl = cl;
    c->cb = cb;
    c->arg = arg;
    c->slot = slot;
    c->node = -1;
    c->argc = argc;
    c->argv = (const char **)(void *)(c + 1);
    c->lens = (size_t *)(void *)(c->argv + argc);
    char *data = (char *)(c->lens + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(data, argv[i], lens[i]);
        c->argv[i] = data;
        c->lens[i] = lens[i];
        data += lens[i];
    }
    cl->alive++;
    if (!cl->have_map) {
        *cl->waiting_tail = c;
        cl->waiting_tail = &c->next;
        cl->nwaiting++;
        return ERR_OK;
    }
    struct node *n = cl->nodes[node];
    c->node = node;
    c->sent_ns = clock_mono_ns();
    n->commands++;
    if (redis_conn_cmd(n->conn, on_reply, c, c->argc, c->argv, c->lens) != ERR_OK) {
        mem_free(c);
        cl->alive--;
        return ERR_BACKEND;
    }
    return ERR_OK;
}

/* ---- the map ---------------------------------------------------------------------------- */

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]. */
static void on_slots(struct redis_conn *conn, const struct redis_reply *r, void *arg)
{
    struct redis_cluster *cl = arg;
    int from = node_of_conn(cl, conn);
    cl->refreshing = false;
    if (cl->closing)
        return;
    if (!r || redis_reply_kind(r) != RK_ARRAY) {
        cl->want_refresh = true; /* (the next node to come up reads it) */
        return;
    }
    static int16_t map[REDIS_SLOTS];
    unsigned covered = 0;
    memset(map, 0xff, sizeof(map));
    for (unsigned i = 0; i < cl->nnodes; i++)
        cl->nodes[i]->primary = false;
    for (size_t i = 0; i < redis_reply_count(r); i++) {
        const struct redis_reply *e = redis_reply_at(r, i);
        if (redis_reply_kind(e) != RK_ARRAY || redis_reply_count(e) < 3)
            continue;
        long long a = redis_reply_int(redis_reply_at(e, 0)),
                  b = redis_reply_int(redis_reply_at(e, 1));
        const struct redis_reply *p = redis_reply_at(e, 2);
        if (a < 0 || b >= REDIS_SLOTS || a > b || redis_reply_kind(p) != RK_ARRAY ||
            redis_reply_count(p) < 2)
            continue;
        size_t hn;
        const char *host = redis_reply_str(redis_reply_at(p, 0), &hn);
        long long port = redis_reply_int(redis_reply_at(p, 1));
        char h[REDIS_HOST_MAX + 1];
        if (hn > REDIS_HOST_MAX || port < 1 || port > 65535)
            continue;
        if (hn == 0 && from >= 0) /* (a node that does not know its address: the one asked) */
            snprintf(h, sizeof(h), "%s", cl->nodes[from]->url.host);
        else
            snprintf(h, sizeof(h), "%.*s", (int)hn, host);
        int n = node_get(cl, h, (int)port);
        if (n < 0)
            continue;
        cl->nodes[n]->primary = true;
        for (long long s = a; s <= b; s++) {
            covered += map[s] < 0;
            map[s] = (int16_t)n;
        }
    }
    memcpy(cl->slot_node, map, sizeof(map));
    cl->covered = covered;
    cl->have_map = true;
    cl->want_refresh = false;
    update_state(cl);
    struct cmd *w = cl->waiting;
    cl->waiting = NULL;
    cl->waiting_tail = &cl->waiting;
    cl->nwaiting = 0;
    while (w) {
        struct cmd *c = w;
        w = c->next;
        send_to(c, cl->slot_node[c->slot], false);
    }
}

static void on_info(struct redis_conn *conn, const struct redis_reply *r, void *arg);

/* A map read asks the nodes one at a time, CLUSTER INFO first: a node that does not say
 * cluster_state:ok (an old primary restarted after its replica took over, which claims its
 * old slots until the others tell it otherwise) is passed over for the next; when none says
 * ok (the cluster is down), the last one asked gives the map. Asks the next connected node
 * not asked yet in this read: false when there is none. */
static bool ask_map(struct redis_cluster *cl)
{
    const char *argv[] = {"CLUSTER", "INFO"};
    const size_t lens[] = {7, 4};
    while (cl->asked < cl->nnodes) {
        struct node *n = cl->nodes[cl->asked++];
        if (n->up && redis_conn_cmd(n->conn, on_info, cl, 2, argv, lens) == ERR_OK) {
            cl->refreshing = true;
            return true;
        }
    }
    return false;
}

static void on_info(struct redis_conn *conn, const struct redis_reply *r, void *arg)
{
    const char *argv[] = {"CLUSTER", "SLOTS"};
    const size_t lens[] = {7, 5};
    struct redis_cluster *cl = arg;
    size_t n;
    const char *s = r && redis_reply_kind(r) != RK_ERROR ? redis_reply_str(r, &n) : NULL;
    cl->refreshing = false;
    if (cl->closing)
        return;
    if (!(s && redis_cluster_info_ok(s, n)) && ask_map(cl))
        return;
    if (r && redis_conn_cmd(conn, on_slots, cl, 2, argv, lens) == ERR_OK)
        cl->refreshing = true;
    else
        cl->want_refresh = true; /* (the next node to come up reads it) */
}

void redis_cluster_refresh(struct redis_cluster *cl)
{
    if (cl->closing)
        return;
    cl->want_refresh = true;
    if (cl->refreshing)
        return;
    cl->asked = 0;
    ask_map(cl);
}

static void on_node_state(struct redis_conn *c, bool up, const char *why, void *arg)
{
    struct node *n = arg;
    struct redis_cluster *cl = n->cl;
    (void)c;
    (void)why;
    n->up = up;
    if (cl->closing)
        return;
    if (!up)
        cl->want_refresh = true; /* (a primary gone: its replica may be promoted) */
    if (up && (cl->want_refresh || !cl->have_map))
        redis_cluster_refresh(cl);
    update_state(cl);
}

/* ---- life ------------------------------------------------------------------------------- */

struct redis_cluster *redis_cluster_new(uv_loop_t *loop, const struct redis_cluster_url *u,
                                        unsigned retry_min_ms, unsigned retry_max_ms,
                                        const char *const *init, redis_cluster_state_cb state,
                                        void *arg)
{
    if (!u->n)
        return NULL;
    struct redis_cluster *cl = xcalloc(1, sizeof(*cl));
    cl->loop = loop;
    cl->auth = u->seed[0];
    cl->retry_min_ms = retry_min_ms;
    cl->retry_max_ms = retry_max_ms;
    cl->init = init;
    cl->state = state;
    cl->arg = arg;
    cl->waiting_tail = &cl->waiting;
    memset(cl->slot_node, 0xff, sizeof(cl->slot_node));
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    for (unsigned i = 0; i < u->n; i++) {
        cl->auth = u->seed[i]; /* (each seed with its own user and password, all the same) */
        node_get(cl, u->seed[i].host, u->seed[i].port);
    }
    return cl;
}

bool redis_cluster_up(const struct redis_cluster *cl)
{
    return cl->was_up;
}

unsigned redis_cluster_stats(const struct redis_cluster *cl, struct redis_cluster_node_stats *out,
                             unsigned cap)
{
    for (unsigned i = 0; i < cl->nnodes && i < cap; i++) {
        const struct node *n = cl->nodes[i];
        snprintf(out[i].addr, sizeof(out[i].addr), "%s:%d", n->url.host, n->url.port);
        out[i].primary = n->primary;
        out[i].up = n->up;
        out[i].commands = n->commands;
        out[i].redirects = n->redirects;
        out[i].errors = n->errors;
        out[i].replies = n->replies;
        out[i].latency_ns = n->latency_ns;
    }
    return cl->nnodes;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct redis_cluster *cl = h->data;
    void (*closed)(void *) = cl->closed;
    void *arg = cl->closed_arg;
    for (unsigned i = 0; i < cl->nnodes; i++)
        mem_free(cl->nodes[i]);
    mem_free(cl);
    if (closed)
        closed(arg);
}

static void maybe_closed(struct redis_cluster *cl)
{
    if (cl->open || cl->alive)
        return;
    cl->open = 1; /* (the timer's close is under way) */
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}

static void on_conn_closed(void *arg)
{
    struct redis_cluster *cl = arg;
    cl->open--;
    maybe_closed(cl);
}

void redis_cluster_close(struct redis_cluster *cl, void (*closed)(void *), void *arg)
{
    cl->closing = true;
    cl->closed = closed;
    cl->closed_arg = arg;
    uv_timer_stop(&cl->timer);
    struct cmd *lists[2] = {cl->waiting, cl->retrying};
    cl->waiting = cl->retrying = NULL;
    cl->waiting_tail = &cl->waiting;
    cl->open = cl->nnodes + 1; /* (+1: held until every connection was asked to close) */
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            struct cmd *c = lists[k];
            lists[k] = c->next;
            deliver(c, NULL);
        }
    for (unsigned i = 0; i < cl->nnodes; i++)
        redis_conn_close(cl->nodes[i]->conn, on_conn_closed, cl);
    cl->open--;
    maybe_closed(cl);
}
