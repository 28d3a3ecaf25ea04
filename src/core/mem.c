/* SPDX-License-Identifier: MIT */
/*
 * Allocation with a fault-injection hook. The counter is a relaxed atomic so that the hook
 * costs one load on the normal path and stays race-free when loop threads allocate.
 */
#include "core/mem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic long fail_left = -1; /* -1: never fail */
static _Atomic long alloc_count;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_left, memory_order_relaxed);
    if (left < 0)
        return 0;
    if (left == 0)
        return 1;
    atomic_store_explicit(&fail_left, left - 1, memory_order_relaxed);
    return 0;
}

long mem_fail_after(long n)
{
    atomic_store_explicit(&fail_left, n, memory_order_relaxed);
    return atomic_exchange_explicit(&alloc_count, 0, memory_order_relaxed);
}

void *mem_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *mem_calloc(size_t nmemb, size_t size)
{
    return should_fail() ? NULL : calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void mem_free(void *p)
{
    free(p);
}

static void oom(size_t n)
{
    fprintf(stderr, "floodgate: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}
