/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: what the hosted pages take from requests. The bytes as a redirect URI (the
 * registration check and the exact match, which parse them), and as a value rendered into
 * a page: a value can never open a tag or an attribute (no '<' or '"' of its own reaches
 * the page). The bytes as a template (an operator's templates_dir): rendered without
 * crashing, within bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_client_web.h"
#include "core/buf.h"
#include "core/err.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *p, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == c;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct str in = {(const char *)data, size};
    struct auth_client_web w;
    const char *why;
    static const char tmpl[] = "<p title=\"{{v}}\">{{v}}</p>{{#v}}<b>{{/v}}";
    char *s = malloc(size + 1);
    struct buf b;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    memset(&w, 0, sizeof(w));
    if (auth_client_web_add(&w, AUTH_WEB_REDIRECT, in, &why) == ERR_OK) {
        for (unsigned i = 0; i < w.n[AUTH_WEB_REDIRECT]; i++)
            if (!auth_client_web_redirect_ok(&w, str_c(w.redirect[i])))
                abort(); /* a registered URI matches itself */
    }
    auth_client_web_redirect_ok(&w, in);
    auth_client_web_add(&w, AUTH_WEB_ORIGIN, in, &why);
    auth_client_web_default_origins(&w);

    const struct web_var v[] = {{"v", s}};
    buf_init(&b, 1 << 22);
    if (web_render(&b, tmpl, v, 1) == ERR_OK) {
        size_t lt = count(b.p, b.len, '<'), q = count(b.p, b.len, '"');
        if (lt != (s[0] ? 3 : 2) || q != 2)
            abort(); /* the value opened a tag or closed the attribute */
    }
    buf_fini(&b);
    buf_init(&b, 1 << 22);
    web_render(&b, s, v, 1); /* the bytes as a template */
    buf_fini(&b);
    free(s);
    return 0;
}
