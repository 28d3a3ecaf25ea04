/* SPDX-License-Identifier: MIT */
/* The Prometheus text format; see met_text.h. */
#include "metrics/met_text.h"

int met_text_counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                      (unsigned long long)v);
}

int met_text_gauge(struct buf *b, const char *name, const char *help, double v)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

int met_text_family(struct buf *b, const char *name, const char *type, const char *help)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *label(const char *const *names, unsigned n, unsigned id)
{
    return id && id <= n && names[id] ? names[id] : "unmatched";
}

static const char *const class_names[MET_CLASSES] = {"2xx", "3xx", "4xx", "5xx"};

/* Route rid's histogram for status class c ("2xx" takes 1xx too). */
static int histogram(struct buf *b, const struct met_shard *m, unsigned rid, unsigned c,
                     const char *route)
{
    const char *cl = class_names[c];
    uint64_t cum = 0;
    int rc = 0;
    for (unsigned i = 0; i < MET_LAT_BUCKETS; i++) {
        cum += m->lat[rid][c][i];
        if (i < MET_LAT_BUCKETS - 1)
            rc |= buf_printf(b,
                             "floodgate_http_request_duration_seconds_bucket{route=\"%s\","
                             "class=\"%s\",le=\"%g\"} %llu\n",
                             route, cl, met_lat_bounds[i], (unsigned long long)cum);
        else
            rc |= buf_printf(b,
                             "floodgate_http_request_duration_seconds_bucket{route=\"%s\","
                             "class=\"%s\",le=\"+Inf\"} %llu\n",
                             route, cl, (unsigned long long)cum);
    }
    rc |= buf_printf(b,
                     "floodgate_http_request_duration_seconds_sum{route=\"%s\",class=\"%s\"} "
                     "%.6f\n",
                     route, cl, (double)m->lat_sum_us[rid][c] / 1e6);
    rc |= buf_printf(b,
                     "floodgate_http_request_duration_seconds_count{route=\"%s\",class=\"%s\"} "
                     "%llu\n",
                     route, cl, (unsigned long long)cum);
    return rc;
}

int met_text_http(struct buf *b, const struct met_shard *m, const char *const *names, unsigned n)
{
    int rc = met_text_family(b, "floodgate_http_requests_total", "counter",
                             "HTTP requests answered, by route and status.");
    for (unsigned rid = 0; rid <= n && rid < MET_ROUTES_MAX; rid++) {
        for (unsigned s = 0; s < MET_S_COUNT; s++) {
            uint64_t v = m->req[rid][s];
            unsigned code = met_slot_status(s);
            if (!v)
                continue;
            if (code)
                rc |= buf_printf(b,
                                 "floodgate_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                                 label(names, n, rid), code, (unsigned long long)v);
            else
                rc |= buf_printf(
                    b, "floodgate_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                    label(names, n, rid), (unsigned long long)v);
        }
    }
    rc |= met_text_family(b, "floodgate_http_request_duration_seconds", "histogram",
                          "Time from the first byte of a request to its answer, by route and "
                          "status class (2xx, 3xx, 4xx, 5xx).");
    for (unsigned rid = 0; rid <= n && rid < MET_ROUTES_MAX; rid++)
        for (unsigned c = 0; c < MET_CLASSES; c++) {
            uint64_t any = 0;
            for (unsigned i = 0; i < MET_LAT_BUCKETS; i++)
                any += m->lat[rid][c][i];
            if (any)
                rc |= histogram(b, m, rid, c, label(names, n, rid));
        }
    return rc;
}

int met_text_conns(struct buf *b, const struct met_shard *m)
{
    int rc = met_text_counter(b, "floodgate_http_connections_accepted_total",
                              "Connections accepted.", m->conn_accepted);
    rc |= met_text_counter(b, "floodgate_http_connections_rejected_total",
                           "Connections refused over max_connections.", m->conn_rejected);
    rc |= met_text_counter(b, "floodgate_http_timeouts_total",
                           "Connections cut by a header, body, idle or write timeout.",
                           m->conn_timed_out);
    rc |= met_text_counter(b, "floodgate_http_bad_requests_total",
                           "Malformed or over-limit requests answered 4xx/5xx and closed.",
                           m->bad_requests);
    rc |= met_text_counter(b, "floodgate_http_received_bytes_total", "Bytes read from clients.",
                           m->bytes_in);
    rc |= met_text_counter(b, "floodgate_http_sent_bytes_total", "Bytes written to clients.",
                           m->bytes_out);
    rc |= met_text_counter(b, "floodgate_worker_rejected_requests_total",
                           "Requests answered 503 by admission control: the worker queue was "
                           "full or its expected wait exceeded hash_deadline.",
                           m->pool_rejected);
    return rc;
}

int met_text_rate_limited(struct buf *b, const struct met_shard *m, const char *const *rules,
                          unsigned n)
{
    int rc = met_text_family(b, "floodgate_rate_limited_total", "counter",
                             "Requests answered 429, by the rate-limit rule that refused them.");
    for (unsigned i = 0; i < n && i < MET_RL_RULES; i++)
        rc |= buf_printf(b, "floodgate_rate_limited_total{rule=\"%s\"} %llu\n", rules[i],
                         (unsigned long long)m->rate_limited[i]);
    return rc;
}
