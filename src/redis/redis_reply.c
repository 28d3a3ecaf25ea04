/* SPDX-License-Identifier: MIT */
/* Redis replies; see redis_reply.h. */
#include "redis/redis_reply.h"

#include <stdbool.h>
#include <string.h>

#include "redis/redis_uv.h"

static const redisReply *R(const struct redis_reply *r)
{
    return (const redisReply *)(const void *)r;
}

enum redis_kind redis_reply_kind(const struct redis_reply *r)
{
    switch (R(r)->type) {
    case REDIS_REPLY_STRING:
        return RK_STRING;
    case REDIS_REPLY_STATUS:
        return RK_STATUS;
    case REDIS_REPLY_ERROR:
        return RK_ERROR;
    case REDIS_REPLY_INTEGER:
        return RK_INTEGER;
    case REDIS_REPLY_NIL:
        return RK_NIL;
    case REDIS_REPLY_ARRAY:
        return RK_ARRAY;
    default:
        return RK_OTHER;
    }
}

const char *redis_reply_str(const struct redis_reply *r, size_t *len)
{
    const redisReply *x = R(r);
    bool text = x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS ||
                x->type == REDIS_REPLY_ERROR;
    if (len)
        *len = text ? x->len : 0;
    return text && x->str ? x->str : "";
}

long long redis_reply_int(const struct redis_reply *r)
{
    return R(r)->type == REDIS_REPLY_INTEGER ? R(r)->integer : 0;
}

size_t redis_reply_count(const struct redis_reply *r)
{
    return R(r)->type == REDIS_REPLY_ARRAY ? R(r)->elements : 0;
}

const struct redis_reply *redis_reply_at(const struct redis_reply *r, size_t i)
{
    return i < redis_reply_count(r) ? (const struct redis_reply *)(const void *)R(r)->element[i]
                                    : NULL;
}

int redis_reply_is(const struct redis_reply *r, const char *s, size_t len)
{
    const redisReply *x = R(r);
    return x && x->type == REDIS_REPLY_STRING && x->len == len && memcmp(x->str, s, len) == 0;
}

void redis_reply_free(struct redis_reply *r)
{
    if (r)
        freeReplyObject(r);
}
