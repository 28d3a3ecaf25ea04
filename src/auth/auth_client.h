/* SPDX-License-Identifier: MIT */
/*
 * OAuth clients: what each may do (grants, scopes, audiences, token lifetimes) and how it
 * proves who it is. Client secrets are 256 random bits, shown once, stored only as a keyed
 * BLAKE2b digest: being random, they need no slow hash (a slow hash is why other servers
 * manage a few hundred client_credentials per second), and without the key file a copy of
 * the store cannot even be checked against a guess. Any thread.
 */
#ifndef AUTH_AUTH_CLIENT_H
#define AUTH_AUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "crypto/cr.h"

struct buf;
struct store;

enum {
    AUTH_GRANT_CLIENT_CREDENTIALS = 1u << 0,
    AUTH_GRANT_REFRESH_TOKEN = 1u << 1,
    AUTH_GRANT_PASSWORD = 1u << 2,
    AUTH_GRANT_AUTHORIZATION_CODE = 1u << 3,
};

#define AUTH_CLIENT_ID_MAX 64
#define AUTH_NAME_MAX      128
#define AUTH_LIST_MAX      1024 /* space-separated scopes or audiences */
#define AUTH_SECRET_LEN    43   /* 32 bytes, base64url */

struct auth_client {
    char id[AUTH_CLIENT_ID_MAX + 1];
    char name[AUTH_NAME_MAX + 1];
    uint8_t secret_digest[CR_HASH_LEN];
    unsigned grants;
    char scopes[AUTH_LIST_MAX + 1];
    char audiences[AUTH_LIST_MAX + 1];
    int64_t access_ttl;  /* 0: the server default */
    int64_t refresh_ttl; /* 0: the server default */
    bool introspect_any; /* may introspect any token, not only its own (RFC 7662 §4) */
    int64_t created_at;
    /* Public (token_endpoint_auth_method "none": a single-page or native app, which cannot
     * keep a secret): identified by client_id alone, only for authorization_code (with
     * PKCE) and refresh_token, never client_credentials, password or introspection. */
    bool public_client;
    bool first_party;     /* the operator's own app: no consent page */
    uint8_t id_token_alg; /* enum tok_alg of its ID tokens; 0: the server's default */
};

/* The rules a client's registration must keep, stated once for the CLI and the admin API:
 * authorization_code needs a redirect URI; a public client has no client_credentials or
 * password grant and no introspection permission; an ID-token algorithm, if named, is one
 * the key ring signs with. ERR_OK, or ERR_INVAL with *why. */
struct auth_client_web;
int auth_client_validate(const struct auth_client *c, const struct auth_client_web *w,
                         const char **why);

/* "client_credentials,refresh_token" -> bits; ERR_INVAL for an unknown grant. */
int auth_grants_parse(const char *s, unsigned *out);
/* bits -> JSON array text ["client_credentials",...] appended to out. */
int auth_grants_json(unsigned grants, struct buf *out);
const char *auth_grant_name(unsigned bit);

/* Record <-> JSON (the store's form). The browser-facing lists (w; NULL: none) are in the
 * same record; auth_client_decode leaves them (the token endpoint's path), and
 * auth_client_decode_web reads them. */
int auth_client_encode(const struct auth_client *c, const struct auth_client_web *w,
                       struct buf *out);
int auth_client_decode(const char *id, size_t idlen, const char *json, size_t n,
                       struct auth_client *c);
int auth_client_decode_web(const char *json, size_t n, struct auth_client_web *w);
/* Both from one parse (the authorization endpoint's). */
int auth_client_decode_all(const char *id, size_t idlen, const char *json, size_t n,
                           struct auth_client *c, struct auth_client_web *w);
/* ,"token_endpoint_auth_method":..,"first_party":..[,"id_token_signed_response_alg":..]. */
int auth_client_flags_json(const struct auth_client *c, struct buf *out);

/* Digest of a presented secret under the server's key (domain-separated). */
void auth_secret_digest(const uint8_t key[CR_HASH_KEY_LEN], const char *secret, size_t n,
                        uint8_t out[CR_HASH_LEN]);

/* Creates a client with a fresh id and (unless public) a secret; secret_out gets the secret
 * (once; "" for a public client). w: its browser-facing lists, or NULL. */
int auth_client_create(struct store *st, const uint8_t key[CR_HASH_KEY_LEN], struct auth_client *c,
                       const struct auth_client_web *w, int64_t now,
                       char secret_out[AUTH_SECRET_LEN + 1]);
/* New secret for an existing client. ERR_NOTFOUND. */
int auth_client_rotate_secret(struct store *st, const uint8_t key[CR_HASH_KEY_LEN], const char *id,
                              char secret_out[AUTH_SECRET_LEN + 1]);
int auth_client_get(struct store *st, const char *id, size_t idlen, struct auth_client *c);
/* The same with the browser-facing lists (w may be NULL). Blocks. */
int auth_client_get_web(struct store *st, const char *id, struct auth_client *c,
                        struct auth_client_web *w);
/* Grants or withdraws the permission to introspect any token. ERR_NOTFOUND. Blocks. */
int auth_client_set_introspection(struct store *st, const char *id, bool any);

/*
 * Per-thread cache of client records (one owner thread; no lock): a token endpoint or
 * introspection call then costs no store read and no JSON parse. An entry is trusted only
 * while the store generation the caller passes (bumped by every change to clients; the
 * server samples it once a second) is the one it was read at, so a deleted client or a
 * rotated secret stops working within a second. Fixed size, direct-mapped.
 */
struct auth_client_cache;
struct auth_client_cache *auth_client_cache_new(unsigned slots);
void auth_client_cache_free(struct auth_client_cache *cc);
/* The record of `id` cached at store generation `gen`: ERR_OK (c filled) or ERR_NOTFOUND.
 * The caller reads the store on a miss (as it likes: blocking or not) and tells the cache
 * what it found. */
int auth_client_cache_find(struct auth_client_cache *cc, uint64_t gen, const char *id, size_t idlen,
                           struct auth_client *c);
/* What a store read of `id` at generation `gen` gave: rc ERR_OK caches c, ERR_NOTFOUND drops a
 * stale copy (the client was deleted), anything else changes nothing. */
void auth_client_cache_put(struct auth_client_cache *cc, uint64_t gen, int rc, const char *id,
                           size_t idlen, const struct auth_client *c);

/* Client authentication's shortcut: Basic credentials (the Authorization header's value,
 * byte for byte) that authenticated client `id` at generation `gen` are remembered by a
 * keyed hash (SipHash-128 under this cache's random key; never the secret), so that the same
 * header again, while the generation stands, names its client without decoding or digesting
 * the secret: ERR_OK (c filled from the cache) or ERR_NOTFOUND (decide the long way). Only
 * a success is remembered; a rotated secret or a deleted client moves the generation. */
int auth_client_cache_find_cred(struct auth_client_cache *cc, uint64_t gen, struct str cred,
                                struct auth_client *c);
void auth_client_cache_put_cred(struct auth_client_cache *cc, uint64_t gen, struct str cred,
                                const char *id);

/* Loads the server key from `path`, creating it (0600, 32 random bytes) if missing. */
int auth_key_load(const char *path, uint8_t key[CR_HASH_KEY_LEN], char *err, size_t cap);

/* What a client may ask for in a token (RFC 6749 §3.3, RFC 8707): the scope asked for
 * (normalised; NULL: all the client's scopes) if within the client's, and the audience asked
 * for if it is one of the client's (NULL: the client's first, "" if none). ERR_OK, or
 * ERR_INVAL (not allowed, or malformed). */
int auth_client_scope(const struct auth_client *c, const struct str *want, char *out, size_t cap);
int auth_client_audience(const struct auth_client *c, const struct str *want, char *out,
                         size_t cap);

#endif
