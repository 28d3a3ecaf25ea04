/* SPDX-License-Identifier: MIT */
/*
 * What the bench tools that grow a store (seed_refresh, seed_users, store_size) share: a
 * loop of their own for the store's completions, a count of them, and the wait for a batch.
 * Header-only: each tool is one file and this one more.
 */
#ifndef BENCH_SEED_H
#define BENCH_SEED_H

#include "loop/loop.h"
#include "store/store.h"

static struct loop seed_lp;
static unsigned long seed_done, seed_failed;

static void seed_on_done(struct store_op *op)
{
    seed_done++;
    if (op->status)
        seed_failed++;
}

/* Runs the loop until `target` writes have completed. */
static void seed_wait(unsigned long target)
{
    while (seed_done < target)
        uv_run(&seed_lp.uv, UV_RUN_ONCE);
}

#endif
