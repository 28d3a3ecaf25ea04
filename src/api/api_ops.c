/* SPDX-License-Identifier: MIT */
/*
 * Operations endpoints: liveness, readiness and Prometheus metrics. /metrics sums the
 * per-thread shards at scrape time; it is the only place that reads them.
 */
#include <stdio.h>
#include <unistd.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/version.h"
#include "event/ev.h"
#include "http/http.h"
#include "http/http_router.h"
#include "loop/pool.h"
#include "metrics/met.h"
#include "metrics/met_text.h"
#include "policy/pol_lockout.h"

int api_healthz(struct http_request *r)
{
    http_respond_json(r, 200, "{\"status\":\"ok\"}");
    return HTTP_DONE;
}

int api_readyz(struct http_request *r)
{
    struct api_ctx *ctx = r->app;

    if (atomic_load(&ctx->sh->draining)) {
        http_respond_json(r, 503, "{\"status\":\"draining\"}");
        return HTTP_DONE;
    }
    if (!tok_svc_ready(&ctx->sh->tok, NULL)) {
        http_respond_json(r, 503, "{\"status\":\"unavailable\",\"reason\":\"store\"}");
        return HTTP_DONE;
    }
    if (!ctx->sh->cfg->store[0] && access(ctx->sh->cfg->data_dir, W_OK) != 0) {
        http_respond_json(r, 503, "{\"status\":\"unavailable\",\"reason\":\"data_dir\"}");
        return HTTP_DONE;
    }
    http_respond_json(r, 200, "{\"status\":\"ready\"}");
    return HTTP_DONE;
}

static void pool_metrics(struct buf *b, struct pool *p)
{
    struct pool_stats st;
    uint64_t cum = 0;

    pool_stats(p, &st);
    met_text_gauge(b, "floodgate_worker_queue_depth", "Jobs waiting for a worker thread.",
                   st.depth);
    met_text_gauge(b, "floodgate_worker_queue_capacity", "Jobs the worker queue holds before 503.",
                   st.capacity);
    met_text_gauge(b, "floodgate_worker_busy", "Jobs running on worker threads now.", st.running);
    met_text_gauge(b, "floodgate_worker_threads", "Worker threads.", st.threads);
    buf_puts(b, "# HELP floodgate_worker_jobs_total Worker jobs by outcome.\n"
                "# TYPE floodgate_worker_jobs_total counter\n");
    buf_printf(b, "floodgate_worker_jobs_total{result=\"completed\"} %llu\n",
               (unsigned long long)st.completed);
    buf_printf(b, "floodgate_worker_jobs_total{result=\"rejected\"} %llu\n",
               (unsigned long long)st.rejected);
    met_text_counter(b, "floodgate_worker_busy_seconds_total", "Time spent running jobs.",
                     st.work_ns_sum / 1000000000u);
    buf_puts(b, "# HELP floodgate_worker_queue_wait_seconds Time jobs waited in the queue.\n"
                "# TYPE floodgate_worker_queue_wait_seconds histogram\n");
    for (unsigned i = 0; i < 8; i++) {
        cum += st.wait_hist[i];
        if (i < 7)
            buf_printf(b, "floodgate_worker_queue_wait_seconds_bucket{le=\"%g\"} %llu\n",
                       pool_wait_bounds[i], (unsigned long long)cum);
        else
            buf_printf(b, "floodgate_worker_queue_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
                       (unsigned long long)cum);
    }
    buf_printf(b, "floodgate_worker_queue_wait_seconds_sum %.6f\n", (double)st.wait_ns_sum / 1e9);
    buf_printf(b, "floodgate_worker_queue_wait_seconds_count %llu\n", (unsigned long long)cum);
}

int api_metrics(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    static __thread struct met_shard sum; /* 20 KiB: not on the loop's stack */
    struct buf b;

    met_sum(&sum);
    buf_init(&b, 4u << 20);
    met_text_http(&b, &sum, ctx->sh->route_names, http_router_count(ctx->sh->rt));
    met_text_gauge(&b, "floodgate_http_connections_open", "Open client connections.",
                   atomic_load(ctx->sh->open_conns));
    met_text_conns(&b, &sum);
    pool_metrics(&b, ctx->sh->pool);
    buf_printf(&b,
               "# HELP floodgate_logins_total Password logins by outcome (refused: a locked key, "
               "answered without hashing).\n# TYPE floodgate_logins_total counter\n"
               "floodgate_logins_total{result=\"succeeded\"} %llu\n"
               "floodgate_logins_total{result=\"failed\"} %llu\n"
               "floodgate_logins_total{result=\"refused\"} %llu\n",
               (unsigned long long)atomic_load(&ctx->sh->logins[0]),
               (unsigned long long)atomic_load(&ctx->sh->logins[1]),
               (unsigned long long)atomic_load(&ctx->sh->logins[2]));
    met_text_gauge(&b, "floodgate_policy_mode",
                   "Adaptive policy mode: 0 normal, 1 elevated, 2 surge, 3 shed.",
                   atomic_load(&ctx->sh->pol.mode));
    met_text_counter(&b, "floodgate_policy_mode_changes_total",
                     "Mode changes (controller or admin).",
                     atomic_load(&ctx->sh->pol.mode_changes));
    met_text_gauge(&b, "floodgate_scale_recommendation_instances",
                   "Instances in all the adaptive policy recommends for the current login demand.",
                   atomic_load(&ctx->sh->pol.recommended));
    ev_metrics_text(&b);
    met_text_gauge(&b, "floodgate_lockouts_active", "Usernames, IPs and pairs locked now.",
                   pol_lockout_locked(ctx->sh->lockout, clock_wall_s()));
    tok_svc_metrics_text(&ctx->sh->tok, &b);
    met_text_gauge(&b, "floodgate_process_start_time_seconds",
                   "Start time, seconds since the epoch.", (double)ctx->sh->started_at);
    int rc = buf_printf(&b,
                        "# HELP floodgate_build_info Build version.\n"
                        "# TYPE floodgate_build_info gauge\n"
                        "floodgate_build_info{version=\"%s\"} 1\n",
                        FG_VERSION);
    if (rc)
        http_respond_error(r, 500, "server_error", "metrics too large");
    else
        http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    buf_fini(&b);
    return HTTP_DONE;
}
