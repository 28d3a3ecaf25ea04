/* SPDX-License-Identifier: MIT */
/*
 * A Redis reply, read through these accessors so that hiredis is spoken only in src/redis/
 * (a struct redis_reply is hiredis's reply). One from a callback is valid during the
 * callback; one returned by a blocking call is freed with redis_reply_free.
 */
#ifndef REDIS_REDIS_REPLY_H
#define REDIS_REDIS_REPLY_H

#include <stddef.h>

struct redis_reply;

enum redis_kind { RK_STRING, RK_STATUS, RK_ERROR, RK_INTEGER, RK_NIL, RK_ARRAY, RK_OTHER };
enum redis_kind redis_reply_kind(const struct redis_reply *r);
/* The text of a string, status or error reply (len may be NULL); "" for the others. */
const char *redis_reply_str(const struct redis_reply *r, size_t *len);
long long redis_reply_int(const struct redis_reply *r);
size_t redis_reply_count(const struct redis_reply *r);
const struct redis_reply *redis_reply_at(const struct redis_reply *r, size_t i);
/* A string reply that equals s (len bytes). */
int redis_reply_is(const struct redis_reply *r, const char *s, size_t len);
void redis_reply_free(struct redis_reply *r);

#endif
