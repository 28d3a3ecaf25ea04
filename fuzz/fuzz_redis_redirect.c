/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a Redis Cluster node's redirection (redis_redirect_parse) and the hash slot
 * of any key. Beyond the sanitizers: a redirection read has a slot and a port in range and
 * a host without spaces, and written back ("MOVED <slot> <host>:<port>") reads the same; a
 * key's slot is below 16384 and is its tag's slot when it has one. The same bytes as a
 * CLUSTER INFO answer: "ok" only when they hold the line "cluster_state:ok".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "redis/redis_slot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum redis_redirect k, k2;
    unsigned slot, slot2;
    char host[REDIS_HOST_MAX + 1], host2[REDIS_HOST_MAX + 1], again[REDIS_HOST_MAX + 32];
    int port, port2;

    if (redis_key_slot(data, size) >= REDIS_SLOTS)
        abort();
    if (redis_cluster_info_ok((const char *)data, size) &&
        !memmem(data, size, "cluster_state:ok", 16))
        abort();
    if (redis_redirect_parse((const char *)data, size, &k, &slot, host, &port) != ERR_OK)
        return 0;
    if (slot >= REDIS_SLOTS || port < 1 || port > 65535 || strchr(host, ' '))
        abort();
    int n = snprintf(again, sizeof(again), "%s %u %s:%d", k == REDIS_MOVED ? "MOVED" : "ASK", slot,
                     host, port);
    if (n < 0 || (size_t)n >= sizeof(again) ||
        redis_redirect_parse(again, (size_t)n, &k2, &slot2, host2, &port2) != ERR_OK || k2 != k ||
        slot2 != slot || port2 != port || strcmp(host, host2) != 0)
        abort();
    return 0;
}
