/* SPDX-License-Identifier: MIT */
/*
 * What every authentication operation of a server shares: the store, the worker pool that
 * hashes, the server key, the hashing parameters and deadline, the brute-force tables and
 * the token service logins start families with. Filled once before the loop threads start;
 * read-only afterwards except through the thread-safe tables and the atomics.
 */
#ifndef AUTH_AUTH_SVC_H
#define AUTH_AUTH_SVC_H

#include <stdatomic.h>
#include <stdint.h>

#include "auth/auth_password.h"

struct auth_denylist;
struct pol_distinct;
struct pol_lockout;
struct pool;
struct store;
struct tok_svc;

enum { AUTH_LOGINS_OK, AUTH_LOGINS_FAILED, AUTH_LOGINS_REFUSED, AUTH_LOGINS_COUNT };

struct auth_svc {
    struct store *st;
    struct pool *pool;
    const uint8_t *key; /* CR_HASH_KEY_LEN bytes: guard keys, client secrets */
    struct auth_pw_params pp;
    unsigned hash_deadline_ms;            /* a hash that would wait longer is refused now */
    const struct auth_denylist *denylist; /* NULL: none */
    struct pol_lockout *lockout;          /* this instance's brute-force table */
    struct pol_distinct *failed_ips;      /* addresses of failed logins (the policy reads) */
    _Atomic uint64_t *logins;             /* [AUTH_LOGINS_COUNT], by outcome */
    const struct tok_svc *tok;            /* logins start refresh families there */
    /* the shared guard's lock rules (a store shared by instances): user, ip, pair */
    unsigned lock_attempts[3];
    int64_t lock_base_s, lock_max_s, lock_window_s;
    int64_t session_idle_s, session_ttl_s; /* browser sessions (auth_session.h) */
};

struct loop;
struct pool_job;
/* Admission of a hash (a login, a registration): a job that would wait past hash_deadline
 * is refused now (its client would likely have given up, and retried, before it ran), as is
 * one the queue cannot take. ERR_OK (queued), or ERR_LIMIT with *retry_ms: the expected
 * wait, or 1 s for a full or stopping queue. */
/* Password logins by outcome and the brute-force locks in force, in the Prometheus text
 * format. ERR_LIMIT past b's cap. */
struct buf;
int auth_svc_metrics_text(const struct auth_svc *svc, struct buf *b, int64_t now);

/* The expected wait of a hash queued now if it is past hash_deadline (the job would be
 * refused), else 0: what logins and registrations ask before reading their body. */
uint64_t auth_svc_over_deadline(const struct auth_svc *svc);
int auth_svc_submit(const struct auth_svc *svc, struct loop *lp, struct pool_job *pj,
                    uint64_t *retry_ms);

#endif
