/* SPDX-License-Identifier: MIT */
/*
 * The one allocation hook. mem_* may fail (returns NULL) and is used for every size that a
 * client can influence, after that size was checked against a limit. x* aborts on failure
 * and is used for fixed internal sizes (as Redis and h2o do). Tests can make the Nth mem_*
 * allocation fail (mem_fail_after) to sweep every error path, after SQLite and curl.
 * Any thread; the failure counter is process-wide and meant for single-threaded tests.
 */
#ifndef CORE_MEM_H
#define CORE_MEM_H

#include <stddef.h>

/* The struct that embeds `member` at `ptr`: callbacks hand back a pointer to an embedded
 * member (a pool job, a store op); this gets the enclosing object. */
#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

void *mem_malloc(size_t n);
void *mem_calloc(size_t nmemb, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/*
 * Fault injection for tests: after `n` more successful mem_* allocations, every further one
 * fails until mem_fail_after(-1) turns it off. Returns how many allocations were made since
 * the last call (so a test can learn how many there are to sweep).
 */
long mem_fail_after(long n);

#endif
