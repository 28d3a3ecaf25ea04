/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the grant an authorization code carries (tok_code_grant_unpack; the bytes
 * the core/pack.h reader takes apart). It runs only on bytes that opened under the server
 * key, but a reader of records is fuzzed all the same. Beyond the sanitizers: a grant that
 * unpacks has terminated fields within their bounds, packs again, and the packed bytes
 * unpack to the same grant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "token/tok_code.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct tok_code_grant *a, const struct tok_code_grant *b)
{
    if (strcmp(a->client_id, b->client_id) || strcmp(a->sub, b->sub) || strcmp(a->sid, b->sid) ||
        strcmp(a->scope, b->scope) || strcmp(a->nonce, b->nonce) ||
        strcmp(a->challenge, b->challenge) || strcmp(a->session, b->session) || a->gen != b->gen ||
        a->auth_time != b->auth_time || a->expires_at != b->expires_at)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tok_code_grant g, back;
    static uint8_t again[TOK_GRANT_MAX];
    uint8_t rd[16];
    size_t n;

    if (tok_code_grant_unpack(data, size, &g, rd) != ERR_OK)
        return 0;
    if (strlen(g.client_id) > STORE_CLIENT_MAX || strlen(g.scope) > TOK_SCOPE_MAX ||
        strlen(g.nonce) > TOK_NONCE_MAX || strlen(g.challenge) != TOK_CHALLENGE_LEN)
        abort();
    if (tok_code_grant_pack(&g, again, sizeof(again), &n) != ERR_OK ||
        tok_code_grant_unpack(again, n, &back, rd) != ERR_OK)
        abort();
    same(&g, &back);
    return 0;
}
