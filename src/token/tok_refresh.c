/* SPDX-License-Identifier: MIT */
/* Refresh-token strings, digests and successors; see tok_refresh.h. */
#include "token/tok_refresh.h"

#include <stdbool.h>
#include <string.h>

#include "core/err.h"
#include "store/store.h"

#define HEAD    3 /* the group: 2 bytes in base64url */
#define BODY    TOK_REFRESH_LEN_V1
#define RAW     32   /* the body's bytes */
#define STAMP   8    /* of which the stamp, first, in a stamped token */
#define STAMPED 0x80 /* in the group's first byte */

static void put_head(unsigned group, char *out)
{
    uint8_t g[2];
    store_group_put(g, group);
    g[0] |= STAMPED;
    cr_b64url_encode(g, sizeof(g), out, HEAD + 1);
}

static void put_stamp(uint8_t *p, int64_t us)
{
    for (int i = 0; i < STAMP; i++)
        p[i] = (uint8_t)((uint64_t)us >> (56 - 8 * i));
}

static int64_t get_stamp(const uint8_t *p)
{
    uint64_t us = 0;
    for (int i = 0; i < STAMP; i++)
        us = us << 8 | p[i];
    return (int64_t)us;
}

void tok_refresh_new(unsigned group, int64_t stamp_us, char out[TOK_REFRESH_LEN + 1])
{
    uint8_t raw[RAW];
    put_head(group, out);
    put_stamp(raw, stamp_us);
    cr_random(raw + STAMP, RAW - STAMP);
    cr_b64url_encode(raw, sizeof(raw), out + HEAD, BODY + 1);
    cr_wipe(raw, sizeof(raw));
}

static void keyed(const uint8_t *key, const char *label, struct str token, uint8_t *out)
{
    uint8_t msg[16 + TOK_REFRESH_LEN];
    size_t l = strlen(label);

    memcpy(msg, label, l);
    memcpy(msg + l, token.p, token.len);
    cr_keyed_hash(out, key, msg, l + token.len);
    cr_wipe(msg, sizeof(msg));
}

/* The head of a token of the current kind: ERR_OK with its group and whether it is stamped,
 * or ERR_INVAL. */
static int head_of(struct str token, unsigned *group, bool *stamped)
{
    size_t n;
    uint8_t raw[3];
    if (cr_b64url_decode(token.p, HEAD, raw, sizeof(raw), &n) || n != 2)
        return ERR_INVAL;
    *stamped = (raw[0] & STAMPED) != 0;
    *group = (unsigned)(raw[0] & ~STAMPED) << 8 | raw[1];
    return *group < STORE_GROUPS ? ERR_OK : ERR_INVAL;
}

/* The 32 bytes of a body (43 characters): ERR_OK, or ERR_INVAL. */
static int body_of(const char *p, uint8_t raw[RAW + 1])
{
    size_t n;
    return cr_b64url_decode(p, BODY, raw, RAW + 1, &n) == ERR_OK && n == RAW ? ERR_OK : ERR_INVAL;
}

/* The digest of a token of 46 characters in `group`, whose body begins with `stamp` (NULL:
 * a token from before stamps). */
static void grouped_digest(const uint8_t *key, struct str token, unsigned group,
                           const uint8_t *stamp, uint8_t *out)
{
    keyed(key, "refresh\n", token, out);
    store_group_put(out, group); /* where the store keeps it */
    if (stamp)
        memcpy(out + 2, stamp, STAMP); /* where LMDB keeps it; 176 bits of hash stay */
}

int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN])
{
    uint8_t raw[RAW + 1];
    unsigned group;
    bool stamped;
    int rc = ERR_INVAL;

    if (token.len == TOK_REFRESH_LEN_V1 && body_of(token.p, raw) == ERR_OK) {
        keyed(key, "refresh\n", token, out);
        rc = ERR_OK;
    } else if (token.len == TOK_REFRESH_LEN && head_of(token, &group, &stamped) == ERR_OK &&
               body_of(token.p + HEAD, raw) == ERR_OK) {
        grouped_digest(key, token, group, stamped ? raw : NULL, out);
        rc = ERR_OK;
    }
    cr_wipe(raw, sizeof(raw));
    return rc;
}

/* The successor of a token of before stamps, and of one from before groups. */
static void successor_unstamped(const uint8_t *key, struct str token, char *out)
{
    uint8_t raw[CR_HASH_LEN];
    size_t head = token.len == TOK_REFRESH_LEN ? HEAD : 0;
    keyed(key, "successor\n", token, raw);
    memcpy(out, token.p, head);
    cr_b64url_encode(raw, sizeof(raw), out + head, BODY + 1);
    cr_wipe(raw, sizeof(raw));
}

void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token, int64_t stamp_us,
                           char out[TOK_REFRESH_LEN + 1], uint8_t digest[CR_HASH_LEN])
{
    uint8_t raw[STAMP + CR_HASH_LEN];
    unsigned group;
    bool stamped;

    if (token.len != TOK_REFRESH_LEN || head_of(token, &group, &stamped)) {
        successor_unstamped(key, token, out); /* (one from before groups: of its kind) */
        if (tok_refresh_digest(key, str_c(out), digest))
            memset(digest, 0, CR_HASH_LEN); /* (not well-formed: the caller's to check) */
        return;
    }
    put_head(group, out);
    put_stamp(raw, stamp_us);
    keyed(key, "successor\n", token, raw + STAMP); /* its first 24 bytes are used */
    cr_b64url_encode(raw, RAW, out + HEAD, BODY + 1);
    /* its digest from the bytes just encoded instead of decoding them again (two
     * constant-time decodes, about 4,000 instructions) */
    grouped_digest(key, (struct str){out, TOK_REFRESH_LEN}, group, raw, digest);
    cr_wipe(raw, sizeof(raw));
}

int tok_refresh_successor_of(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                             const uint8_t digest[CR_HASH_LEN], char out[TOK_REFRESH_LEN + 1])
{
    uint8_t d[CR_HASH_LEN];

    /* stamped when it was made: the stamp is the one its digest kept */
    tok_refresh_successor(key, token, get_stamp(digest + 2), out, d);
    if (cr_eq(d, digest, sizeof(d)))
        return ERR_OK;
    /* made before stamps (or a token from before groups: of its kind) */
    successor_unstamped(key, token, out);
    if (tok_refresh_digest(key, str_c(out), d) == ERR_OK && cr_eq(d, digest, sizeof(d)))
        return ERR_OK;
    out[0] = '\0';
    return ERR_INVAL;
}
