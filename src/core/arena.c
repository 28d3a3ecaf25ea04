/* SPDX-License-Identifier: MIT */
/*
 * Bump allocator over a list of blocks. Requests larger than a quarter block get a block of
 * their own so that one large body does not waste the tail of an ordinary block.
 */
#include "core/arena.h"

#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

struct arena_block {
    struct arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct arena_cleanup {
    struct arena_cleanup *next;
    arena_cleanup_cb fn;
    void *data;
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

void arena_init(struct arena *a, size_t block_size, size_t max)
{
    a->_head = NULL;
    a->_cleanups = NULL;
    a->_block_size = block_size;
    a->_used_total = 0;
    a->_max = max;
}

static void run_cleanups(struct arena *a)
{
    /* Pop before calling, so a hook that allocates or fails leaves a consistent list. */
    while (a->_cleanups) {
        struct arena_cleanup *c = a->_cleanups;
        a->_cleanups = c->next;
        c->fn(c->data);
    }
}

void arena_fini(struct arena *a)
{
    run_cleanups(a);
    while (a->_head) {
        struct arena_block *b = a->_head;
        a->_head = b->next;
        mem_free(b);
    }
    a->_used_total = 0;
}

void arena_reset(struct arena *a)
{
    run_cleanups(a);
    if (!a->_head)
        return;
    /* Keep the oldest ordinary block (the list tail) and free the rest. */
    struct arena_block *keep = NULL;
    struct arena_block *b = a->_head;
    while (b) {
        struct arena_block *next = b->next;
        if (!next && b->size == a->_block_size)
            keep = b;
        else
            mem_free(b);
        b = next;
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->_head = keep;
    a->_used_total = 0;
}

static struct arena_block *new_block(size_t size)
{
    struct arena_block *b = mem_malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->size = size;
    b->used = 0;
    b->next = NULL;
    return b;
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = ALIGN16(n ? n : 1);
    if (n > a->_max - a->_used_total || n < 16)
        return NULL;
    struct arena_block *b = a->_head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        a->_used_total += n;
        return p;
    }
    if (n > a->_block_size / 4) {
        /* Dedicated block, linked second so the current block keeps serving small ones. */
        struct arena_block *big = new_block(n);
        if (!big)
            return NULL;
        big->used = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            a->_head = big;
        }
        a->_used_total += n;
        return big->data;
    }
    struct arena_block *nb = new_block(a->_block_size);
    if (!nb)
        return NULL;
    nb->next = a->_head;
    a->_head = nb;
    nb->used = n;
    a->_used_total += n;
    return nb->data;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int arena_on_reset(struct arena *a, arena_cleanup_cb fn, void *data)
{
    struct arena_cleanup *c = arena_alloc(a, sizeof(*c));
    if (!c)
        return a->_used_total + sizeof(*c) > a->_max ? ERR_LIMIT : ERR_NOMEM;
    c->fn = fn;
    c->data = data;
    c->next = a->_cleanups;
    a->_cleanups = c;
    return ERR_OK;
}
