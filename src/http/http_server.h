/* SPDX-License-Identifier: MIT */
/*
 * The libuv side of HTTP: listening sockets, accept, read, write and timeouts for one loop
 * thread. Each loop thread runs one http_server on its own SO_REUSEPORT socket, and the
 * kernel spreads new connections over them; threads share nothing but the read-only router
 * and an atomic count of open connections (for max_connections).
 *
 * Timeouts are deadlines checked by one sweep timer per loop every 250 ms, not a timer per
 * connection: a request only stores a number. Loop thread only, except http_listen_open.
 */
#ifndef HTTP_HTTP_SERVER_H
#define HTTP_HTTP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "http/http_session.h"

struct http_router;
struct loop;
struct met_shard;
struct conn;

struct http_server_opts {
    struct http_limits limits;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t write_timeout_ms;
    uint64_t drain_timeout_ms;
    unsigned max_connections;
    _Atomic unsigned *open_conns; /* shared by all threads; borrowed */
};

struct http_server;
typedef void (*http_server_stopped_cb)(struct http_server *srv);

/* Whether host:port is free: ERR_OK, or ERR_CONFLICT while another socket listens there
 * (another process, which SO_REUSEPORT would silently share the traffic with), ERR_INVAL
 * for an unresolvable host, ERR_IO otherwise (errno). Port 0 is always free. Any thread. */
int http_listen_free(const char *host, unsigned port);

/* Opens a non-blocking listening socket with SO_REUSEPORT on host:port. *port_out gets the
 * bound port (useful with port 0: bind the first socket on 0, the others on what it got).
 * ERR_INVAL for an unresolvable host, ERR_IO otherwise (errno describes it). Any thread. */
int http_listen_open(const char *host, unsigned port, int *fd_out, unsigned *port_out);

/* Starts serving on `fd` (taken over) in `lp`. All pointers are borrowed until stopped.
 * ERR_IO on failure (fd closed). */
int http_server_start(struct loop *lp, int fd, const struct http_server_opts *opt,
                      const struct http_router *rt, struct met_shard *met, void *app,
                      http_server_stopped_cb on_stopped, struct http_server **out);

/* Graceful stop: close the listener, let each connection finish its current request, then
 * close it; after drain_timeout the rest are cut. on_stopped runs once everything is closed;
 * then the server may be freed. */
void http_server_drain(struct http_server *srv);
void http_server_free(struct http_server *srv);

/* Connections open on this server now. */
unsigned http_server_conns(const struct http_server *srv);
bool http_server_draining(const struct http_server *srv);

#endif
