/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a refresh record's bytes as a store gives them back (store_refresh_decode).
 * The embedded store reads its own file; the Redis store reads what a Redis answers, over
 * a socket. Beyond the sanitizers: a record that decodes has strings within their bounds,
 * encodes again to the very bytes read (a version 2 record; one of version 1 to the same
 * fields in version 2), and no record of another length or version decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store.h"
#include "store/store_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_refresh r, again;
    uint8_t enc[STORE_REFRESH_ENC_MAX];

    memset(&r, 0, sizeof(r)); /* (compared whole below: padding and the strings' tails) */
    memset(&again, 0, sizeof(again));
    if (store_refresh_decode(data, size, &r) != ERR_OK)
        return 0;
    if (data[0] != STORE_REC_VERSION && data[0] != STORE_REC_REFRESH_V2)
        abort();
    if (strnlen(r.sub, sizeof(r.sub)) > STORE_SUB_MAX ||
        strnlen(r.client_id, sizeof(r.client_id)) > STORE_CLIENT_MAX ||
        strnlen(r.scope, sizeof(r.scope)) > STORE_SCOPE_MAX)
        abort();
    size_t n = store_refresh_encode(&r, enc);
    if (n == 0)
        abort();
    if (data[0] == STORE_REC_REFRESH_V2 && (n != size || memcmp(enc, data, n) != 0))
        abort();
    if (data[0] == STORE_REC_VERSION && (n != size + 8 || r.gen != 0))
        abort();
    if (store_refresh_decode(enc, n, &again) != ERR_OK || memcmp(&again, &r, sizeof(r)) != 0)
        abort();
    return 0;
}
