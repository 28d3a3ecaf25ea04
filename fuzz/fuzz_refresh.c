/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a refresh token as a client presents it (tok_refresh_digest: a string of any
 * bytes taken apart into its group, its stamp and its secret). Beyond the sanitizers: a
 * string that has a digest is 43 or 46 characters, its digest names a group below
 * STORE_GROUPS, its successor has a digest in the same group carrying the successor's
 * stamp (the digest tok_refresh_successor gives with it is tok_refresh_digest's of it), and
 * the successor is found again from that digest alone (as a rotation answered again in the
 * grace window finds it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store.h"
#include "token/tok_refresh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[CR_HASH_KEY_LEN] = {0x5a, 1, 2, 3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t d[CR_HASH_LEN], sd[CR_HASH_LEN], given[CR_HASH_LEN];
    char succ[TOK_REFRESH_LEN + 1], again[TOK_REFRESH_LEN + 1];
    const int64_t stamp = 0x0006123456789abc;
    struct str tok = {(const char *)data, size};

    if (tok_refresh_digest(key, tok, d) != ERR_OK)
        return 0;
    if (size != TOK_REFRESH_LEN && size != TOK_REFRESH_LEN_V1)
        abort();
    tok_refresh_successor(key, tok, stamp, succ, given);
    if (tok_refresh_digest(key, str_c(succ), sd) != ERR_OK || memcmp(sd, given, sizeof(sd)) != 0)
        abort();
    if (size == TOK_REFRESH_LEN) {
        uint64_t s = 0;
        for (int i = 2; i < 10; i++)
            s = s << 8 | sd[i];
        if (store_group_in(sd) != store_group_in(d) || s != (uint64_t)stamp ||
            strlen(succ) != TOK_REFRESH_LEN)
            abort();
    }
    if (tok_refresh_successor_of(key, tok, sd, again) != ERR_OK || strcmp(again, succ) != 0)
        abort();
    return 0;
}
