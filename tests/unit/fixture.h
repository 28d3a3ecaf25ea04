/* SPDX-License-Identifier: MIT */
/*
 * What the domain and store tests set up again and again: a fresh embedded store in a
 * temporary directory with a loop to complete its writes on, a redis-server on a unix
 * socket, and the question "is this refresh token active?" asked of a store.
 */
#ifndef TESTS_FIXTURE_H
#define TESTS_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/auth_svc.h"
#include "loop/loop.h"
#include "store/store.h"
#include "token/tok_svc.h"

struct fx {
    char dir[64];
    struct store *st;
    struct loop lp;
};

/* A fresh LMDB store under /tmp/fg-NAME-PID and a loop; libsodium started. 0 or -1. */
int fx_open(struct fx *f, const char *name);
/* Releases the loop's store resources, runs the loop dry, closes the store, removes the
 * directory. */
void fx_close(struct fx *f);
/* Runs f's loop until *count reaches want. */
void fx_wait(struct fx *f, const int *count, int want);

/* A signing key in f's store (EdDSA, unsealed) and the ring that holds it. 0 or -1. */
struct tok_ring;
int fx_keys(struct fx *f, struct tok_ring *ring);

/* A token service on f's store with key: families live 1000 s, tokens 100 s unused, a
 * 5 s grace. */
struct tok_svc;
void fx_tok_svc(struct fx *f, struct tok_svc *svc, const uint8_t *key);
/* An authentication service on f's store, as the login tests want it: one worker thread,
 * the small Argon2id parameters pp, a lockout table (user_attempts failures lock a username;
 * 100 an address or a pair), the token service fx_tok_svc makes (on the same worker, no
 * grace), logins counted in a->logins. 0 or -1. fx_auth_close drains the worker and frees
 * what fx_auth_open made (f stays open). */
struct fx_auth {
    struct pool *pool;
    struct pol_lockout *lockout;
    struct tok_svc tok;
    struct auth_svc svc;
    _Atomic uint64_t logins[AUTH_LOGINS_COUNT];
};
int fx_auth_open(struct fx_auth *a, struct fx *f, const uint8_t *key,
                 const struct auth_pw_params *pp, unsigned user_attempts);
void fx_auth_close(struct fx_auth *a, struct fx *f);

/* Starts a refresh family (tok_family_start) of sub for client with scope at now and
 * waits until it is durable: its first token into token (TOK_REFRESH_LEN + 1), 0 or -1. */
int fx_family(struct fx *f, const struct tok_svc *svc, const char *sub, const char *client,
              const char *scope, int64_t now, char *token);

/* Whether refresh token `token` (digests keyed with key) is active for `client` at now,
 * by the rule of tok_introspect.h; false on a store error. The embedded store answers at
 * once. */
bool fx_rt_active(struct store *st, const uint8_t *key, const char *token, const char *client,
                  int64_t now);

/* A redis-server on the unix socket `sock` (no port to collide on), answering when this
 * returns: its pid, or -1. fx_redis_stop kills it and removes the socket. */
pid_t fx_redis_start(const char *sock);
void fx_redis_stop(pid_t *pid, const char *sock);

/* A local Redis Cluster on loopback: `primaries` (3 or more) and `replicas` per primary, each
 * a redis-server on a free port (and its bus port + 10000) in a temporary directory,
 * created with redis-cli --cluster create and waited for until every node says ok. */
#define FX_CLUSTER_MAX 12
struct fx_cluster {
    int n;
    pid_t pid[FX_CLUSTER_MAX];
    int port[FX_CLUSTER_MAX];
    char dir[64];
};
/* 0, or -1 (stopped again). */
int fx_cluster_start(struct fx_cluster *c, int primaries, int replicas);
void fx_cluster_stop(struct fx_cluster *c);
/* A command line's output (its first cap - 1 bytes; out may be NULL); its exit status. */
int fx_sh(const char *cmd, char *out, size_t cap);

#endif
