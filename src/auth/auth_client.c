/* SPDX-License-Identifier: MIT */
/* Client records, secrets and scope checks; see auth_client.h. */
#include "auth/auth_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/auth_client_web.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/mem.h"
#include "json/json.h"
#include "store/store.h"
#include "token/tok_jws.h"
#include "token/tok_scope.h"

static const char *const grant_names[] = {"client_credentials", "refresh_token", "password",
                                          "authorization_code"};
#define NGRANTS 4

const char *auth_grant_name(unsigned bit)
{
    for (unsigned i = 0; i < NGRANTS; i++)
        if (bit == 1u << i)
            return grant_names[i];
    return NULL;
}

int auth_grants_parse(const char *s, unsigned *out)
{
    unsigned g = 0;

    while (*s) {
        size_t n = strcspn(s, ", ");
        if (n) {
            unsigned i;
            for (i = 0; i < NGRANTS; i++)
                if (strlen(grant_names[i]) == n && strncmp(s, grant_names[i], n) == 0)
                    break;
            if (i == NGRANTS)
                return ERR_INVAL;
            g |= 1u << i;
        }
        s += n;
        if (*s)
            s++;
    }
    *out = g;
    return ERR_OK;
}

int auth_grants_json(unsigned grants, struct buf *out)
{
    int rc = buf_puts(out, "[");
    for (unsigned i = 0, n = 0; i < NGRANTS && !rc; i++)
        if (grants & (1u << i))
            rc = buf_printf(out, "%s\"%s\"", n++ ? "," : "", grant_names[i]);
    return rc ? rc : buf_puts(out, "]");
}

static int put_kv(struct buf *b, const char *name, const char *v, int comma)
{
    int rc = buf_printf(b, "%s\"%s\":\"", comma ? "," : "", name);
    if (!rc)
        rc = buf_json_escape(b, v, strlen(v));
    return rc ? rc : buf_puts(b, "\"");
}

int auth_client_encode(const struct auth_client *c, const struct auth_client_web *w,
                       struct buf *out)
{
    char hex[2 * CR_HASH_LEN + 1];

    hex_encode(c->secret_digest, CR_HASH_LEN, hex);
    int rc = buf_puts(out, "{");
    if (!rc)
        rc = put_kv(out, "name", c->name, 0);
    if (!rc)
        rc = put_kv(out, "secret_digest", hex, 1);
    if (!rc)
        rc = buf_puts(out, ",\"grants\":");
    if (!rc)
        rc = auth_grants_json(c->grants, out);
    if (!rc)
        rc = put_kv(out, "scope", c->scopes, 1);
    if (!rc)
        rc = put_kv(out, "audience", c->audiences, 1);
    if (!rc)
        rc = buf_printf(out,
                        ",\"access_ttl\":%lld,\"refresh_ttl\":%lld,\"introspection\":%s,"
                        "\"created\":%lld",
                        (long long)c->access_ttl, (long long)c->refresh_ttl,
                        c->introspect_any ? "true" : "false", (long long)c->created_at);
    if (!rc)
        rc = auth_client_flags_json(c, out);
    if (!rc && w)
        rc = auth_client_web_json(w, out);
    return rc ? rc : buf_puts(out, "}");
}

int auth_client_flags_json(const struct auth_client *c, struct buf *out)
{
    int rc = buf_printf(out, ",\"token_endpoint_auth_method\":\"%s\",\"first_party\":%s",
                        c->public_client ? "none" : "client_secret_basic",
                        c->first_party ? "true" : "false");
    if (!rc && c->id_token_alg)
        rc = buf_printf(out, ",\"id_token_signed_response_alg\":\"%s\"",
                        tok_alg_name((enum tok_alg)c->id_token_alg));
    return rc;
}

int auth_client_validate(const struct auth_client *c, const struct auth_client_web *w,
                         const char **why)
{
    unsigned n = w ? w->n[AUTH_WEB_REDIRECT] : 0;
    *why = "the authorization_code grant needs at least one redirect URI";
    if ((c->grants & AUTH_GRANT_AUTHORIZATION_CODE) && !n)
        return ERR_INVAL;
    *why = "a public client may use authorization_code and refresh_token only, and may not "
           "introspect";
    if (c->public_client &&
        ((c->grants & ~(AUTH_GRANT_AUTHORIZATION_CODE | AUTH_GRANT_REFRESH_TOKEN)) ||
         c->introspect_any))
        return ERR_INVAL;
    *why = "id_token_signed_response_alg is RS256, ES256 or EdDSA";
    if (c->id_token_alg && !tok_alg_name((enum tok_alg)c->id_token_alg))
        return ERR_INVAL;
    return ERR_OK;
}

/* The client's fields from its parsed record. */
static int decode_obj(json_t *j, const char *id, size_t idlen, struct auth_client *c)
{
    memset(c, 0, sizeof(*c));
    if (idlen > AUTH_CLIENT_ID_MAX)
        return ERR_INVAL;
    memcpy(c->id, id, idlen);
    if (json_copy_str(j, "name", c->name, sizeof(c->name)) ||
        json_copy_str(j, "scope", c->scopes, sizeof(c->scopes)) ||
        json_copy_str(j, "audience", c->audiences, sizeof(c->audiences)) ||
        hex_decode(json_string_value(json_object_get(j, "secret_digest")), c->secret_digest,
                   CR_HASH_LEN))
        return ERR_INVAL;
    json_t *g = json_object_get(j, "grants");
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v)
    {
        unsigned bit;
        if (!json_is_string(v) || auth_grants_parse(json_string_value(v), &bit))
            return ERR_INVAL;
        c->grants |= bit;
    }
    c->access_ttl = json_integer_value(json_object_get(j, "access_ttl"));
    c->refresh_ttl = json_integer_value(json_object_get(j, "refresh_ttl"));
    c->introspect_any = json_is_true(json_object_get(j, "introspection"));
    c->created_at = json_integer_value(json_object_get(j, "created"));
    const char *m = json_string_value(json_object_get(j, "token_endpoint_auth_method"));
    c->public_client = m && strcmp(m, "none") == 0;
    c->first_party = json_is_true(json_object_get(j, "first_party"));
    const char *alg = json_string_value(json_object_get(j, "id_token_signed_response_alg"));
    c->id_token_alg = alg ? (uint8_t)tok_alg_parse(alg) : 0;
    return ERR_OK;
}

int auth_client_decode(const char *id, size_t idlen, const char *json, size_t n,
                       struct auth_client *c)
{
    json_t *j = json_loadb(json, n, 0, NULL);
    int rc = j ? decode_obj(j, id, idlen, c) : ERR_INVAL;
    json_decref(j);
    return rc;
}

int auth_client_decode_all(const char *id, size_t idlen, const char *json, size_t n,
                           struct auth_client *c, struct auth_client_web *w)
{
    const char *why;
    json_t *j = json_loadb(json, n, 0, NULL); /* (once for both) */
    int rc = j ? decode_obj(j, id, idlen, c) : ERR_INVAL;
    if (rc == ERR_OK)
        rc = auth_client_web_from_json(j, w, &why);
    json_decref(j);
    return rc;
}

int auth_client_decode_web(const char *json, size_t n, struct auth_client_web *w)
{
    const char *why;
    json_t *j = json_loadb(json, n, 0, NULL);
    int rc = j ? auth_client_web_from_json(j, w, &why) : ERR_INVAL;
    json_decref(j);
    return rc;
}

void auth_secret_digest(const uint8_t key[CR_HASH_KEY_LEN], const char *secret, size_t n,
                        uint8_t out[CR_HASH_LEN])
{
    uint8_t msg[256];
    static const char label[] = "floodgate client secret\n";

    /* Secrets longer than this are not ours; hash a fixed prefix so timing stays flat. */
    if (n > sizeof(msg) - sizeof(label))
        n = sizeof(msg) - sizeof(label);
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, secret, n);
    cr_keyed_hash(out, key, msg, sizeof(label) - 1 + n);
    cr_wipe(msg, sizeof(msg));
}

static int write_client(struct store *st, const struct auth_client *c,
                        const struct auth_client_web *w, enum store_op_kind kind)
{
    struct buf b;

    buf_init(&b, 65536);
    int rc = auth_client_encode(c, w, &b);
    if (rc == ERR_OK)
        rc = store_exec_kv(st, kind, STORE_T_CLIENTS, c->id, b.p, b.len);
    buf_fini(&b);
    return rc;
}

static void new_secret(const uint8_t key[CR_HASH_KEY_LEN], struct auth_client *c,
                       char secret_out[AUTH_SECRET_LEN + 1])
{
    uint8_t raw[32];
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), secret_out, AUTH_SECRET_LEN + 1);
    cr_wipe(raw, sizeof(raw));
    auth_secret_digest(key, secret_out, AUTH_SECRET_LEN, c->secret_digest);
}

int auth_client_create(struct store *st, const uint8_t key[CR_HASH_KEY_LEN], struct auth_client *c,
                       const struct auth_client_web *w, int64_t now,
                       char secret_out[AUTH_SECRET_LEN + 1])
{
    uint8_t rnd[16];

    do { /* an id that begins with '-' would read as a flag on the CLI's command line */
        cr_random(rnd, sizeof(rnd));
        cr_b64url_encode(rnd, sizeof(rnd), c->id, sizeof(c->id));
    } while (c->id[0] == '-');
    c->created_at = now;
    if (c->public_client) { /* no secret: the digest of none matches no presented one */
        secret_out[0] = '\0';
        memset(c->secret_digest, 0, sizeof(c->secret_digest));
    } else {
        new_secret(key, c, secret_out);
    }
    return write_client(st, c, w, STORE_OP_PUT_NEW);
}

int auth_client_get(struct store *st, const char *id, size_t idlen, struct auth_client *c)
{
    struct buf b;

    if (idlen == 0 || idlen > AUTH_CLIENT_ID_MAX)
        return ERR_NOTFOUND;
    buf_init(&b, 16384);
    int rc = store_get(st, STORE_T_CLIENTS, id, idlen, &b, NULL, NULL);
    if (rc == ERR_OK)
        rc = auth_client_decode(id, idlen, b.p, b.len, c);
    buf_fini(&b);
    return rc;
}

int auth_client_get_web(struct store *st, const char *id, struct auth_client *c,
                        struct auth_client_web *w)
{
    struct buf b;
    size_t idlen = strlen(id);

    if (idlen == 0 || idlen > AUTH_CLIENT_ID_MAX)
        return ERR_NOTFOUND;
    buf_init(&b, 65536);
    int rc = store_get(st, STORE_T_CLIENTS, id, idlen, &b, NULL, NULL);
    if (rc == ERR_OK)
        rc = w ? auth_client_decode_all(id, idlen, b.p, b.len, c, w)
               : auth_client_decode(id, idlen, b.p, b.len, c);
    buf_fini(&b);
    return rc;
}

/* A change to one field of a client, its lists kept. */
static int update_client(struct store *st, const char *id, const uint8_t *key, bool any,
                         char *secret_out)
{
    struct auth_client c;
    struct auth_client_web *w = mem_malloc(sizeof(*w));
    int rc = w ? auth_client_get_web(st, id, &c, w) : ERR_NOMEM;

    if (rc == ERR_OK && secret_out && c.public_client)
        rc = ERR_INVAL; /* a public client has no secret to rotate */
    if (rc == ERR_OK) {
        if (secret_out)
            new_secret(key, &c, secret_out);
        else
            c.introspect_any = any;
        rc = write_client(st, &c, w, STORE_OP_REPLACE);
    }
    mem_free(w);
    return rc;
}

int auth_client_rotate_secret(struct store *st, const uint8_t key[CR_HASH_KEY_LEN], const char *id,
                              char secret_out[AUTH_SECRET_LEN + 1])
{
    return update_client(st, id, key, false, secret_out);
}

int auth_client_set_introspection(struct store *st, const char *id, bool any)
{
    return update_client(st, id, NULL, any, NULL);
}

struct cc_slot {
    uint64_t generation; /* 0: empty */
    struct auth_client c;
};

/* A Basic credential that authenticated: the keyed hash of the header value as sent. */
struct cred_slot {
    uint64_t generation; /* 0: empty */
    uint8_t tag[crypto_shorthash_siphashx24_BYTES];
    char id[AUTH_CLIENT_ID_MAX + 1];
};

#define CRED_SLOTS 64

struct auth_client_cache {
    unsigned n;
    struct cc_slot *slots;
    uint8_t cred_key[crypto_shorthash_siphashx24_KEYBYTES]; /* random, this cache's */
    struct cred_slot creds[CRED_SLOTS];
};

struct auth_client_cache *auth_client_cache_new(unsigned slots)
{
    struct auth_client_cache *cc = xcalloc(1, sizeof(*cc));
    cc->n = slots ? slots : 1;
    cc->slots = xcalloc(cc->n, sizeof(struct cc_slot));
    cr_random(cc->cred_key, sizeof(cc->cred_key));
    return cc;
}

void auth_client_cache_free(struct auth_client_cache *cc)
{
    if (!cc)
        return;
    mem_free(cc->slots);
    sodium_memzero(cc->creds, sizeof(cc->creds));
    mem_free(cc);
}

static unsigned slot_of(const char *id, size_t n, unsigned slots)
{
    return str_fnv1a(id, n) % slots; /* (ids are random: no keyed hash is needed) */
}

static bool slot_holds(const struct cc_slot *s, const char *id, size_t idlen)
{
    return s->generation && strlen(s->c.id) == idlen && memcmp(s->c.id, id, idlen) == 0;
}

int auth_client_cache_find(struct auth_client_cache *cc, uint64_t gen, const char *id, size_t idlen,
                           struct auth_client *c)
{
    if (idlen == 0 || idlen > AUTH_CLIENT_ID_MAX)
        return ERR_NOTFOUND;
    struct cc_slot *s = &cc->slots[slot_of(id, idlen, cc->n)];
    if (!gen || s->generation != gen || !slot_holds(s, id, idlen))
        return ERR_NOTFOUND;
    *c = s->c;
    return ERR_OK;
}

void auth_client_cache_put(struct auth_client_cache *cc, uint64_t gen, int rc, const char *id,
                           size_t idlen, const struct auth_client *c)
{
    if (idlen == 0 || idlen > AUTH_CLIENT_ID_MAX)
        return;
    struct cc_slot *s = &cc->slots[slot_of(id, idlen, cc->n)];
    if (rc == ERR_OK) {
        s->c = *c;
        s->generation = gen;
    } else if (rc == ERR_NOTFOUND && slot_holds(s, id, idlen)) {
        s->generation = 0; /* deleted: drop the stale copy */
    }
}

static struct cred_slot *cred_slot(struct auth_client_cache *cc, struct str cred,
                                   uint8_t tag[crypto_shorthash_siphashx24_BYTES])
{
    uint64_t h;
    crypto_shorthash_siphashx24(tag, (const unsigned char *)cred.p, cred.len, cc->cred_key);
    memcpy(&h, tag, sizeof(h));
    return &cc->creds[h % CRED_SLOTS];
}

int auth_client_cache_find_cred(struct auth_client_cache *cc, uint64_t gen, struct str cred,
                                struct auth_client *c)
{
    uint8_t tag[crypto_shorthash_siphashx24_BYTES];
    struct cred_slot *s = cred_slot(cc, cred, tag);
    if (!gen || s->generation != gen || !cr_eq(s->tag, tag, sizeof(tag)))
        return ERR_NOTFOUND;
    return auth_client_cache_find(cc, gen, s->id, strlen(s->id), c);
}

void auth_client_cache_put_cred(struct auth_client_cache *cc, uint64_t gen, struct str cred,
                                const char *id)
{
    uint8_t tag[crypto_shorthash_siphashx24_BYTES];
    struct cred_slot *s = cred_slot(cc, cred, tag);
    if (!gen || strlen(id) > AUTH_CLIENT_ID_MAX)
        return;
    memcpy(s->tag, tag, sizeof(tag));
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->generation = gen;
}

int auth_key_load(const char *path, uint8_t key[CR_HASH_KEY_LEN], char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        uint8_t k[CR_HASH_KEY_LEN];
        cr_random(k, sizeof(k));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ssize_t w = write(fd, k, sizeof(k));
            int ok = w == (ssize_t)sizeof(k) && fsync(fd) == 0;
            close(fd);
            cr_wipe(k, sizeof(k));
            if (!ok) {
                unlink(path);
                snprintf(err, cap, "cannot write %s", path);
                return ERR_IO;
            }
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    /* A key others may read is no longer secret, and a file of another length is not a
     * key we made (a truncated copy, the wrong file): refuse both rather than go on. */
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, cap, "%s is not a regular file", path);
        return ERR_IO;
    }
    if (sb.st_mode & 077) {
        close(fd);
        snprintf(err, cap,
                 "%s is readable or writable by group or others (mode %03o): "
                 "chmod 600 it, and consider it exposed",
                 path, (unsigned)(sb.st_mode & 0777));
        return ERR_IO;
    }
    ssize_t r = sb.st_size == CR_HASH_KEY_LEN ? read(fd, key, CR_HASH_KEY_LEN) : -1;
    close(fd);
    if (r != CR_HASH_KEY_LEN) {
        snprintf(err, cap, "%s must hold exactly %d bytes (it holds %lld)", path, CR_HASH_KEY_LEN,
                 (long long)sb.st_size);
        return ERR_IO;
    }
    return ERR_OK;
}

int auth_client_scope(const struct auth_client *c, const struct str *want, char *out, size_t cap)
{
    if (!want) {
        str_copy(out, cap, c->scopes);
        return strlen(c->scopes) < cap ? ERR_OK : ERR_INVAL;
    }
    if (tok_scope_normalize(*want, out, cap) || !tok_scope_subset(str_c(out), c->scopes))
        return ERR_INVAL;
    return ERR_OK;
}

int auth_client_audience(const struct auth_client *c, const struct str *want, char *out, size_t cap)
{
    if (!want) { /* the first of the client's */
        size_t n = strcspn(c->audiences, " ");
        if (n >= cap)
            n = 0;
        memcpy(out, c->audiences, n);
        out[n] = '\0';
        return ERR_OK;
    }
    /* exactly one item of the client's list */
    if (!want->len || memchr(want->p, ' ', want->len) || want->len >= cap ||
        !tok_scope_subset(*want, c->audiences))
        return ERR_INVAL;
    memcpy(out, want->p, want->len);
    out[want->len] = '\0';
    return ERR_OK;
}
