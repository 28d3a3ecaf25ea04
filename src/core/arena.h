/* SPDX-License-Identifier: MIT */
/*
 * Per-request arena (as in h2o and nginx pools). Holds parse results, decoded bodies and
 * the response being built; everything is released at once by arena_reset when the request
 * ends. The byte cap given at init doubles as a DoS limit: an allocation past it returns
 * NULL. The first block is kept across resets, so a keep-alive connection reuses it.
 * Cleanup hooks release non-memory resources and run, newest first, at reset and fini.
 * One owner, one thread. Secrets never go into an arena (they would outlive their use).
 */
#ifndef CORE_ARENA_H
#define CORE_ARENA_H

#include <stddef.h>

struct arena_block;
struct arena_cleanup;

struct arena {
    struct arena_block *_head;
    struct arena_cleanup *_cleanups;
    size_t _block_size;
    size_t _used_total; /* bytes handed out since the last reset, counted against _max */
    size_t _max;
};

typedef void (*arena_cleanup_cb)(void *data);

/* Allocates nothing. `block_size` is the size of ordinary blocks; `max` the byte cap. */
void arena_init(struct arena *a, size_t block_size, size_t max);
/* Runs cleanups and frees every block. */
void arena_fini(struct arena *a);
/* Runs cleanups, frees all blocks but the first, and empties the first. */
void arena_reset(struct arena *a);

/* 16-byte aligned memory, or NULL when the cap is reached or allocation fails. */
void *arena_alloc(struct arena *a, size_t n);
/* Copies `n` bytes and adds a NUL. NULL on failure. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Registers `fn(data)` to run at the next reset or fini. ERR_NOMEM/ERR_LIMIT on failure. */
int arena_on_reset(struct arena *a, arena_cleanup_cb fn, void *data);

#endif
