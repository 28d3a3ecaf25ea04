/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API: the route table and the handlers. Only api/ maps ERR_* codes to HTTP
 * statuses and bodies. Each loop thread has an api_ctx (r->app in handlers); what all
 * threads share is in api_shared, written before the loops start, read-only afterwards
 * except for the atomics.
 */
#ifndef API_API_H
#define API_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "auth/auth_svc.h"
#include "metrics/met.h"
#include "policy/pol_console.h"
#include "policy/pol_control.h"
#include "policy/pol_limits.h"
#include "token/tok_local.h"
#include "token/tok_svc.h"

struct auth_client_cache;
struct cfg;
struct http_request;
struct http_router;
struct loop;
struct pol_distinct;
struct pol_proxies;
struct pool;
struct pool_job;
struct store;

/* In-flight caps, by route class. */
enum { API_IF_LOGIN, API_IF_REGISTER, API_IF_REFRESH, API_IF_COUNT };

struct api_shared {
    const struct cfg *cfg;
    struct tok_svc tok;   /* what the token operations share */
    struct auth_svc auth; /* and the authentication operations */
    struct pool *pool;
    struct store *store;
    const struct pol_proxies *proxies; /* trusted proxies, NULL: none */
    struct pol_limits limits;        /* the rate limits (POL_RL_*) in force, by mode and stuffing */
    struct pol_distinct *failed_ips; /* addresses of failed logins this second */
    struct pol_state pol;            /* what the adaptive policy decided (pol_control.h) */
    struct pol_console_pub console;  /* the live console's last second (pol_console.h) */
    _Atomic uint64_t logins[AUTH_LOGINS_COUNT]; /* by outcome: succeeded, failed, refused */
    _Atomic unsigned inflight[3]; /* API_IF_*: requests of the class not yet answered */
    const struct http_router *rt;
    const char *route_names[MET_ROUTES_MAX]; /* route id -> pattern: metrics, policy sample */
    unsigned nroutes;                        /* ids 1..nroutes: the API's, then the admin's */
    _Atomic unsigned *open_conns;
    _Atomic int draining;
    int64_t started_at;     /* wall-clock seconds */
    char issuer[1024 + 64]; /* CFG_STR_MAX + room for a generated one */
    char default_aud[257];  /* aud of a token nothing else names one for: default_audience */
};

struct auth_authz_cache;
struct api_watchers;

/* One per loop thread; only that thread touches it. */
struct api_ctx {
    struct api_shared *sh;
    struct loop *lp;
    struct met_shard *met;
    struct tok_local tok; /* this thread's signing keys and verification cache */
    struct auth_client_cache *clients;
    struct auth_authz_cache *authz; /* clients with their URIs, for the browser's pages */
    struct api_watchers *watchers;  /* this thread's console streams (api_console.c); NULL */
};

/* Per-thread set-up and tear-down of an api_ctx (keys, cache). Loop thread. */
int api_ctx_start(struct api_ctx *ctx);
void api_ctx_stop(struct api_ctx *ctx);

/* Builds the route table (public API) and the admin route table, whose ids begin at
 * first_id (after the API's: both count into one metrics table). Main thread. */
struct http_router *api_router_new(void);
struct http_router *api_admin_router_new(unsigned first_id);

/* Queues `j` on the worker pool for request `r`. On a full queue, or an expected wait over
 * hash_deadline, answers 503 with an honest Retry-After and returns ERR_LIMIT: the job's
 * callbacks never run, and the request (with its arena, where jobs usually live) is gone,
 * so the caller must not touch `j` after a failure. Otherwise returns ERR_OK and the
 * handler must return HTTP_ASYNC and answer in j->on_done. Loop thread. */
int api_submit(struct http_request *r, struct pool_job *j);

/* handlers, by file */
int api_healthz(struct http_request *r);
int api_readyz(struct http_request *r);
int api_metrics(struct http_request *r);
int api_jwks(struct http_request *r);
int api_discovery(struct http_request *r);
int api_token(struct http_request *r);
int api_authorize(struct http_request *r);
int api_authorize_login(struct http_request *r);
int api_authorize_asset(struct http_request *r);
int api_authorize_logout(struct http_request *r);
int api_authorize_consent(struct http_request *r);
int api_userinfo(struct http_request *r);
int api_introspect(struct http_request *r);
int api_revoke(struct http_request *r);
int api_verify(struct http_request *r);
int api_admin_users(struct http_request *r);
int api_admin_user(struct http_request *r);  /* an action on /admin/users/{name} */
int api_admin_by_id(struct http_request *r); /* ... on a client or an event, by {id} */
int api_admin_clients(struct http_request *r);
int api_admin_user_consent(struct http_request *r);
int api_admin_keys(struct http_request *r);
int api_admin_policy(struct http_request *r);
int api_admin_events(struct http_request *r);
int api_admin_console(struct http_request *r); /* the page, its assets, openapi.json */
int api_admin_stream(struct http_request *r);  /* its Server-Sent Events */
#ifdef FG_TESTING
int api_test_work(struct http_request *r);
int api_test_echo(struct http_request *r);
#endif

#endif
