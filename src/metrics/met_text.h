/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text format (0.0.4), for /metrics: one-sample families, and the HTTP
 * families of a summed shard (requests by route and status, the latency histogram by
 * route). Each module writes its own families with these. Errors are sticky in the buffer's
 * cap: the caller checks its last write.
 */
#ifndef METRICS_MET_TEXT_H
#define METRICS_MET_TEXT_H

#include <stdint.h>

#include "core/buf.h"
#include "metrics/met.h"

int met_text_counter(struct buf *b, const char *name, const char *help, uint64_t v);
int met_text_gauge(struct buf *b, const char *name, const char *help, double v);
/* The # HELP and # TYPE lines of a family whose samples the caller writes. */
int met_text_family(struct buf *b, const char *name, const char *type, const char *help);
/* floodgate_http_requests_total and floodgate_http_request_duration_seconds from m;
 * names[id] is route id's pattern (1..n), NULL or id 0: "unmatched". */
int met_text_http(struct buf *b, const struct met_shard *m, const char *const *names, unsigned n);
/* The connection and request counters of m (accepted, rejected, timeouts, bad requests,
 * bytes, shed). */
int met_text_conns(struct buf *b, const struct met_shard *m);
/* floodgate_rate_limited_total{rule}: rules[i] names rule i (0..n-1), every one written. */
int met_text_rate_limited(struct buf *b, const struct met_shard *m, const char *const *rules,
                          unsigned n);
/* The standard process_* families (CPU seconds, resident and virtual memory, open and most
 * file descriptors, start time) from /proc/self; started: the start, seconds since the
 * epoch. */
int met_text_process(struct buf *b, double started);
/* Opens what met_text_process reads at each scrape. Main thread, before the loops start. */
void met_proc_init(void);

#endif
