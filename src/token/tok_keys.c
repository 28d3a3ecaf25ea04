/* SPDX-License-Identifier: MIT */
/*
 * Key records are JSON in the store: {"alg","pk","sk_sealed","created","active_from",
 * "retire_at"}, keys base64url. The private key (Ed25519's 64 bytes, or the PEM of an ES256 or
 * RS256 key) is sealed: base64url(nonce || XChaCha20-Poly1305 ciphertext), under a key
 * derived from the server key, with the kid as associated data, so neither a copy of the
 * store (an LMDB file, a Redis dump, AOF or replica) nor a record moved to another kid yields
 * a signing key. Records in the clear ("sk" / "sk_pem") are refused while a server key is in
 * use: whoever can write to the store must not be able to plant a key that signs. Records
 * from before sealing are sealed once, on the operator's word (tok_keys_reseal, the CLI's
 * "key reseal"); the release before this one did it at every start.
 */
#include "token/tok_keys.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/cr.h"
#include "event/ev.h"
#include "store/store.h"

#define SEAL_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEALED_MAX 4096 /* sealed bytes of the largest private key (an RSA-2048 PEM) */

static uint8_t *seal_key; /* sodium_malloc'd; NULL: write in the clear */

void tok_keys_seal_with(const uint8_t *server_key)
{
    static const char ctx[] = "floodgate signing-key seal v1";
    if (!server_key) {
        sodium_free(seal_key);
        seal_key = NULL;
        return;
    }
    if (!seal_key)
        seal_key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    if (seal_key)
        cr_keyed_hash(seal_key, server_key, ctx, sizeof(ctx) - 1);
}

/* Appends base64url(nonce || sealed plain) to out. */
static int seal(const char *kid, const void *plain, size_t n, struct buf *out)
{
    uint8_t sealed[SEAL_NONCE + SEALED_MAX + SEAL_TAG];
    char b64[((sizeof(sealed) + 2) / 3) * 4 + 1];
    unsigned long long clen;

    if (n > SEALED_MAX)
        return ERR_LIMIT;
    cr_random(sealed, SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + SEAL_NONCE, &clen, plain, n,
                                               (const uint8_t *)kid, strlen(kid), NULL, sealed,
                                               seal_key);
    cr_b64url_encode(sealed, SEAL_NONCE + (size_t)clen, b64, sizeof(b64));
    return buf_puts(out, b64);
}

/* Opens what seal wrote for kid into plain[cap] (*n bytes). ERR_INVAL if it does not open:
 * another server key, another kid, altered. */
static int unseal(const char *kid, const char *b64, uint8_t *plain, size_t cap, size_t *n)
{
    uint8_t sealed[SEAL_NONCE + SEALED_MAX + SEAL_TAG];
    size_t len;
    unsigned long long plen;

    if (!seal_key || cr_b64url_decode(b64, strlen(b64), sealed, sizeof(sealed), &len) ||
        len < SEAL_NONCE + SEAL_TAG || len - SEAL_NONCE - SEAL_TAG > cap ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, sealed + SEAL_NONCE,
                                                   len - SEAL_NONCE, (const uint8_t *)kid,
                                                   strlen(kid), sealed, seal_key))
        return ERR_INVAL;
    *n = (size_t)plen;
    return ERR_OK;
}

void tok_ring_clear(struct tok_ring *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        sodium_free(r->keys[i].k.sk);
        r->keys[i].k.sk = NULL;
        cr_pkey_free(r->keys[i].k.pkey);
        r->keys[i].k.pkey = NULL;
    }
    r->n = 0;
}

int tok_ring_copy(struct tok_ring *dst, const struct tok_ring *src)
{
    *dst = *src;
    for (unsigned i = 0; i < src->n; i++) {
        struct tok_key *k = &dst->keys[i].k;
        const struct tok_key *from = &src->keys[i].k;
        k->sk = NULL;
        k->pkey = NULL;
        if (from->sk && (k->sk = sodium_malloc(CR_ED25519_SK)) != NULL)
            memcpy(k->sk, from->sk, CR_ED25519_SK);
        if (from->pkey)
            k->pkey = cr_pkey_dup(from->pkey);
        if ((from->sk && !k->sk) || (from->pkey && !k->pkey)) {
            dst->n = i + 1;
            tok_ring_clear(dst);
            return ERR_NOMEM;
        }
    }
    return ERR_OK;
}

static int decode_key(const char *kid, size_t kidlen, const char *json, size_t n,
                      struct tok_ring_key *out)
{
    json_error_t je;
    size_t len;
    int rc = ERR_INVAL;
    json_t *j = json_loadb(json, n, 0, &je);

    memset(out, 0, sizeof(*out));
    if (!j || kidlen > TOK_KID_MAX)
        goto out;
    const char *alg = json_string_value(json_object_get(j, "alg"));
    const char *pk = json_string_value(json_object_get(j, "pk"));
    const char *sk = json_string_value(json_object_get(j, "sk"));
    const char *sealed = json_string_value(json_object_get(j, "sk_sealed"));
    memcpy(out->k.kid, kid, kidlen);
    out->k.kid[kidlen] = '\0';
    out->in_clear = !sealed;
    out->k.alg = alg ? tok_alg_parse(alg) : TOK_ALG_NONE;
    out->created_at = json_integer_value(json_object_get(j, "created"));
    out->active_from = json_integer_value(json_object_get(j, "active_from"));
    out->retire_at = json_integer_value(json_object_get(j, "retire_at"));
    if (out->k.alg == TOK_ALG_ES256 || out->k.alg == TOK_ALG_RS256) {
        const char *pem = json_string_value(json_object_get(j, "sk_pem"));
        enum cr_pkey_alg a = out->k.alg == TOK_ALG_ES256 ? CR_ES256 : CR_RS256;
        if (sealed) {
            uint8_t *p = sodium_malloc(SEALED_MAX);
            rc = p ? unseal(out->k.kid, sealed, p, SEALED_MAX, &len) : ERR_NOMEM;
            if (rc == ERR_OK)
                rc = cr_pkey_from_pem(a, (const char *)p, len, &out->k.pkey);
            sodium_free(p);
        } else {
            rc = pem ? cr_pkey_from_pem(a, pem, strlen(pem), &out->k.pkey) : ERR_INVAL;
        }
        goto out;
    }
    if (out->k.alg != TOK_ALG_EDDSA || !pk || !(sk || sealed))
        goto out;
    if (cr_b64url_decode(pk, strlen(pk), out->k.pk, sizeof(out->k.pk), &len) ||
        len != CR_ED25519_PK)
        goto out;
    out->k.sk = sodium_malloc(CR_ED25519_SK);
    if (!out->k.sk) {
        rc = ERR_NOMEM;
        goto out;
    }
    if ((sealed ? unseal(out->k.kid, sealed, out->k.sk, CR_ED25519_SK, &len)
                : cr_b64url_decode(sk, strlen(sk), out->k.sk, CR_ED25519_SK, &len)) ||
        len != CR_ED25519_SK) {
        sodium_free(out->k.sk);
        out->k.sk = NULL;
        goto out;
    }
    rc = ERR_OK;
out:
    json_decref(j);
    return rc;
}

struct load_ctx {
    struct tok_ring *r;
    int rc;
    bool strict; /* refuse records in the clear */
};

static int on_key(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct load_ctx *c = ctx;
    if (c->r->n >= TOK_RING_MAX)
        return ERR_LIMIT;
    int rc = decode_key(key, klen, val, vlen, &c->r->keys[c->r->n]);
    bool clear = c->r->keys[c->r->n].in_clear;
    if (rc == ERR_OK)
        c->r->n++; /* (freed with the ring by the caller, whatever follows) */
    if (c->strict && clear)
        return ERR_DENIED; /* well-formed or not: refused for being in the clear */
    return rc;
}

static int load(struct tok_ring *r, struct store *st, bool strict)
{
    struct load_ctx c = {r, 0, strict};

    tok_ring_clear(r);
    r->generation = store_generation_recent(st);
    int rc = store_each(st, STORE_T_KEYS, on_key, &c);
    if (rc)
        tok_ring_clear(r);
    return rc;
}

int tok_ring_load(struct tok_ring *r, struct store *st)
{
    return load(r, st, seal_key != NULL);
}

const struct tok_ring_key *tok_ring_signer(const struct tok_ring *r, enum tok_alg alg, int64_t now)
{
    const struct tok_ring_key *best = NULL;

    for (unsigned i = 0; i < r->n; i++) {
        const struct tok_ring_key *k = &r->keys[i];
        if (k->k.alg != alg || k->active_from > now || (k->retire_at && k->retire_at <= now))
            continue;
        if (!best || k->active_from > best->active_from ||
            (k->active_from == best->active_from && k->created_at > best->created_at))
            best = k;
    }
    return best;
}

const struct tok_ring_key *tok_ring_find(const struct tok_ring *r, struct str kid, int64_t now)
{
    for (unsigned i = 0; i < r->n; i++) {
        const struct tok_ring_key *k = &r->keys[i];
        if (str_eq(kid, str_c(k->k.kid)) && !(k->retire_at && k->retire_at <= now))
            return k;
    }
    return NULL;
}

int tok_ring_jwks(const struct tok_ring *r, int64_t now, struct buf *out)
{
    char x[64];
    int rc = buf_puts(out, "{\"keys\":[");

    for (unsigned i = 0, n = 0; i < r->n && !rc; i++) {
        const struct tok_ring_key *k = &r->keys[i];
        if (k->retire_at && k->retire_at <= now)
            continue;
        if (k->k.alg != TOK_ALG_EDDSA) {
            rc = buf_printf(out, "%s{\"use\":\"sig\",\"alg\":\"%s\",\"kid\":\"%s\",\"kty\":",
                            n++ ? "," : "", tok_alg_name(k->k.alg), k->k.kid);
            if (!rc)
                rc = cr_pkey_jwk(k->k.pkey, out);
            if (!rc)
                rc = buf_puts(out, "}");
            continue;
        }
        cr_b64url_encode(k->k.pk, CR_ED25519_PK, x, sizeof(x));
        rc = buf_printf(out,
                        "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"sig\",\"alg\":\"EdDSA\","
                        "\"kid\":\"%s\",\"x\":\"%s\"}",
                        n++ ? "," : "", k->k.kid, x);
    }
    return rc ? rc : buf_puts(out, "]}");
}

static int put_key(struct store *st, const char *kid, const char *json, enum store_op_kind kind)
{
    return store_exec_kv(st, kind, STORE_T_KEYS, kid, json, json ? strlen(json) : 0);
}

static int write_key(struct store *st, const struct tok_ring_key *k, enum store_op_kind kind)
{
    struct buf b, priv;
    char pk[64], sk[100];
    bool ed = k->k.alg == TOK_ALG_EDDSA;

    buf_init(&b, 16384);
    buf_init(&priv, 8192);
    int rc = ed ? buf_append(&priv, k->k.sk, CR_ED25519_SK) : cr_pkey_to_pem(k->k.pkey, &priv);
    if (!rc)
        rc = buf_printf(&b, "{\"alg\":\"%s\"", tok_alg_name(k->k.alg));
    if (!rc && ed) {
        cr_b64url_encode(k->k.pk, CR_ED25519_PK, pk, sizeof(pk));
        rc = buf_printf(&b, ",\"pk\":\"%s\"", pk);
    }
    if (!rc && seal_key) {
        rc = buf_puts(&b, ",\"sk_sealed\":\"");
        if (!rc)
            rc = seal(k->k.kid, priv.p, priv.len, &b);
        if (!rc)
            rc = buf_puts(&b, "\"");
    } else if (!rc && ed) { /* in the clear: only without a server key (unit tests) */
        cr_b64url_encode(k->k.sk, CR_ED25519_SK, sk, sizeof(sk));
        rc = buf_printf(&b, ",\"sk\":\"%s\"", sk);
        cr_wipe(sk, sizeof(sk));
    } else if (!rc) {
        rc = buf_puts(&b, ",\"sk_pem\":\"");
        if (!rc)
            rc = buf_json_escape(&b, priv.p, priv.len);
        if (!rc)
            rc = buf_puts(&b, "\"");
    }
    if (!rc)
        rc = buf_printf(&b, ",\"created\":%lld,\"active_from\":%lld,\"retire_at\":%lld}",
                        (long long)k->created_at, (long long)k->active_from,
                        (long long)k->retire_at);
    if (!rc)
        rc = buf_append(&b, "", 1);
    if (!rc)
        rc = put_key(st, k->k.kid, b.p, kind);
    cr_wipe(priv.p, priv.len);
    cr_wipe(b.p, b.len);
    buf_fini(&priv);
    buf_fini(&b);
    return rc;
}

static int new_key(struct store *st, enum tok_alg alg, int64_t now, int64_t active_from,
                   char kid[TOK_KID_MAX + 1])
{
    struct tok_ring_key k;
    uint8_t rnd[12];
    int rc;

    memset(&k, 0, sizeof(k));
    cr_random(rnd, sizeof(rnd));
    cr_b64url_encode(rnd, sizeof(rnd), k.k.kid, sizeof(k.k.kid));
    k.k.alg = alg;
    k.created_at = now;
    k.active_from = active_from;
    if (alg == TOK_ALG_ES256 || alg == TOK_ALG_RS256) {
        rc = cr_pkey_generate(alg == TOK_ALG_ES256 ? CR_ES256 : CR_RS256, &k.k.pkey);
        if (rc)
            return rc;
    } else {
        k.k.alg = TOK_ALG_EDDSA;
        k.k.sk = sodium_malloc(CR_ED25519_SK);
        if (!k.k.sk)
            return ERR_NOMEM;
        cr_ed25519_keypair(k.k.pk, k.k.sk);
    }
    rc = write_key(st, &k, STORE_OP_PUT_NEW);
    if (rc == ERR_OK && kid)
        memcpy(kid, k.k.kid, sizeof(k.k.kid));
    sodium_free(k.k.sk);
    cr_pkey_free(k.k.pkey);
    return rc;
}

int tok_keys_ensure(struct store *st, int64_t now)
{
    struct tok_ring r = {0};
    int rc = tok_ring_load(&r, st);

    for (int a = TOK_ALG_EDDSA; a <= TOK_ALG_RS256 && rc == ERR_OK; a++) {
        bool have = false;
        for (unsigned i = 0; i < r.n; i++)
            have |= r.keys[i].k.alg == (enum tok_alg)a;
        if (!have) /* (a store from before the ring held every algorithm gains the others) */
            rc = new_key(st, (enum tok_alg)a, now, now, NULL);
    }
    tok_ring_clear(&r);
    return rc;
}

int tok_keys_reseal(struct store *st, unsigned *resealed)
{
    struct tok_ring r = {0};
    *resealed = 0;
    if (!seal_key)
        return ERR_INVAL;
    int rc = load(&r, st, false);
    for (unsigned i = 0; rc == ERR_OK && i < r.n; i++)
        if (r.keys[i].in_clear && (rc = write_key(st, &r.keys[i], STORE_OP_REPLACE)) == ERR_OK)
            (*resealed)++;
    tok_ring_clear(&r);
    return rc;
}

int tok_keys_rotate(struct store *st, enum tok_alg alg, int64_t now, int64_t publish_ahead,
                    int64_t max_token_ttl, char kid_out[TOK_KID_MAX + 1], int64_t *from_out)
{
    struct tok_ring r = {0};
    int rc = tok_ring_load(&r, st);
    int64_t from = now + publish_ahead;

    unsigned kept = 0;

    if (rc)
        return rc;
    /* Keys are ordered by their start, in seconds: a rotation within the second the newest
     * key started would tie with it, and the ring could keep signing with the old one. */
    for (unsigned i = 0; i < r.n; i++) {
        if (r.keys[i].k.alg == alg && r.keys[i].active_from >= from)
            from = r.keys[i].active_from + 1;
        kept += !(r.keys[i].retire_at && r.keys[i].retire_at <= now);
    }
    if (from_out)
        *from_out = from;
    /* A ring that loads no more would stop every instance from signing. */
    if (kept >= TOK_RING_MAX) {
        tok_ring_clear(&r);
        return ERR_LIMIT;
    }
    for (unsigned i = 0; i < r.n && !rc; i++) {
        struct tok_ring_key *k = &r.keys[i];
        if (k->retire_at && k->retire_at <= now) {
            rc = put_key(st, k->k.kid, NULL, STORE_OP_DELETE);
        } else if (k->k.alg != alg) {
            continue;
        } else if (!k->retire_at || k->retire_at > from + max_token_ttl) {
            /* Stops signing when the new key starts, stays published until its tokens end. */
            k->retire_at = from + max_token_ttl;
            rc = write_key(st, k, STORE_OP_REPLACE);
        }
    }
    if (!rc)
        rc = new_key(st, alg, now, from, kid_out);
    tok_ring_clear(&r);
    return rc;
}

int tok_keys_rotate_by(struct store *st, const struct tok_key_policy *kp, int64_t now,
                       struct tok_key_rotation *out)
{
    struct tok_ring r = {0};
    unsigned kept = 0;
    int rc = tok_ring_load(&r, st);

    memset(out, 0, sizeof(*out));
    out->from = now + kp->publish_ahead_s;
    for (unsigned i = 0; i < r.n; i++)
        kept += !(r.keys[i].retire_at && r.keys[i].retire_at <= now);
    tok_ring_clear(&r);
    if (rc == ERR_OK && kept + TOK_ALG_N > TOK_RING_MAX)
        rc = ERR_LIMIT; /* (all or none: a key for every algorithm) */
    for (int a = TOK_ALG_EDDSA; a <= TOK_ALG_RS256 && rc == ERR_OK; a++) {
        int64_t from;
        rc = tok_keys_rotate(st, (enum tok_alg)a, now, kp->publish_ahead_s,
                             TOK_ACCESS_TTL_MAX_S + kp->leeway_s, out->keys[out->n].kid, &from);
        if (rc == ERR_OK) {
            out->keys[out->n++].alg = (enum tok_alg)a;
            if (from > out->from)
                out->from = from;
        }
    }
    return rc;
}

const char *tok_key_rotation_kid(const struct tok_key_rotation *rot, enum tok_alg alg)
{
    for (unsigned i = 0; i < rot->n; i++)
        if (rot->keys[i].alg == alg)
            return rot->keys[i].kid;
    return "";
}

void tok_keys_rotated(const struct tok_key_rotation *rot, const char *by)
{
    for (unsigned i = 0; i < rot->n; i++) {
        const char *kid = rot->keys[i].kid, *alg = tok_alg_name(rot->keys[i].alg);
        log_kv(LOG_INFO, "signing key rotated", "kid", kid, "alg", alg, "by", by, LOG_END);
        if (ev_wanted(EV_KEY_ROTATED)) {
            struct ev e;
            ev_begin(&e, EV_KEY_ROTATED);
            ev_str(&e, "kid", kid);
            ev_str(&e, "alg", alg);
            ev_int(&e, "active_from", rot->from);
            ev_str(&e, "by", by);
            ev_publish(&e);
        }
    }
}

int tok_discovery_json(struct buf *b, const char *issuer, const struct tok_ring *r,
                       enum tok_alg at_alg, enum tok_alg id_alg, bool password_grant)
{
    static const char *const methods = "[\"client_secret_basic\",\"client_secret_post\"]";
    /* the default first, then the others a client may name */
    const enum tok_alg order[] = {id_alg, TOK_ALG_RS256, TOK_ALG_ES256, TOK_ALG_EDDSA};
    const char *iss = issuer;
    char algs[64] = "";
    unsigned listed = 0;

    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        if (listed & (1u << order[o]))
            continue;
        for (unsigned i = 0; i < r->n; i++) {
            if (r->keys[i].k.alg == order[o]) {
                size_t l = strlen(algs);
                snprintf(algs + l, sizeof(algs) - l, "%s\"%s\"", l ? "," : "",
                         tok_alg_name(order[o]));
                listed |= 1u << order[o];
                break;
            }
        }
    }
    /* Exactly what works (RFC 8414, OpenID Connect Discovery 1.0). */
    int rc = buf_printf(
        b,
        "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/oauth2/authorize\","
        "\"end_session_endpoint\":\"%s/oauth2/logout\","
        "\"userinfo_endpoint\":\"%s/oauth2/userinfo\","
        "\"token_endpoint\":\"%s/oauth2/token\",\"jwks_uri\":\"%s/.well-known/jwks.json\","
        "\"introspection_endpoint\":\"%s/oauth2/introspect\","
        "\"revocation_endpoint\":\"%s/oauth2/revoke\","
        "\"grant_types_supported\":[\"authorization_code\",\"client_credentials\","
        "\"refresh_token\"%s],"
        "\"response_types_supported\":[\"code\"],"
        "\"response_modes_supported\":[\"query\",\"form_post\"],"
        "\"code_challenge_methods_supported\":[\"S256\"],"
        "\"authorization_response_iss_parameter_supported\":true,"
        "\"subject_types_supported\":[\"public\"],"
        "\"scopes_supported\":[\"openid\",\"profile\",\"email\",\"offline_access\"],"
        "\"claims_supported\":[\"iss\",\"sub\",\"aud\",\"exp\",\"iat\",\"auth_time\","
        "\"nonce\",\"azp\",\"at_hash\",\"sid\",\"preferred_username\",\"name\","
        "\"email\",\"email_verified\"],",
        iss, iss, iss, iss, iss, iss, iss, iss, password_grant ? ",\"password\"" : "");
    if (!rc)
        rc = buf_printf(b,
                        "\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\","
                        "\"client_secret_post\",\"none\"],"
                        "\"introspection_endpoint_auth_methods_supported\":%s,"
                        "\"revocation_endpoint_auth_methods_supported\":[\"client_secret_basic\","
                        "\"client_secret_post\",\"none\"],"
                        "\"token_endpoint_auth_signing_alg_values_supported\":[],"
                        "\"id_token_signing_alg_values_supported\":[%s],"
                        "\"access_token_signing_alg_values_supported\":[\"%s\"]}",
                        methods, algs, tok_alg_name(at_alg));
    return rc;
}

int tok_ring_admin_json(const struct tok_ring *r, int64_t now, struct buf *b)
{
    int rc = buf_puts(b, "[");
    for (unsigned i = 0; i < r->n && !rc; i++) {
        const struct tok_ring_key *k = &r->keys[i];
        const struct tok_ring_key *signer = tok_ring_signer(r, k->k.alg, now);
        rc = buf_printf(b,
                        "%s{\"kid\":\"%s\",\"alg\":\"%s\",\"created\":%lld,"
                        "\"active_from\":%lld,\"retire_at\":%lld,\"signing\":%s}",
                        i ? "," : "", k->k.kid, tok_alg_name(k->k.alg), (long long)k->created_at,
                        (long long)k->active_from, (long long)k->retire_at,
                        k == signer ? "true" : "false");
    }
    return rc ? rc : buf_puts(b, "]");
}

int tok_ring_metrics_text(const struct tok_ring *r, int64_t now, struct buf *b)
{
    int rc = buf_puts(b, "# HELP floodgate_signing_key_age_seconds How long the key that signs "
                         "now has signed, by algorithm.\n"
                         "# TYPE floodgate_signing_key_age_seconds gauge\n");
    for (int a = TOK_ALG_EDDSA; a <= TOK_ALG_RS256; a++) {
        const struct tok_ring_key *k = tok_ring_signer(r, (enum tok_alg)a, now);
        if (k)
            rc |= buf_printf(b, "floodgate_signing_key_age_seconds{alg=\"%s\"} %lld\n",
                             tok_alg_name((enum tok_alg)a), (long long)(now - k->active_from));
    }
    rc |= buf_puts(b, "# HELP floodgate_signing_key_successors Keys published that sign later "
                      "(the next key, announced in the JWKS ahead of its use), by algorithm.\n"
                      "# TYPE floodgate_signing_key_successors gauge\n");
    for (int a = TOK_ALG_EDDSA; a <= TOK_ALG_RS256; a++) {
        unsigned n = 0;
        for (unsigned i = 0; i < r->n; i++)
            n += r->keys[i].k.alg == (enum tok_alg)a && r->keys[i].active_from > now;
        rc |= buf_printf(b, "floodgate_signing_key_successors{alg=\"%s\"} %u\n",
                         tok_alg_name((enum tok_alg)a), n);
    }
    return rc;
}
