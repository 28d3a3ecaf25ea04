/* SPDX-License-Identifier: MIT */
/*
 * Verification cache: one per loop thread (no lock), a fixed number of slots indexed by a
 * keyed hash of the token, so a repeated introspection or gateway check does no signature
 * or JSON work. An entry never outlives its token's exp. A revocation (in this process, or
 * another instance's, heard through the shared store) is published by its jti: every
 * thread's cache drops that token's entry before its next answer, and keeps the others.
 * When it cannot tell which (it fell behind, or the store's messages may have been lost),
 * the epoch is bumped instead and every entry is rechecked against the revoked list before
 * it is trusted again. Memory is fixed at init: slots * ~1.5 KiB.
 */
#ifndef TOKEN_TOK_CACHE_H
#define TOKEN_TOK_CACHE_H

#include <stdint.h>

#include "core/str.h"
#include "token/tok_jwt.h"

struct tok_cache;

struct tok_cache *tok_cache_new(unsigned slots);
void tok_cache_free(struct tok_cache *c);

/* The claims for `token` if cached, valid at `now`, and checked at `epoch`: returns 1 and
 * fills *out. Returns 0 when absent or expired; returns 2 with *out filled when present but
 * filled under an older epoch (the caller rechecks revocation, then calls tok_cache_put). */
int tok_cache_get(struct tok_cache *c, struct str token, int64_t now, uint64_t epoch,
                  struct tok_claims *out);
void tok_cache_put(struct tok_cache *c, struct str token, const struct tok_claims *cl,
                   uint64_t epoch);
/* Drops the entry of `token` if present. */
void tok_cache_drop(struct tok_cache *c, struct str token);

/* The process-wide revocation epoch. Any thread. */
uint64_t tok_revocation_epoch(void);
void tok_revocation_bump(void);

/*
 * What this process knows was revoked: every revocation made here or heard from the shared
 * store since start (and those read from the store at start), each kept until its token's
 * exp, in a fixed table of TOK_REVOKED_KNOWN_MAX entries. While the store cannot be asked,
 * this is what keeps a revoked token refused (issue #11 item 3). Any thread (a mutex:
 * written on revocations, read only while the store is away).
 */
#define TOK_REVOKED_KNOWN_MAX 65536
/* A revocation heard without its token's exp is kept this long (longer than any access
 * token of ours lives: access_ttl is at most a day). */
#define TOK_REVOKED_REMOTE_S (2 * 86400)
void tok_revoked_remember(const char *jti, size_t len, int64_t exp, int64_t now);
/* 1: known revoked. 0: not known revoked, and nothing was forgotten. -1: not known, but the
 * table overflowed and forgot an entry whose token may still be alive: the caller cannot
 * tell, so it must not vouch for the token. */
int tok_revoked_known(const char *jti, size_t len, int64_t now);
/* Forgets everything (tests). */
void tok_revoked_reset(void);

/* Publishes the revocation of the token with this jti to every thread's cache, and
 * remembers it until exp (tok_revoked_remember). Any thread. */
void tok_revoked_publish(const char *jti, size_t len, int64_t exp, int64_t now);
/* A counter that moves with every publication: read it before checking the revoked list and
 * pass it to tok_cache_put, which then does not cache an answer a revocation overtook. */
uint64_t tok_revoked_seq(void);
void tok_cache_put_checked(struct tok_cache *c, struct str token, const struct tok_claims *cl,
                           uint64_t epoch, uint64_t seq);

#endif
