/* SPDX-License-Identifier: MIT */
/*
 * Announced traffic events (`floodgate event schedule` and POST /admin/events): parsed and
 * stored one way for both. The stored value is the JSON the adaptive policy reads:
 * {"name", "at" (epoch s), "duration" (s), "expect" (times the usual traffic)}.
 */
#ifndef API_POL_ANNOUNCE_H
#define API_POL_ANNOUNCE_H

#include <stdint.h>

struct store;

#define POL_ANNOUNCE_ID_MAX       12
#define POL_ANNOUNCE_JSON_MAX     256
#define POL_ANNOUNCE_NAME_MAX     100
#define POL_ANNOUNCE_DURATION_MAX (30 * 86400)

/* Seconds from "90", "90s", "30m", "2h", "1d". -1 if malformed. */
int64_t pol_announce_secs(const char *s);
/* Epoch seconds from "1795900000", "2026-11-28T18:00:00Z" or "+30m". -1 if malformed. */
int64_t pol_announce_time(const char *s, int64_t now);

/* Validates (at > 0, expect 1..1000, duration 1 s..30 d, a name of printable ASCII without
 * quotes or backslashes, at most 100 bytes) and stores a new event under a random id.
 * ERR_INVAL if a value is out of bounds; id and json are filled on success. Any thread
 * that may write the store. */
int pol_announce_schedule(struct store *st, const char *name, int64_t at, int64_t duration,
                          double expect, char id[POL_ANNOUNCE_ID_MAX + 1],
                          char json[POL_ANNOUNCE_JSON_MAX]);

/* Cancels event `id`: ERR_OK, ERR_NOTFOUND. */
int pol_announce_cancel(struct store *st, const char *id);
/* Every announced event as one JSON array of {"id", "event"}. ERR_LIMIT past b's cap. */
struct buf;
int pol_announce_list(struct store *st, struct buf *b);

/* An event's fields from the admin API's JSON: "at" (epoch seconds, "YYYY-MM-DDTHH:MM:SSZ"
 * or "+30m"), "duration" (seconds or "2h"; default 1 h), "expect" (10 or "10x"), "name"
 * (default "event"). ERR_OK or ERR_INVAL; bounds are pol_announce_schedule's. */
typedef struct json_t json_t;
int pol_announce_from_json(json_t *o, int64_t now, char name[POL_ANNOUNCE_NAME_MAX + 1],
                           int64_t *at, int64_t *duration, double *expect);

#endif
