/* SPDX-License-Identifier: MIT */
/*
 * Method-and-path router. Patterns are literal segments and {name} segments ("/admin/users/
 * {name}"); a {name} matches one non-empty segment. Routes are added on the main thread
 * before loops start; afterwards the router is read-only and shared by every loop thread.
 * A path that matches a pattern under another method yields 405 with the Allow list.
 * GET routes answer HEAD as well.
 */
#ifndef HTTP_HTTP_ROUTER_H
#define HTTP_HTTP_ROUTER_H

#include <stddef.h>

#include "core/str.h"
#include "http/http.h"

struct http_router;

#define HTTP_M(method) (1u << (method)) /* method: enum http_method */

struct http_route {
    unsigned id; /* 1..; also the metric label index */
    unsigned methods;
    const char *pattern;
    http_handler_cb handler;
    size_t fixed; /* bytes of the pattern before its first {param} (all of them if none):
                     compared at once */
};

struct http_router *http_router_new(void);
void http_router_free(struct http_router *rt);

/* Adds a route; returns its id (>0), ERR_LIMIT past MET_ROUTES_MAX-1 routes or ERR_INVAL for
 * a bad pattern. `pattern` must outlive the router (a literal). */
int http_router_add(struct http_router *rt, unsigned methods, const char *pattern,
                    http_handler_cb handler);

/* Finds the route for method+path and fills params. Returns NULL if none; then *allow is
 * the method mask of routes whose pattern matched the path (0 means 404). */
const struct http_route *http_router_match(const struct http_router *rt, unsigned method,
                                           struct str path, struct str *params, unsigned *nparams,
                                           unsigned *allow);

/* Number of routes and the pattern of route `id` (NULL if none), for metrics. */
unsigned http_router_count(const struct http_router *rt);
/* Ids of routes added from now on begin at first (1 by default): two routers served into
 * one metrics table number their routes apart. */
void http_router_first_id(struct http_router *rt, unsigned first);
const char *http_router_pattern(const struct http_router *rt, unsigned id);

/* Writes "GET, HEAD, POST" for a method mask into dst (cap bytes). */
void http_methods_str(unsigned mask, char *dst, size_t cap);

#endif
