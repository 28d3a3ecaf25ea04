/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "policy/pol_clientip.h"

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static const char *client(const struct pol_proxies *p, const char *peer, const char *xff,
                          const char *fwd)
{
    static char out[64];
    struct sockaddr_in sa = v4(peer);
    pol_client_ip(p, (struct sockaddr *)&sa, xff ? str_c(xff) : STR_NULL,
                  fwd ? str_c(fwd) : STR_NULL, out, sizeof(out));
    return out;
}

TEST(client_ip_rules)
{
    struct pol_proxies *p;
    char err[128];
    ASSERT_EQ_INT(pol_proxies_parse("127.0.0.1, 10.0.0.0/8 ::1", &p, err, sizeof(err)), 0);
    /* untrusted peer: headers are ignored */
    ASSERT_EQ_STR(client(p, "203.0.113.9", "1.1.1.1", NULL), "203.0.113.9");
    /* trusted peer: the rightmost address that is not a trusted proxy */
    ASSERT_EQ_STR(client(p, "127.0.0.1", "1.1.1.1, 198.51.100.7", NULL), "198.51.100.7");
    ASSERT_EQ_STR(client(p, "127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", NULL), "198.51.100.7");
    /* a forged left part cannot win */
    ASSERT_EQ_STR(client(p, "127.0.0.1", "127.0.0.1, 198.51.100.7", NULL), "198.51.100.7");
    /* garbage: the nearest readable address */
    ASSERT_EQ_STR(client(p, "127.0.0.1", "198.51.100.7, junk", NULL), "127.0.0.1");
    ASSERT_EQ_STR(client(p, "127.0.0.1", "junk, 198.51.100.7", NULL), "198.51.100.7");
    /* Forwarded, RFC 7239 */
    ASSERT_EQ_STR(client(p, "127.0.0.1", NULL, "for=192.0.2.60;proto=http;by=203.0.113.43"),
                  "192.0.2.60");
    ASSERT_EQ_STR(client(p, "127.0.0.1", NULL, "for=\"[2001:db8:cafe::17]:4711\""),
                  "2001:db8:cafe::17");
    ASSERT_EQ_STR(client(p, "127.0.0.1", NULL, "for=192.0.2.43:47011, for=10.0.0.1"), "192.0.2.43");
    pol_proxies_free(p);
    ASSERT_EQ_INT(pol_proxies_parse("10.0.0.0/33", &p, err, sizeof(err)), ERR_INVAL);
    ASSERT_EQ_INT(pol_proxies_parse("example.org", &p, err, sizeof(err)), ERR_INVAL);
    ASSERT_EQ_STR(client(NULL, "203.0.113.9", "1.1.1.1", NULL), "203.0.113.9");
}

/* The peer's IPv4 address is written without inet_ntop: the same text as inet_ntop's, for
 * every byte value in every position, and for an address read from X-Forwarded-For. */
TEST(client_ipv4_text_is_inet_ntops)
{
    static const uint8_t edge[] = {0, 1, 9, 10, 11, 99, 100, 101, 109, 110, 199, 200, 249, 255};
    char want[INET_ADDRSTRLEN], got[64];
    for (unsigned v = 0; v < 256; v++) {
        for (unsigned k = 0; k < sizeof(edge); k++) {
            struct sockaddr_in sa;
            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            uint8_t *b = (uint8_t *)&sa.sin_addr;
            b[0] = (uint8_t)v;
            b[1] = edge[k];
            b[2] = (uint8_t)(255 - v);
            b[3] = edge[(k + v) % sizeof(edge)];
            ASSERT_TRUE(inet_ntop(AF_INET, &sa.sin_addr, want, sizeof(want)) != NULL);
            pol_client_ip(NULL, (struct sockaddr *)&sa, STR_NULL, STR_NULL, got, sizeof(got));
            ASSERT_EQ_STR(got, want);
        }
    }
    struct pol_proxies *p;
    char err[128];
    ASSERT_EQ_INT(pol_proxies_parse("127.0.0.1", &p, err, sizeof(err)), 0);
    ASSERT_EQ_STR(client(p, "127.0.0.1", "0.0.0.0", NULL), "0.0.0.0");
    ASSERT_EQ_STR(client(p, "127.0.0.1", "255.255.255.255", NULL), "255.255.255.255");
    ASSERT_EQ_STR(client(p, "127.0.0.1", "::ffff:192.0.2.1", NULL), "::ffff:192.0.2.1");
    pol_proxies_free(p);
}

/* Issue #11 item 10: per-IP rules key IPv6 clients by their /64 (one host's block), IPv4 by
 * the address, IPv4-mapped IPv6 as IPv4. */
static const char *key_of(const char *ip, unsigned v4, unsigned v6)
{
    static char out[4][64]; /* (two may be compared at once) */
    static unsigned n;
    char *o = out[n++ % 4];
    pol_ip_key(ip, v4, v6, o, 64);
    return o;
}

TEST(ip_keys_by_prefix)
{
    ASSERT_EQ_STR(key_of("192.0.2.7", 32, 64), "192.0.2.7");
    ASSERT_EQ_STR(key_of("192.0.2.7", 24, 64), "192.0.2.0/24");
    ASSERT_EQ_STR(key_of("192.0.2.7", 20, 64), "192.0.0.0/20");
    ASSERT_EQ_STR(key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 64), "2001:db8:1:2::/64");
    ASSERT_EQ_STR(key_of("2001:db8:1:2::1", 32, 64), key_of("2001:db8:1:2:ffff::9", 32, 64));
    ASSERT_TRUE(strcmp(key_of("2001:db8:1:2::1", 32, 64), key_of("2001:db8:1:3::1", 32, 64)));
    ASSERT_EQ_STR(key_of("2001:db8:1:2::1", 32, 56), "2001:db8:1::/56");
    ASSERT_EQ_STR(key_of("2001:db8::1", 32, 128), "2001:db8::1");
    ASSERT_EQ_STR(key_of("::ffff:192.0.2.7", 32, 64), "192.0.2.7");
    ASSERT_EQ_STR(key_of("[2001:db8:1:2::1]", 32, 64), "2001:db8:1:2::/64");
    ASSERT_EQ_STR(key_of("unknown", 32, 64), "unknown");
    ASSERT_EQ_STR(key_of("", 32, 64), "");
}
