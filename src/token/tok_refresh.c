/* SPDX-License-Identifier: MIT */
/* Refresh-token strings, digests and successors; see tok_refresh.h. */
#include "token/tok_refresh.h"

#include <string.h>

#include "core/err.h"

void tok_refresh_new(char out[TOK_REFRESH_LEN + 1])
{
    uint8_t raw[32];
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), out, TOK_REFRESH_LEN + 1);
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

int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN])
{
    uint8_t raw[33];
    size_t n;

    if (token.len != TOK_REFRESH_LEN ||
        cr_b64url_decode(token.p, token.len, raw, sizeof(raw), &n) || n != 32)
        return ERR_INVAL;
    keyed(key, "refresh\n", token, out);
    return ERR_OK;
}

void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                           char out[TOK_REFRESH_LEN + 1])
{
    uint8_t raw[CR_HASH_LEN];
    keyed(key, "successor\n", token, raw);
    cr_b64url_encode(raw, sizeof(raw), out, TOK_REFRESH_LEN + 1);
    cr_wipe(raw, sizeof(raw));
}
