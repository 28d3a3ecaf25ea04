/* SPDX-License-Identifier: MIT */
/*
 * A loop thread's token state: its copy of the signing keys and its verification cache.
 * The keys are copied from the main thread's ring (tok_svc) when that was reloaded, checked
 * at most once a second with the same sample of the store generation that validates the
 * thread's other caches. Only the owning thread touches it.
 */
#ifndef TOKEN_TOK_LOCAL_H
#define TOKEN_TOK_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "token/tok_keys.h"
#include "token/tok_svc.h"

struct loop;
struct tok_cache;
struct tok_verification;

struct tok_local {
    struct tok_svc *svc;
    struct loop *lp;
    struct tok_cache *cache;
    uint64_t generation; /* the store generation sampled at ring_checked */
    /* private */
    struct tok_ring ring;             /* this thread's copy of the signing keys */
    uint64_t ring_version;            /* of the shared ring it was copied from; 0: read itself */
    int64_t ring_checked;             /* second of the last generation check */
    bool reloading;                   /* the ring is being read on the worker pool */
    struct tok_verification *waiting; /* verifications waiting for that read */
};

/* ERR_OK, or ERR_NOMEM (no key ring could be copied). */
int tok_local_start(struct tok_local *t, struct tok_svc *svc, struct loop *lp, int64_t now);
void tok_local_stop(struct tok_local *t);
/* The thread's key ring, taken (at most once a second) from the main thread's when that was
 * reloaded; t->generation is sampled at the same time. */
const struct tok_ring *tok_local_ring(struct tok_local *t, int64_t now);
/* A token names a key this thread does not hold: maybe one rotated a moment ago (another
 * instance's, published at once). 1 if the main thread's ring is newer and was taken (try
 * again); 2 if the store has moved past both (the main thread reads it once a second): the
 * ring must be read (tok_verify does it on the worker pool, never on the loop thread); 0:
 * the key is not ours. */
int tok_local_kid_unknown(struct tok_local *t);
/* (tok_verify.c) Replaces the thread's ring by fresh (taken over). */
void tok_local__install(struct tok_local *t, struct tok_ring *fresh);

#endif
