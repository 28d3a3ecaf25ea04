/* SPDX-License-Identifier: MIT */
/*
 * Operations endpoints: liveness, readiness and Prometheus metrics. /metrics sums the
 * per-thread shards at scrape time; it is the only place that reads them.
 */

#include <unistd.h>

#include "api/api.h"
#include "api/api_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/version.h"
#include "event/ev.h"
#include "http/http.h"
#include "http/http_router.h"
#include "loop/pool.h"
#include "metrics/met_text.h"
#include "policy/pol_limits.h"
#include "token/tok_keys.h"
#include "token/tok_local.h"
#include "token/tok_rotate.h"

int api_healthz(struct http_request *r)
{
    return api__json(r, 200, "{\"status\":\"ok\"}");
}

int api_readyz(struct http_request *r)
{
    struct api_ctx *ctx = r->app;

    if (atomic_load(&ctx->sh->draining))
        return api__json(r, 503, "{\"status\":\"draining\"}");
    if (!tok_svc_ready(&ctx->sh->tok, NULL))
        return api__json(r, 503, "{\"status\":\"unavailable\",\"reason\":\"store\"}");
    if (!ctx->sh->cfg->store[0] && access(ctx->sh->cfg->data_dir, W_OK) != 0)
        return api__json(r, 503, "{\"status\":\"unavailable\",\"reason\":\"data_dir\"}");
    return api__json(r, 200, "{\"status\":\"ready\"}");
}

int api_metrics(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    static __thread struct met_shard sum; /* 20 KiB: not on the loop's stack */
    struct buf b;

    met_sum(&sum);
    buf_init(&b, 4u << 20);
    met_text_http(&b, &sum, ctx->sh->route_names, ctx->sh->nroutes);
    met_text_gauge(&b, "floodgate_http_connections_open", "Open client connections.",
                   atomic_load(ctx->sh->open_conns));
    met_text_conns(&b, &sum);
    pool_metrics_text(ctx->sh->pool, &b);
    auth_svc_metrics_text(&ctx->sh->auth, &b, clock_wall_s());
    pol_state_metrics_text(&ctx->sh->pol, &b);
    ev_metrics_text(&b);
    tok_svc_metrics_text(&ctx->sh->tok, &b);
    const char *rules[POL_RL_COUNT];
    for (unsigned i = 0; i < POL_RL_COUNT; i++)
        rules[i] = pol_limits_key_name(i);
    met_text_rate_limited(&b, &sum, rules, POL_RL_COUNT);
    met_text_process(&b, (double)ctx->sh->started_at);
    tok_rotate_metrics_text(&b);
    tok_ring_metrics_text(tok_local_ring(&ctx->tok, clock_wall_s()), clock_wall_s(), &b);
    met_text_gauge(&b, "floodgate_hash_deadline_seconds",
                   "hash_deadline: a login whose hash would wait longer is answered 503.",
                   ctx->sh->cfg->hash_deadline_ms / 1e3);
    met_text_gauge(&b, "floodgate_key_rotation_seconds",
                   "key_rotation: a signing key this old is replaced (0: only by hand).",
                   (double)ctx->sh->cfg->key_rotation_s);
    int rc = buf_printf(&b,
                        "# HELP floodgate_build_info Build version.\n"
                        "# TYPE floodgate_build_info gauge\n"
                        "floodgate_build_info{version=\"%s\"} 1\n",
                        FG_VERSION);
    return api__answer_buf(r, rc, &b, "text/plain; version=0.0.4; charset=utf-8", NULL);
}
