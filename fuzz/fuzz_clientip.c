/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: client-address extraction from X-Forwarded-For and Forwarded. The input is
 * split at the first NUL into the two headers; the peer is a trusted proxy so the headers
 * are read. Invariant: the answer is always an address inet_pton accepts, and an IPv4 answer
 * is written exactly as inet_ntop writes it (pol_client_ip writes IPv4 itself).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_clientip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *out)
{
    char a[16], again[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET, out, a) == 1) {
        if (!inet_ntop(AF_INET, a, again, sizeof(again)) || strcmp(again, out) != 0)
            abort();
    } else if (inet_pton(AF_INET6, out, a) != 1) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pol_proxies *p;
    char err[128], out[64];
    struct sockaddr_in sa;

    if (!p && pol_proxies_parse("127.0.0.0/8, 10.0.0.0/8, ::1", &p, err, sizeof(err)))
        abort();
    const char *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - (const char *)data) : size;
    struct str xff = {(const char *)data, n1};
    struct str fwd = nul ? (struct str){nul + 1, size - n1 - 1} : STR_NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000001);
    pol_client_ip(p, (struct sockaddr *)&sa, xff, fwd, out, sizeof(out));
    check(out);
    pol_client_ip(p, (struct sockaddr *)&sa, STR_NULL, fwd, out, sizeof(out));
    check(out);
    return 0;
}
