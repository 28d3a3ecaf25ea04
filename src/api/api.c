/* SPDX-License-Identifier: MIT */
/* The route table and helpers shared by the handlers. */
#include "api/api.h"

#include <stdio.h>

#include <http_parser.h>
#include <sodium.h>

#include "api/api_int.h"
#include "auth/auth_user.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "event/ev.h"
#include "http/http.h"
#include "http/http_router.h"
#include "loop/pool.h"
#include "metrics/met.h"
#include "policy/pol_limits.h"
#include "policy/pol_lockout.h"

struct route_def {
    unsigned methods;
    const char *pattern;
    http_handler_cb fn;
};

static const struct route_def routes[] = {
    {HTTP_M(HTTP_GET), "/healthz", api_healthz},
    {HTTP_M(HTTP_GET), "/readyz", api_readyz},
    {HTTP_M(HTTP_GET), "/metrics", api_metrics},
    {HTTP_M(HTTP_GET), "/.well-known/jwks.json", api_jwks},
    {HTTP_M(HTTP_GET), "/.well-known/openid-configuration", api_discovery},
    {HTTP_M(HTTP_GET), "/.well-known/oauth-authorization-server", api_discovery},
    {HTTP_M(HTTP_POST), "/oauth2/token", api_token},
    {HTTP_M(HTTP_POST), "/oauth2/introspect", api_introspect},
    {HTTP_M(HTTP_POST), "/oauth2/revoke", api_revoke},
    {HTTP_M(HTTP_GET), "/v1/auth/verify", api_verify},
    {HTTP_M(HTTP_POST), "/v1/users", api_register},
    {HTTP_M(HTTP_POST), "/v1/auth/login", api_login},
    {HTTP_M(HTTP_POST), "/v1/auth/refresh", api_refresh},
    {HTTP_M(HTTP_POST), "/v1/auth/logout", api_logout},
#ifdef FG_TESTING
    /* Test-build only (make BUILD=asan|debug): drive the worker pool and body parsing. */
    {HTTP_M(HTTP_POST), "/test/work", api_test_work},
    {HTTP_M(HTTP_POST) | HTTP_M(HTTP_PUT), "/test/echo", api_test_echo},
#endif
};

static const struct route_def admin_routes[] = {
    {HTTP_M(HTTP_GET), "/healthz", api_healthz},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/users", api_admin_users},
    {HTTP_M(HTTP_PUT), "/admin/users/{name}/password", api_admin_user_password},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/disable", api_admin_user_disable},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/enable", api_admin_user_enable},
    {HTTP_M(HTTP_DELETE), "/admin/users/{name}", api_admin_user_delete},
    {HTTP_M(HTTP_POST), "/admin/users/{name}/unlock", api_admin_user_unlock},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/clients", api_admin_clients},
    {HTTP_M(HTTP_POST), "/admin/clients/{id}/secret", api_admin_client_secret},
    {HTTP_M(HTTP_DELETE), "/admin/clients/{id}", api_admin_client_delete},
    {HTTP_M(HTTP_GET), "/admin/keys", api_admin_keys},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_PUT), "/admin/policy", api_admin_policy},
    {HTTP_M(HTTP_POST), "/admin/keys/rotate", api_admin_keys},
    {HTTP_M(HTTP_GET) | HTTP_M(HTTP_POST), "/admin/events", api_admin_events},
    {HTTP_M(HTTP_DELETE), "/admin/events/{id}", api_admin_event_delete},
};

static struct http_router *build(const struct route_def *defs, size_t n)
{
    struct http_router *rt = http_router_new();

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
    return build(routes, sizeof(routes) / sizeof(routes[0]));
}

struct http_router *api_admin_router_new(void)
{
    return build(admin_routes, sizeof(admin_routes) / sizeof(admin_routes[0]));
}

static const char *const rule_names[API_RL_COUNT] = {
    "login",        "register", "token",         "refresh",      "verify",          "login-user",
    "token-client", "revoke",   "revoke-client", "login-global", "register-global", "token-global"};

/* ratelimit.exceeded, at most once per rule and key per interval on each loop thread
 * (pol_limits_event_due), with how many refusals the key had in the previous interval. */
static void ratelimit_event(struct http_request *r, int rule, struct str key)
{
    static const char *const names[API_RL_COUNT] = {
        "login_ip",      "register_ip",  "token_ip",        "refresh_ip",
        "verify_ip",     "login_user",   "token_client",    "revoke_ip",
        "revoke_client", "login_global", "register_global", "token_global"};
    uint32_t prev;
    if (!ev_wanted(EV_RATELIMIT_EXCEEDED) ||
        !pol_limits_event_due((unsigned)rule, key, clock_wall_s(), &prev))
        return;
    struct ev e;
    ev_begin(&e, EV_RATELIMIT_EXCEEDED);
    ev_str(&e, "rule", rule < API_RL_COUNT ? names[rule] : "?");
    ev_int(&e, "interval_s", POL_LIMITS_EV_INTERVAL);
    ev_int(&e, "previous_interval_refusals", prev);
    if (rule == API_RL_LOGIN_USER || rule == API_RL_TOKEN_CLIENT || rule == API_RL_REVOKE_CLIENT) {
        char k[130];
        snprintf(k, sizeof(k), "%.*s", (int)(key.len < 128 ? key.len : 128), key.p);
        ev_str(&e, rule != API_RL_LOGIN_USER ? "client_id" : "username", k);
    } else {
        api__event_ip(&e, r);
    }
    ev_publish(&e);
}

static const struct pol_gcra_rule *rule_now(const struct api_shared *sh, int rule)
{
    return pol_limits_rule(&sh->limits, (unsigned)rule);
}

bool api__rate_limited(struct http_request *r, int rule)
{
    struct api_ctx *ctx = r->app;
    char ip[64];

    if (!rule_now(ctx->sh, rule)->interval_ns)
        return false;
    if (rule >= API_RL_LOGIN_GLOBAL)
        return api__rate_limited_key(r, rule, STR_LIT("*"));
    api__peer_key(r, ip, sizeof(ip));
    return api__rate_limited_key(r, rule, str_c(ip));
}

static void answer_429(struct http_request *r, int rule, const struct pol_gcra_rule *ru,
                       uint64_t retry_ns, uint64_t reset_ns);

bool api__rate_limited_key(struct http_request *r, int rule, struct str key)
{
    struct api_ctx *ctx = r->app;
    const struct pol_gcra_rule *ru = rule_now(ctx->sh, rule);
    struct pol_gcra_result res;

    if (!ru->interval_ns)
        return false;
    pol_limits_take(&ctx->sh->limits, (unsigned)rule, key, clock_mono_ns(), &res);
    if (res.allowed)
        return false;
    ratelimit_event(r, rule, key);
    answer_429(r, rule, ru, res.retry_ns, res.reset_ns);
    return true;
}

void api__rate_limited_answer(struct http_request *r, int rule, uint64_t retry_ms)
{
    struct api_ctx *ctx = r->app;
    char ip[64];
    api__peer_key(r, ip, sizeof(ip));
    ratelimit_event(r, rule, str_c(ip));
    answer_429(r, rule, rule_now(ctx->sh, rule), retry_ms * 1000000u, retry_ms * 1000000u);
}

void api__login_rules(struct http_request *r, struct pol_gcra_rule *ip, struct pol_gcra_rule *user)
{
    struct api_ctx *ctx = r->app;
    *ip = *rule_now(ctx->sh, API_RL_LOGIN);
    *user = *rule_now(ctx->sh, API_RL_LOGIN_USER);
}

static void answer_429(struct http_request *r, int rule, const struct pol_gcra_rule *ru,
                       uint64_t retry_ns, uint64_t reset_ns)
{
    struct api_ctx *ctx = r->app;
    char v[128];

    met_add(&ctx->met->rate_limited, 1);
    uint64_t retry = (retry_ns + 999999999u) / 1000000000u;
    uint64_t reset = (reset_ns + 999999999u) / 1000000000u;
    uint64_t window = (ru->interval_ns * ru->burst + 999999999u) / 1000000000u;
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(retry ? retry : 1));
    http_add_header(r, "Retry-After", v);
    /* draft-ietf-httpapi-ratelimit-headers: quota q per window w; r remaining, t to reset */
    snprintf(v, sizeof(v), "\"%s\";q=%u;w=%llu", rule_names[rule], ru->burst,
             (unsigned long long)(window ? window : 1));
    http_add_header(r, "RateLimit-Policy", v);
    snprintf(v, sizeof(v), "\"%s\";r=0;t=%llu", rule_names[rule],
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
    struct api_ctx *ctx = r->app;
    const struct cfg *c = ctx->sh->cfg;
    unsigned cap = cls == API_IF_LOGIN      ? c->inflight_login
                   : cls == API_IF_REGISTER ? c->inflight_register
                                            : c->inflight_refresh;
    _Atomic unsigned *counter = &ctx->sh->inflight[cls];

    if (!cap)
        return false;
    struct inflight_ref *ref = arena_alloc(r->arena, sizeof(*ref));
    if (!ref || atomic_fetch_add_explicit(counter, 1, memory_order_relaxed) >= cap) {
        if (ref)
            atomic_fetch_sub_explicit(counter, 1, memory_order_relaxed);
        met_add(&ctx->met->pool_rejected, 1);
        api__fail(r, ERR_AGAIN, "too many requests in flight");
        return true;
    }
    ref->counter = counter;
    if (arena_on_reset(r->arena, inflight_leave, ref)) {
        inflight_leave(ref);
        api__fail(r, ERR_NOMEM, NULL);
        return true;
    }
    return false;
}

/* Answers 503 with Retry-After: the time the queue needs to drain at the measured service
 * rate, at least 1 s. */
void api__busy(struct http_request *r, uint64_t ms)
{
    struct api_ctx *ctx = r->app;
    met_add(&ctx->met->pool_rejected, 1);
    api__fail_retry(r, ERR_AGAIN, "server busy, retry later", ms / 1000 + 1);
}

/* The expected wait of a new job if it is past hash_deadline, else 0. */
static uint64_t over_deadline(const struct api_ctx *ctx)
{
    unsigned deadline = ctx->sh->cfg->hash_deadline_ms;
    uint64_t ms = deadline ? pool_expected_wait_ms(ctx->sh->pool) : 0;
    return ms > deadline ? ms : 0;
}

void api__event_ip(struct ev *e, const struct http_request *r)
{
    char ip[64];
    api__peer_ip(r, ip, sizeof(ip));
    ev_ip(e, ip);
}

bool api__admission_refused(struct http_request *r)
{
    uint64_t ms = over_deadline(r->app);
    if (ms)
        api__busy(r, ms);
    return ms != 0;
}

int api_submit(struct http_request *r, struct pool_job *j)
{
    struct api_ctx *ctx = r->app;
    uint64_t ms = over_deadline(ctx);
    /* Admission control: a job that would wait past the deadline is refused now. Its client
     * would likely have given up (and retried, adding load) before it ran. */
    int rc = ms ? ERR_LIMIT : pool_submit(ctx->sh->pool, ctx->lp, j);

    if (rc == ERR_OK)
        return ERR_OK;
    api__busy(r, rc == ERR_LIMIT && ms ? ms : 1000); /* full or stopping: 1 s */
    return ERR_LIMIT;
}
