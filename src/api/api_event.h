/* SPDX-License-Identifier: MIT */
/*
 * Announced traffic events (`floodgate event schedule` and POST /admin/events): parsed and
 * stored one way for both. The stored value is the JSON the adaptive policy reads:
 * {"name", "at" (epoch s), "duration" (s), "expect" (times the usual traffic)}.
 */
#ifndef API_API_EVENT_H
#define API_API_EVENT_H

#include <stdint.h>

struct store;

#define API_EVENT_ID_MAX       12
#define API_EVENT_JSON_MAX     256
#define API_EVENT_NAME_MAX     100
#define API_EVENT_DURATION_MAX (30 * 86400)

/* Seconds from "90", "90s", "30m", "2h", "1d". -1 if malformed. */
int64_t api_event_secs(const char *s);
/* Epoch seconds from "1795900000", "2026-11-28T18:00:00Z" or "+30m". -1 if malformed. */
int64_t api_event_time(const char *s, int64_t now);

/* Validates (at > 0, expect 1..1000, duration 1 s..30 d, a name of printable ASCII without
 * quotes or backslashes, at most 100 bytes) and stores a new event under a random id.
 * ERR_INVAL if a value is out of bounds; id and json are filled on success. Any thread
 * that may write the store. */
int api_event_schedule(struct store *st, const char *name, int64_t at, int64_t duration,
                       double expect, char id[API_EVENT_ID_MAX + 1], char json[API_EVENT_JSON_MAX]);

#endif
