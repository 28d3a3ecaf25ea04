/* SPDX-License-Identifier: MIT */
/*
 * hiredis on a libuv loop: hiredis's headers (Debian's 0.14, which do not build under our
 * warnings, included here once with those warnings off) and our own adapter between them.
 *
 * Why not hiredis's adapter (hiredis/adapters/libuv.h in 0.14): when libuv reports an error
 * on the socket (a refused connect, a reset), it returns without telling hiredis, and libuv
 * has already stopped watching the socket. The context then waits forever: no connect
 * callback, no disconnect callback, no retry. Ours hands the error to hiredis as the event
 * it was waiting for; its read or write finds the error and fails the context as usual.
 */
#ifndef REDIS_REDIS_UV_H
#define REDIS_REDIS_UV_H

#include <uv.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

/* Drives ac from loop until hiredis frees it. REDIS_ERR if ac is already attached or
 * memory runs out (then free ac yourself). */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
