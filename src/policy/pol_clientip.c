/* SPDX-License-Identifier: MIT */
/* Trusted-proxy client addresses; see pol_clientip.h. Fuzzed by fuzz/fuzz_clientip.c. */
#include "policy/pol_clientip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/mem.h"

#define MAX_BLOCKS 64

struct block {
    int family;
    uint8_t addr[16];
    unsigned bits;
};

struct pol_proxies {
    struct block b[MAX_BLOCKS];
    unsigned n;
};

/* Parses one address (v4, v6, or v6 in brackets) from s[0..n) into family/addr. */
static int parse_addr(const char *s, size_t n, int *family, uint8_t addr[16])
{
    char tmp[64];

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(tmp))
        return ERR_INVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = AF_INET;
        return ERR_OK;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *family = AF_INET6;
        return ERR_OK;
    }
    return ERR_INVAL;
}

static void mask(uint8_t *a, size_t len, unsigned bits)
{
    for (size_t i = 0; i < len; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        a[i] &= (uint8_t)(0xff00u >> keep);
    }
}

void pol_ip_key(const char *ip, unsigned v4_bits, unsigned v6_bits, char *out, size_t cap)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];
    char txt[INET6_ADDRSTRLEN];
    int family;

    if (parse_addr(ip, strlen(ip), &family, a)) {
        str_copy(out, cap, ip);
        return;
    }
    if (family == AF_INET6 && memcmp(a, mapped, sizeof(mapped)) == 0) {
        memmove(a, a + 12, 4);
        family = AF_INET;
    }
    unsigned bits =
        family == AF_INET ? (v4_bits > 32 ? 32 : v4_bits) : (v6_bits > 128 ? 128 : v6_bits);
    unsigned full = family == AF_INET ? 32 : 128;
    mask(a, full / 8, bits);
    inet_ntop(family, a, txt, sizeof(txt));
    if (bits == full)
        str_copy(out, cap, txt);
    else
        snprintf(out, cap, "%s/%u", txt, bits);
}

int pol_proxies_parse(const char *list, struct pol_proxies **out, char *err, size_t cap)
{
    struct pol_proxies *p = xcalloc(1, sizeof(*p));

    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ", ");
        if (n) {
            const char *slash = memchr(s, '/', n);
            size_t an = slash ? (size_t)(slash - s) : n;
            struct block *b = &p->b[p->n];
            if (p->n == MAX_BLOCKS || parse_addr(s, an, &b->family, b->addr)) {
                snprintf(err, cap, "'%.*s' is not an address or CIDR block", (int)n, s);
                mem_free(p);
                return ERR_INVAL;
            }
            unsigned max = b->family == AF_INET ? 32 : 128;
            b->bits = max;
            if (slash) {
                char *end;
                unsigned long bits = strtoul(slash + 1, &end, 10);
                if (end != s + n || end == slash + 1 || bits > max) {
                    snprintf(err, cap, "'%.*s' has a bad prefix length", (int)n, s);
                    mem_free(p);
                    return ERR_INVAL;
                }
                b->bits = (unsigned)bits;
            }
            p->n++;
        }
        s += n;
        while (*s == ',' || *s == ' ')
            s++;
    }
    *out = p;
    return ERR_OK;
}

void pol_proxies_free(struct pol_proxies *p)
{
    mem_free(p);
}

static bool in_block(const struct block *b, int family, const uint8_t *a)
{
    if (b->family != family)
        return false;
    unsigned full = b->bits / 8, rest = b->bits % 8;
    if (memcmp(b->addr, a, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (b->addr[full] & mask) == (a[full] & mask);
}

static bool trusted(const struct pol_proxies *p, int family, const uint8_t *a)
{
    for (unsigned i = 0; p && i < p->n; i++)
        if (in_block(&p->b[i], family, a))
            return true;
    return false;
}

/* The n-th list item from the right of a comma-separated header, trimmed; false at the end. */
static bool item_from_right(struct str h, unsigned k, struct str *out)
{
    size_t end = h.len;
    for (unsigned i = 0;; i++) {
        size_t start = end;
        while (start > 0 && h.p[start - 1] != ',')
            start--;
        if (i == k) {
            size_t a = start, b = end;
            while (a < b && (h.p[a] == ' ' || h.p[a] == '\t'))
                a++;
            while (b > a && (h.p[b - 1] == ' ' || h.p[b - 1] == '\t'))
                b--;
            *out = (struct str){h.p + a, b - a};
            return true;
        }
        if (start == 0)
            return false;
        end = start - 1;
    }
}

/* From a Forwarded element ("for=1.2.3.4;proto=https" or for="[2001:db8::1]:80"), the
 * for= address without quotes and port. */
static struct str forwarded_for(struct str el)
{
    for (size_t i = 0; i + 4 <= el.len; i++) {
        if ((i == 0 || el.p[i - 1] == ';' || el.p[i - 1] == ' ') &&
            strncasecmp(el.p + i, "for=", 4) == 0) {
            const char *v = el.p + i + 4;
            size_t n = 0;
            while (i + 4 + n < el.len && v[n] != ';')
                n++;
            if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                v++;
                n -= 2;
            }
            if (n && v[0] == '[') { /* [v6]:port */
                const char *close = memchr(v, ']', n);
                return close ? (struct str){v, (size_t)(close - v) + 1} : STR_NULL;
            }
            const char *colon = memchr(v, ':', n); /* v4:port (a bare v6 has two colons) */
            if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - v)))
                n = (size_t)(colon - v);
            return (struct str){v, n};
        }
    }
    return STR_NULL;
}

/* An IPv4 address in dotted decimal, as inet_ntop writes it, without its sprintf (about
 * 1,700 instructions on every request that names its client: bench/instructions.sh).
 * out[16]. */
static void put_ipv4(const uint8_t a[4], char *out)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

void pol_client_ip(const struct pol_proxies *p, const struct sockaddr *peer, struct str xff,
                   struct str forwarded, char *out, size_t cap)
{
    int family = AF_UNSPEC;
    uint8_t a[16];

    if (peer && peer->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
    } else if (peer && peer->sa_family == AF_INET6) {
        family = AF_INET6;
        memcpy(a, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, 16);
    } else {
        snprintf(out, cap, "-");
        return;
    }
    bool use_fwd = !xff.len && forwarded.len;
    struct str h = use_fwd ? forwarded : xff;
    for (unsigned k = 0; trusted(p, family, a) && h.len && k < 32; k++) {
        struct str item;
        int f2;
        uint8_t a2[16];
        if (!item_from_right(h, k, &item))
            break;
        if (use_fwd)
            item = forwarded_for(item);
        if (!item.p || parse_addr(item.p, item.len, &f2, a2))
            break; /* unparsable: keep the nearest address that was readable */
        family = f2;
        memcpy(a, a2, 16);
    }
    if (family == AF_INET && cap >= 16)
        put_ipv4(a, out);
    else if (!inet_ntop(family, a, out, (socklen_t)cap))
        snprintf(out, cap, "-");
}
