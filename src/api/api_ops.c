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
#include "policy/pol_lockout.h"
#include "store/store.h"

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
    if (!store_ready(ctx->sh->store, NULL)) {
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

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
               (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static const char *route_label(const struct http_router *rt, unsigned id)
{
    const char *p = http_router_pattern(rt, id);
    return p ? p : "unmatched";
}

static void http_metrics(struct buf *b, const struct http_router *rt, const struct met_shard *m)
{
    unsigned nroutes = http_router_count(rt);

    buf_puts(b, "# HELP floodgate_http_requests_total HTTP requests answered, by route and "
                "status.\n# TYPE floodgate_http_requests_total counter\n");
    for (unsigned rid = 0; rid <= nroutes; rid++) {
        for (unsigned s = 0; s < MET_S_COUNT; s++) {
            uint64_t v = m->req[rid][s];
            if (!v)
                continue;
            unsigned code = met_slot_status(s);
            if (code)
                buf_printf(b, "floodgate_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                           route_label(rt, rid), code, (unsigned long long)v);
            else
                buf_printf(b, "floodgate_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                           route_label(rt, rid), (unsigned long long)v);
        }
    }
    buf_puts(b, "# HELP floodgate_http_request_duration_seconds Time from the first byte of a "
                "request to its answer.\n# TYPE floodgate_http_request_duration_seconds "
                "histogram\n");
    for (unsigned rid = 0; rid <= nroutes; rid++) {
        uint64_t cum = 0;
        for (unsigned i = 0; i < MET_LAT_BUCKETS; i++)
            cum += m->lat[rid][i];
        if (!cum)
            continue;
        const char *label = route_label(rt, rid);
        cum = 0;
        for (unsigned i = 0; i < MET_LAT_BUCKETS; i++) {
            cum += m->lat[rid][i];
            if (i < MET_LAT_BUCKETS - 1)
                buf_printf(b,
                           "floodgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"}"
                           " %llu\n",
                           label, met_lat_bounds[i], (unsigned long long)cum);
            else
                buf_printf(
                    b,
                    "floodgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
                    " %llu\n",
                    label, (unsigned long long)cum);
        }
        buf_printf(b, "floodgate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label,
                   (double)m->lat_sum_us[rid] / 1e6);
        buf_printf(b, "floodgate_http_request_duration_seconds_count{route=\"%s\"} %llu\n", label,
                   (unsigned long long)cum);
    }
}

static void pool_metrics(struct buf *b, struct pool *p)
{
    struct pool_stats st;
    uint64_t cum = 0;

    pool_stats(p, &st);
    gauge(b, "floodgate_worker_queue_depth", "Jobs waiting for a worker thread.", st.depth);
    gauge(b, "floodgate_worker_queue_capacity", "Jobs the worker queue holds before 503.",
          st.capacity);
    gauge(b, "floodgate_worker_busy", "Jobs running on worker threads now.", st.running);
    gauge(b, "floodgate_worker_threads", "Worker threads.", st.threads);
    buf_puts(b, "# HELP floodgate_worker_jobs_total Worker jobs by outcome.\n"
                "# TYPE floodgate_worker_jobs_total counter\n");
    buf_printf(b, "floodgate_worker_jobs_total{result=\"completed\"} %llu\n",
               (unsigned long long)st.completed);
    buf_printf(b, "floodgate_worker_jobs_total{result=\"rejected\"} %llu\n",
               (unsigned long long)st.rejected);
    counter(b, "floodgate_worker_busy_seconds_total", "Time spent running jobs.",
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
    http_metrics(&b, ctx->sh->rt, &sum);
    gauge(&b, "floodgate_http_connections_open", "Open client connections.",
          atomic_load(ctx->sh->open_conns));
    counter(&b, "floodgate_http_connections_accepted_total", "Connections accepted.",
            sum.conn_accepted);
    counter(&b, "floodgate_http_connections_rejected_total",
            "Connections refused over max_connections.", sum.conn_rejected);
    counter(&b, "floodgate_http_timeouts_total",
            "Connections cut by a header, body, idle or "
            "write timeout.",
            sum.conn_timed_out);
    counter(&b, "floodgate_http_bad_requests_total",
            "Malformed or over-limit requests answered 4xx/5xx and closed.", sum.bad_requests);
    counter(&b, "floodgate_http_received_bytes_total", "Bytes read from clients.", sum.bytes_in);
    counter(&b, "floodgate_http_sent_bytes_total", "Bytes written to clients.", sum.bytes_out);
    counter(&b, "floodgate_rate_limited_total", "Requests answered 429 by a rate limit.",
            sum.rate_limited);
    counter(&b, "floodgate_worker_rejected_requests_total",
            "Requests answered 503 by admission control: the worker queue was full or its expected "
            "wait exceeded hash_deadline.",
            sum.pool_rejected);
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
    gauge(&b, "floodgate_policy_mode",
          "Adaptive policy mode: 0 normal, 1 elevated, 2 surge, 3 shed.",
          atomic_load(&ctx->sh->mode));
    counter(&b, "floodgate_policy_mode_changes_total", "Mode changes (controller or admin).",
            atomic_load(&ctx->sh->mode_changes));
    gauge(&b, "floodgate_scale_recommendation_instances",
          "Instances in all the adaptive policy recommends for the current login demand.",
          atomic_load(&ctx->sh->recommended));
    struct ev_stats es;
    ev_get_stats(&es);
    buf_puts(&b, "# HELP floodgate_events_total Auth events queued for the sinks, and dropped "
                 "because a queue was full.\n# TYPE floodgate_events_total counter\n");
    for (int t = 0; t < EV_NTYPES; t++)
        buf_printf(&b,
                   "floodgate_events_total{type=\"%s\",result=\"queued\"} %llu\n"
                   "floodgate_events_total{type=\"%s\",result=\"dropped\"} %llu\n",
                   ev_type_name((enum ev_type)t), (unsigned long long)es.published[t],
                   ev_type_name((enum ev_type)t), (unsigned long long)es.dropped[t]);
    counter(&b, "floodgate_events_overflowed_total",
            "Security events that found their queue full and took the overflow list.",
            es.overflowed);
    counter(&b, "floodgate_events_sampled_out_total",
            "token.issued events left out by events_token_issued_sample.", es.sampled_out);
    buf_printf(&b,
               "# HELP floodgate_webhook_events_total Events by webhook outcome (retried: per "
               "failed attempt).\n# TYPE floodgate_webhook_events_total counter\n"
               "floodgate_webhook_events_total{result=\"delivered\"} %llu\n"
               "floodgate_webhook_events_total{result=\"retried\"} %llu\n"
               "floodgate_webhook_events_total{result=\"dead_lettered\"} %llu\n"
               "# HELP floodgate_event_stream_total Events added to the Redis stream, or not.\n"
               "# TYPE floodgate_event_stream_total counter\n"
               "floodgate_event_stream_total{result=\"added\"} %llu\n"
               "floodgate_event_stream_total{result=\"dropped\"} %llu\n",
               (unsigned long long)es.hook_delivered, (unsigned long long)es.hook_retried,
               (unsigned long long)es.hook_dead, (unsigned long long)es.stream_added,
               (unsigned long long)es.stream_dropped);
    gauge(&b, "floodgate_lockouts_active", "Usernames, IPs and pairs locked now.",
          pol_lockout_locked(ctx->sh->lockout, clock_wall_s()));
    uint64_t stale_ms;
    struct store_stats ss;
    store_get_stats(ctx->sh->store, &ss);
    counter(&b, "floodgate_store_operations_total",
            "Store operations done (LMDB: writes; Redis: commands sent).", ss.ops);
    counter(&b, "floodgate_store_commits_total",
            "LMDB write transactions committed, each one fsync (Redis: as operations).",
            ss.commits);
    gauge(&b, "floodgate_store_queue_depth",
          "LMDB: writes waiting for the writer; Redis: commands in flight.", ss.queue_depth);
    counter(&b, "floodgate_store_timeouts_total",
            "Redis commands unanswered within redis_timeout (their connection was remade).",
            ss.timeouts);
    int up = store_ready(ctx->sh->store, &stale_ms);
    gauge(&b, "floodgate_store_up",
          "1 if the store answers (a shared Redis: its last health read, every 200 ms).", up);
    gauge(&b, "floodgate_instances",
          "Serving instances on the store, this one included (Redis: counted every second).",
          store_members(ctx->sh->store));
    gauge(&b, "floodgate_store_stale_seconds",
          "Seconds since the store last answered; 0 while it does.", (double)stale_ms / 1000.0);
    gauge(&b, "floodgate_process_start_time_seconds", "Start time, seconds since the epoch.",
          (double)ctx->sh->started_at);
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
