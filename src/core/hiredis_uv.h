/* SPDX-License-Identifier: MIT */
/*
 * hiredis with its libuv adapter, for the Redis store and the Redis Streams event sink.
 * Debian's hiredis 0.14 headers (the adapter is code in a header) do not build under our
 * warnings; they are included here once with those warnings off.
 */
#ifndef CORE_HIREDIS_UV_H
#define CORE_HIREDIS_UV_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#endif
