/* SPDX-License-Identifier: MIT */
/* A client's browser-facing registration; see auth_client_web.h. */
#include "auth/auth_client_web.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

/* A URI taken apart as far as we need: scheme, host (with brackets for IPv6), port (empty
 * if none), and where the path begins. */
struct uri_parts {
    struct str scheme, host, port, rest;
    bool authority; /* "scheme://" */
};

static bool uri_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"<>\\`{}|^#*", c);
}

static int uri_split(struct str u, struct uri_parts *p)
{
    size_t i = 0;

    memset(p, 0, sizeof(*p));
    if (!u.len || !isalpha((unsigned char)u.p[0]))
        return ERR_INVAL;
    while (i < u.len && (isalnum((unsigned char)u.p[i]) || strchr("+.-", u.p[i])))
        i++;
    if (i == u.len || u.p[i] != ':')
        return ERR_INVAL;
    p->scheme = (struct str){u.p, i};
    i++;
    if (u.len - i < 2 || u.p[i] != '/' || u.p[i + 1] != '/') {
        p->rest = (struct str){u.p + i, u.len - i};
        return ERR_OK;
    }
    p->authority = true;
    i += 2;
    size_t h = i;
    if (i < u.len && u.p[i] == '[') {
        while (i < u.len && u.p[i] != ']')
            i++;
        if (i == u.len)
            return ERR_INVAL;
        i++;
    } else {
        while (i < u.len && !strchr(":/?@", u.p[i]))
            i++;
    }
    p->host = (struct str){u.p + h, i - h};
    if (i < u.len && u.p[i] == '@')
        return ERR_INVAL; /* credentials in a redirect URI: never */
    if (i < u.len && u.p[i] == ':') {
        size_t q = ++i;
        while (i < u.len && isdigit((unsigned char)u.p[i]))
            i++;
        p->port = (struct str){u.p + q, i - q};
        if (!p->port.len || p->port.len > 5)
            return ERR_INVAL;
    }
    if (i < u.len && u.p[i] != '/' && u.p[i] != '?')
        return ERR_INVAL;
    p->rest = (struct str){u.p + i, u.len - i};
    return p->host.len ? ERR_OK : ERR_INVAL;
}

static bool loopback_ip(struct str host)
{
    return str_eq(host, STR_LIT("127.0.0.1")) || str_eq(host, STR_LIT("[::1]"));
}

static bool loopback_host(struct str host)
{
    return loopback_ip(host) || str_eq_nocase(host, STR_LIT("localhost"));
}

int auth_redirect_uri_check(struct str uri, const char **why)
{
    struct uri_parts p;

    *why = "a redirect URI is an absolute URI of at most 512 bytes, without a fragment, "
           "spaces, quotes, <>, \\ or wildcards";
    if (!uri.len || uri.len > AUTH_URI_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < uri.len; i++)
        if (!uri_char_ok((unsigned char)uri.p[i]))
            return ERR_INVAL;
    if (uri_split(uri, &p))
        return ERR_INVAL;
    if (str_eq_nocase(p.scheme, STR_LIT("https")))
        return p.authority ? ERR_OK : ERR_INVAL;
    if (str_eq_nocase(p.scheme, STR_LIT("http"))) {
        *why = "http redirect URIs are for loopback only (127.0.0.1, [::1], localhost): "
               "use https";
        return p.authority && loopback_host(p.host) ? ERR_OK : ERR_INVAL;
    }
    /* a native app's private-use scheme: reverse domain name (RFC 8252 §7.1) */
    *why = "a redirect URI's scheme is https, http on loopback, or a reverse domain name "
           "(com.example.app:/callback)";
    return memchr(p.scheme.p, '.', p.scheme.len) ? ERR_OK : ERR_INVAL;
}

/* scheme://host[:port] of an https or loopback http URI, lower-cased, into out. */
static int origin_of(struct str uri, char *out, size_t cap)
{
    struct uri_parts p;

    if (uri_split(uri, &p) || !p.authority)
        return ERR_INVAL;
    bool https = str_eq_nocase(p.scheme, STR_LIT("https"));
    if (!https && !(str_eq_nocase(p.scheme, STR_LIT("http")) && loopback_host(p.host)))
        return ERR_INVAL;
    int n = snprintf(out, cap, "%s://%.*s%s%.*s", https ? "https" : "http", (int)p.host.len,
                     p.host.p, p.port.len ? ":" : "", (int)p.port.len, p.port.p);
    if (n < 0 || (size_t)n >= cap)
        return ERR_INVAL;
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return ERR_OK;
}

int auth_redirect_origin(struct str uri, char *out, size_t cap)
{
    struct uri_parts p;
    if (origin_of(uri, out, cap) == ERR_OK)
        return ERR_OK;
    if (uri_split(uri, &p) || p.authority || p.scheme.len + 2 > cap ||
        !memchr(p.scheme.p, '.', p.scheme.len))
        return ERR_INVAL;
    snprintf(out, cap, "%.*s:", (int)p.scheme.len, p.scheme.p);
    return ERR_OK;
}

static char *slot(struct auth_client_web *w, enum auth_web_list which, unsigned i)
{
    return which == AUTH_WEB_REDIRECT ? w->redirect[i]
           : which == AUTH_WEB_LOGOUT ? w->logout[i]
                                      : w->origin[i];
}

static const char *cslot(const struct auth_client_web *w, enum auth_web_list which, unsigned i)
{
    return which == AUTH_WEB_REDIRECT ? w->redirect[i]
           : which == AUTH_WEB_LOGOUT ? w->logout[i]
                                      : w->origin[i];
}

static int add_one(struct auth_client_web *w, enum auth_web_list which, struct str item,
                   const char **why)
{
    if (w->n[which] == AUTH_URIS_MAX) {
        *why = "at most 8 URIs or origins of each kind";
        return ERR_INVAL;
    }
    char *dst = slot(w, which, w->n[which]);
    if (which == AUTH_WEB_ORIGIN) {
        char o[AUTH_ORIGIN_MAX + 1];
        *why = "a web origin is https://host[:port] (http on loopback), with no path";
        if (item.len >= sizeof(o) || origin_of(item, o, sizeof(o)) || strlen(o) != item.len ||
            strncasecmp(o, item.p, item.len) != 0)
            return ERR_INVAL;
        memcpy(dst, o, strlen(o) + 1);
    } else {
        if (auth_redirect_uri_check(item, why))
            return ERR_INVAL;
        memcpy(dst, item.p, item.len);
        dst[item.len] = '\0';
    }
    for (unsigned i = 0; i < w->n[which]; i++)
        if (strcmp(cslot(w, which, i), dst) == 0)
            return ERR_OK; /* (a repeat: once is enough) */
    w->n[which]++;
    return ERR_OK;
}

int auth_client_web_add(struct auth_client_web *w, enum auth_web_list which, struct str list,
                        const char **why)
{
    struct auth_client_web copy = *w; /* nothing is added unless all of it is good */
    size_t i = 0;

    while (i < list.len) {
        while (i < list.len && (list.p[i] == ',' || list.p[i] == ' '))
            i++;
        size_t s = i;
        while (i < list.len && list.p[i] != ',' && list.p[i] != ' ')
            i++;
        if (i > s && add_one(&copy, which, (struct str){list.p + s, i - s}, why))
            return ERR_INVAL;
    }
    *w = copy;
    return ERR_OK;
}

void auth_client_web_default_origins(struct auth_client_web *w)
{
    const char *why;
    if (w->n[AUTH_WEB_ORIGIN])
        return;
    for (unsigned i = 0; i < w->n[AUTH_WEB_REDIRECT]; i++) {
        char o[AUTH_ORIGIN_MAX + 1];
        if (origin_of(str_c(w->redirect[i]), o, sizeof(o)) == ERR_OK)
            add_one(w, AUTH_WEB_ORIGIN, str_c(o), &why);
    }
}

static const char *const member[AUTH_WEB_LISTS] = {"redirect_uris", "post_logout_redirect_uris",
                                                   "web_origins"};

int auth_client_web_json(const struct auth_client_web *w, struct buf *b)
{
    int rc = ERR_OK;
    for (int l = 0; l < AUTH_WEB_LISTS && !rc; l++) {
        rc = buf_printf(b, ",\"%s\":[", member[l]);
        for (unsigned i = 0; i < w->n[l] && !rc; i++) {
            const char *s = cslot(w, (enum auth_web_list)l, i);
            rc = buf_puts(b, i ? ",\"" : "\"");
            if (!rc)
                rc = buf_json_escape(b, s, strlen(s));
            if (!rc)
                rc = buf_puts(b, "\"");
        }
        if (!rc)
            rc = buf_puts(b, "]");
    }
    return rc;
}

int auth_client_web_from_json(json_t *o, struct auth_client_web *w, const char **why)
{
    memset(w, 0, sizeof(*w));
    for (int l = 0; l < AUTH_WEB_LISTS; l++) {
        json_t *v = json_object_get(o, member[l]), *it;
        size_t i;
        *why = "redirect_uris, post_logout_redirect_uris and web_origins are arrays of strings";
        if (!v)
            continue;
        if (json_is_string(v)) {
            if (auth_client_web_add(w, (enum auth_web_list)l,
                                    (struct str){json_string_value(v), json_string_length(v)}, why))
                return ERR_INVAL;
            continue;
        }
        if (!json_is_array(v))
            return ERR_INVAL;
        json_array_foreach(v, i, it)
        {
            if (!json_is_string(it) || memchr(json_string_value(it), ' ', json_string_length(it)) ||
                memchr(json_string_value(it), ',', json_string_length(it)) ||
                auth_client_web_add(w, (enum auth_web_list)l,
                                    (struct str){json_string_value(it), json_string_length(it)},
                                    why))
                return ERR_INVAL;
        }
    }
    return ERR_OK;
}

/* Equal, or both http loopback IP URIs equal but for the port (RFC 8252 §7.3). */
static bool redirect_match(const char *registered, struct str uri)
{
    struct uri_parts a, b;

    if (str_eq(str_c(registered), uri))
        return true;
    if (uri_split(str_c(registered), &a) || uri_split(uri, &b) || !a.authority || !b.authority ||
        !str_eq(a.scheme, STR_LIT("http")) || !str_eq(b.scheme, STR_LIT("http")))
        return false;
    return loopback_ip(a.host) && str_eq(a.host, b.host) && str_eq(a.rest, b.rest);
}

bool auth_client_web_redirect_ok(const struct auth_client_web *w, struct str uri)
{
    for (unsigned i = 0; i < w->n[AUTH_WEB_REDIRECT]; i++)
        if (redirect_match(w->redirect[i], uri))
            return true;
    return false;
}

bool auth_client_web_logout_ok(const struct auth_client_web *w, struct str uri)
{
    for (unsigned i = 0; i < w->n[AUTH_WEB_LOGOUT]; i++)
        if (str_eq(str_c(w->logout[i]), uri))
            return true;
    return false;
}

bool auth_client_web_origin_ok(const struct auth_client_web *w, struct str origin)
{
    for (unsigned i = 0; i < w->n[AUTH_WEB_ORIGIN]; i++)
        if (str_eq(str_c(w->origin[i]), origin))
            return true;
    return false;
}
