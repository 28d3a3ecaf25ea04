/* SPDX-License-Identifier: MIT */
/* The route table and helpers shared by the handlers. */
#include "api/api.h"

#include <stdio.h>

#include <http_parser.h>

#include "api/api_int.h"
#include "auth/auth_admin_op.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "event/ev.h"
#include "http/http.h"
#include "http/http_router.h"
#include "metrics/met.h"
#include "policy/pol_limits.h"

struct route_def {
    unsigned methods;
    const char *pattern;
    http_handler_cb fn;
    int arg; /* for the handler (api__admin_action) */
};

static const struct route_def routes[] = {
    {HTTP_M(HTTP_GET), "/healthz", api_healthz, 0},
    {HTTP_M(HTTP_GET), "/readyz", api_readyz, 0},
    {HTTP_M(HTTP_GET), "/metrics", api_metrics, 0},
    {HTTP_M(HTTP_GET), "/.well-known/jwks.json", api_jwks, 0},
    {HTTP_M(HTTP_GET), "/.well-known/openid-configuration", api_discovery, 0},
    {HTTP_M(HTTP_GET), "/.well-known/oauth-authorization-server", api_discovery, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/oauth2/token", api_token, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/oauth2/authorize", api_authorize, 0},
    {HTTP_M(HTTP_POST), "/oauth2/login", api_authorize_login, 0},
    {HTTP_M(HTTP_POST), "/oauth2/consent", api_authorize_consent, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/oauth2/userinfo", api_userinfo,
     0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/oauth2/logout", api_authorize_logout, 0},
    {HTTP_M(HTTP_GET), "/oauth2/assets/{name}", api_authorize_asset, 0},
    {HTTP_M(HTTP_POST), "/oauth2/introspect", api_introspect, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/oauth2/revoke", api_revoke, 0},
    {HTTP_M(HTTP_GET), "/v1/auth/verify", api_verify, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/v1/users", api_register, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/v1/auth/login", api_login, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/v1/auth/refresh", api_refresh, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_OPTIONS), "/v1/auth/logout", api_logout, 0},
#ifdef FG_TESTING
    /* Test-build only (make BUILD=asan|debug): drive the worker pool and body parsing. */
    {HTTP_M(HTTP_POST), "/test/work", api_test_work, 0},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_PUT), "/test/echo", api_test_echo, 0},
#endif
};

static const struct route_def admin_routes[] = {
    {HTTP_M(HTTP_GET), "/healthz", api_healthz, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/users", api_admin_users, 0},
    {HTTP_M(HTTP_PUT), "/admin/users/{name}/password", api_admin_user, AUTH_ADMIN_USER_PASSWD},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/disable", api_admin_user, AUTH_ADMIN_USER_DISABLE},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/enable", api_admin_user, AUTH_ADMIN_USER_ENABLE},
    {HTTP_M(HTTP_DELETE), "/admin/users/{name}", api_admin_user, AUTH_ADMIN_USER_DELETE},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/unlock", api_admin_user, AUTH_ADMIN_USER_UNLOCK},
    {HTTP_M(HTTP_DELETE), "/admin/users/{name}/consents/{id}", api_admin_user_consent, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/clients", api_admin_clients, 0},
    {HTTP_M(HTTP_POST), "/admin/clients/{id}/secret", api_admin_by_id, AUTH_ADMIN_CLIENT_SECRET},
    {HTTP_M(HTTP_DELETE), "/admin/clients/{id}", api_admin_by_id, AUTH_ADMIN_CLIENT_DELETE},
    {HTTP_M(HTTP_GET), "/admin/keys", api_admin_keys, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_PUT), "/admin/policy", api_admin_policy, 0},
    {HTTP_M(HTTP_POST), "/admin/keys/rotate", api_admin_keys, 0},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/events", api_admin_events, 0},
    {HTTP_M(HTTP_DELETE), "/admin/events/{id}", api_admin_by_id, AUTH_ADMIN_EVENT_DELETE},
    {HTTP_M(HTTP_GET), "/admin/console", api_admin_console, 0},
    {HTTP_M(HTTP_GET), "/admin/console/{name}", api_admin_console, 0},
    {HTTP_M(HTTP_GET), "/admin/stream", api_admin_stream, 0},
    {HTTP_M(HTTP_GET), "/admin/openapi.json", api_admin_console, 0},
};

static struct http_router *build(const struct route_def *defs, size_t n, unsigned first_id)
{
    struct http_router *rt = http_router_new();

    http_router_first_id(rt, first_id);
    for (size_t i = 0; i < n; i++) {
        int rc = http_router_add(rt, defs[i].methods, defs[i].pattern, defs[i].fn);
        if (rc < 0) {
            log_msg(LOG_ERROR, "route %s: %s", defs[i].pattern, err_str(rc));
            http_router_free(rt);
            return NULL;
        }
    }
    return rt;
}

struct http_router *api_router_new(void)
{
    return build(routes, sizeof(routes) / sizeof(routes[0]), 1);
}

static unsigned admin_first = 1; /* the admin table's first route id (set once, at start) */

int api__admin_action(const struct http_request *r)
{
    unsigned id = http_request_route_id(r); /* (admin_first.., in the order of the table) */
    size_t n = sizeof(admin_routes) / sizeof(admin_routes[0]);
    return id >= admin_first && id - admin_first < n ? admin_routes[id - admin_first].arg : -1;
}

struct http_router *api_admin_router_new(unsigned first_id)
{
    admin_first = first_id;
    return build(admin_routes, sizeof(admin_routes) / sizeof(admin_routes[0]), first_id);
}

/* ratelimit.exceeded, at most once per rule and key per interval on each loop thread. */
static void ratelimit_event(struct http_request *r, int rule, struct str key)
{
    uint32_t prev;
    char ip[64] = "";
    if (!ev_wanted(EV_RATELIMIT_EXCEEDED) ||
        !pol_limits_event_due((unsigned)rule, key, clock_wall_s(), &prev))
        return;
    if (!pol_limits_keyed_by_name((unsigned)rule))
        api__peer_ip(r, ip, sizeof(ip));
    pol_limits_announce((unsigned)rule, key, prev, ip[0] ? ip : NULL);
}

static const struct pol_gcra_rule *rule_now(const struct api_shared *sh, int rule)
{
    return pol_limits_rule(&sh->limits, (unsigned)rule);
}

static void answer_429(struct http_request *r, int rule, const struct pol_gcra_rule *ru,
                       uint64_t retry_ns, uint64_t reset_ns);

bool api__rate_limited(struct http_request *r, int rule)
{
    struct api_ctx *ctx = r->app;
    struct pol_gcra_result res;

    if (!api__rate_take_ip(r, rule, &res))
        return false;
    answer_429(r, rule, rule_now(ctx->sh, rule), res.retry_ns, res.reset_ns);
    return true;
}

/* A 429 counted under its rule (rules past the metrics' table share its last slot). */
static void count_429(struct api_ctx *ctx, int rule)
{
    met_add(&ctx->met->rate_limited[(unsigned)rule < MET_RL_RULES ? rule : MET_RL_RULES - 1], 1);
}

bool api__rate_take(struct http_request *r, int rule, struct str key, struct pol_gcra_result *res)
{
    struct api_ctx *ctx = r->app;

    res->allowed = true;
    if (!rule_now(ctx->sh, rule)->interval_ns)
        return false;
    pol_limits_take(&ctx->sh->limits, (unsigned)rule, key, clock_mono_ns(), res);
    if (res->allowed)
        return false;
    count_429(ctx, rule);
    ratelimit_event(r, rule, key);
    return true;
}

bool api__rate_take_ip(struct http_request *r, int rule, struct pol_gcra_result *res)
{
    struct api_ctx *ctx = r->app;
    char ip[64];

    res->allowed = true;
    if (!rule_now(ctx->sh, rule)->interval_ns) /* off: not even the address is worked out */
        return false;
    if (rule >= POL_RL_LOGIN_GLOBAL)
        return api__rate_take(r, rule, STR_LIT("*"), res);
    api__peer_key(r, ip, sizeof(ip));
    return api__rate_take(r, rule, str_c(ip), res);
}

bool api__rate_limited_key(struct http_request *r, int rule, struct str key)
{
    struct api_ctx *ctx = r->app;
    struct pol_gcra_result res;

    if (!api__rate_take(r, rule, key, &res))
        return false;
    answer_429(r, rule, rule_now(ctx->sh, rule), res.retry_ns, res.reset_ns);
    return true;
}

void api__rate_limited_answer(struct http_request *r, int rule, uint64_t retry_ms)
{
    struct api_ctx *ctx = r->app;
    char ip[64];
    api__peer_key(r, ip, sizeof(ip));
    count_429(ctx, rule);
    ratelimit_event(r, rule, str_c(ip));
    answer_429(r, rule, rule_now(ctx->sh, rule), retry_ms * 1000000u, retry_ms * 1000000u);
}

void api__login_rules(struct http_request *r, struct pol_gcra_rule *ip, struct pol_gcra_rule *user)
{
    struct api_ctx *ctx = r->app;
    *ip = *rule_now(ctx->sh, POL_RL_LOGIN);
    *user = *rule_now(ctx->sh, POL_RL_LOGIN_USER);
}

static void answer_429(struct http_request *r, int rule, const struct pol_gcra_rule *ru,
                       uint64_t retry_ns, uint64_t reset_ns)
{
    char v[128];

    uint64_t retry = (retry_ns + 999999999u) / 1000000000u;
    uint64_t reset = (reset_ns + 999999999u) / 1000000000u;
    uint64_t window = (ru->interval_ns * ru->burst + 999999999u) / 1000000000u;
    api__retry_after(r, retry);
    /* draft-ietf-httpapi-ratelimit-headers: quota q per window w; r remaining, t to reset */
    snprintf(v, sizeof(v), "\"%s\";q=%u;w=%llu", pol_limits_name((unsigned)rule), ru->burst,
             (unsigned long long)(window ? window : 1));
    http_add_header(r, "RateLimit-Policy", v);
    snprintf(v, sizeof(v), "\"%s\";r=0;t=%llu", pol_limits_name((unsigned)rule),
             (unsigned long long)(reset ? reset : 1));
    http_add_header(r, "RateLimit", v);
    http_respond_error(r, 429, "rate_limited", "too many requests; see Retry-After");
}

struct inflight_ref {
    _Atomic unsigned *counter;
};

static void inflight_leave(void *data)
{
    struct inflight_ref *ref = data;
    atomic_fetch_sub_explicit(ref->counter, 1, memory_order_relaxed);
}

bool api__inflight_full(struct http_request *r, int cls)
{
    int rc = api__inflight_take(r, cls);
    if (rc)
        api__fail(r, rc == ERR_LIMIT ? ERR_AGAIN : ERR_NOMEM,
                  rc == ERR_LIMIT ? "too many requests in flight" : NULL);
    return rc != ERR_OK;
}

int api__inflight_take(struct http_request *r, int cls)
{
    struct api_ctx *ctx = r->app;
    const struct cfg *c = ctx->sh->cfg;
    unsigned cap = cls == API_IF_LOGIN      ? c->inflight_login
                   : cls == API_IF_REGISTER ? c->inflight_register
                                            : c->inflight_refresh;
    _Atomic unsigned *counter = &ctx->sh->inflight[cls];

    if (!cap)
        return ERR_OK;
    struct inflight_ref *ref = arena_alloc(r->arena, sizeof(*ref));
    if (!ref || atomic_fetch_add_explicit(counter, 1, memory_order_relaxed) >= cap) {
        if (ref)
            atomic_fetch_sub_explicit(counter, 1, memory_order_relaxed);
        met_add(&ctx->met->pool_rejected, 1);
        return ref ? ERR_LIMIT : ERR_NOMEM;
    }
    ref->counter = counter;
    if (arena_on_reset(r->arena, inflight_leave, ref)) {
        inflight_leave(ref);
        return ERR_NOMEM;
    }
    return ERR_OK;
}

/* Answers 503 with Retry-After: the time the queue needs to drain at the measured service
 * rate, at least 1 s. */
void api__busy(struct http_request *r, uint64_t ms)
{
    struct api_ctx *ctx = r->app;
    met_add(&ctx->met->pool_rejected, 1);
    api__fail_retry(r, ERR_AGAIN, "server busy, retry later", ms / 1000 + 1);
}

bool api__admission_refused(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    uint64_t ms = auth_svc_over_deadline(&ctx->sh->auth);
    if (ms)
        api__busy(r, ms);
    return ms != 0;
}

int api_submit(struct http_request *r, struct pool_job *j)
{
    struct api_ctx *ctx = r->app;
    uint64_t retry_ms;
    /* Admission control: a job that would wait past the deadline is refused now. Its client
     * would likely have given up (and retried, adding load) before it ran. */
    if (auth_svc_submit(&ctx->sh->auth, ctx->lp, j, &retry_ms) == ERR_OK)
        return ERR_OK;
    api__busy(r, retry_ms);
    return ERR_LIMIT;
}
