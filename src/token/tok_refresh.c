/* SPDX-License-Identifier: MIT */
/* Refresh-token strings, digests and successors; see tok_refresh.h. */
#include "token/tok_refresh.h"

#include <string.h>

#include "core/err.h"
#include "store/store.h"

#define HEAD 3 /* the group: 2 bytes in base64url */
#define BODY TOK_REFRESH_LEN_V1

void tok_refresh_new(unsigned group, char out[TOK_REFRESH_LEN + 1])
{
    uint8_t g[2], raw[32];
    store_group_put(g, group);
    cr_b64url_encode(g, sizeof(g), out, HEAD + 1);
    cr_random(raw, sizeof(raw));
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

/* The group a token of the current kind carries: ERR_OK, or ERR_INVAL. */
static int group_of(struct str token, uint8_t g[2])
{
    size_t n;
    uint8_t raw[3];
    if (cr_b64url_decode(token.p, HEAD, raw, sizeof(raw), &n) || n != 2 ||
        ((unsigned)raw[0] << 8 | raw[1]) >= STORE_GROUPS)
        return ERR_INVAL;
    memcpy(g, raw, 2);
    return ERR_OK;
}

static int body_ok(const char *p)
{
    uint8_t raw[33];
    size_t n;
    return cr_b64url_decode(p, BODY, raw, sizeof(raw), &n) == ERR_OK && n == 32;
}

int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN])
{
    uint8_t g[2];

    if (token.len == TOK_REFRESH_LEN_V1 && body_ok(token.p)) {
        keyed(key, "refresh\n", token, out);
        return ERR_OK;
    }
    if (token.len != TOK_REFRESH_LEN || group_of(token, g) || !body_ok(token.p + HEAD))
        return ERR_INVAL;
    keyed(key, "refresh\n", token, out);
    memcpy(out, g, 2); /* where the store keeps it (the rest stays 240 bits of hash) */
    return ERR_OK;
}

void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                           char out[TOK_REFRESH_LEN + 1])
{
    uint8_t raw[CR_HASH_LEN];
    size_t head = token.len == TOK_REFRESH_LEN ? HEAD : 0; /* (a token before groups: none) */
    keyed(key, "successor\n", token, raw);
    memcpy(out, token.p, head);
    cr_b64url_encode(raw, sizeof(raw), out + head, BODY + 1);
    cr_wipe(raw, sizeof(raw));
}
