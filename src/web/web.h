/* SPDX-License-Identifier: MIT */
/*
 * Web pages: the hosted login page and the pages around it (an error that cannot go back to
 * the client, the form_post answer), from templates an operator may replace
 * (templates_dir) and a stylesheet, with the defaults compiled in and everything served
 * from memory.
 *
 * The template language is three forms and no more: {{name}} (the value, HTML-escaped),
 * {{#name}}...{{/name}} (the inside only if the value is not empty; no nesting of the same
 * name) and {{{name}}} (the value as is: only for HTML this code built and escaped itself,
 * such as the hidden fields). An unknown name is empty. Hand-written because a template
 * library would be a dependency for forty lines; the values come from requests, so escaping
 * is the rule and fuzz/fuzz_web.c checks that no value can open a tag.
 */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include <stddef.h>

#include "core/buf.h"

struct web_var {
    const char *name;
    const char *value; /* NULL: empty */
};

/* HTML-escapes s (& < > " ' as entities) onto b. */
int web_escape(struct buf *b, const char *s);
/* A hidden form field: <input type="hidden" name="NAME" value="VALUE">, both escaped. */
int web_hidden(struct buf *b, const char *name, const char *value);

/* Renders template t with vars onto out. ERR_LIMIT past out's cap. */
int web_render(struct buf *out, const char *t, const struct web_var *vars, size_t n);

enum web_page { WEB_LOGIN, WEB_ERROR, WEB_FORM_POST, WEB_BUSY, WEB_LOGOUT, WEB_CONSENT, WEB_PAGES };

/* The templates and the stylesheet in force: the compiled-in defaults, or those read from
 * dir (login.html, error.html, form_post.html, busy.html, logout.html, consent.html,
 * style.css; each optional, at most
 * 64 KiB).
 * ERR_OK, or ERR_IO with a message in err (a file that exists and cannot be read). Main
 * thread, before the loops start. */
int web_load(const char *dir, char *err, size_t cap);
const char *web_template(enum web_page p);
const char *web_stylesheet(void);
/* The operator's logo (logo_file: PNG, SVG, JPEG or WebP, at most 256 KiB), read at start:
 * ERR_OK (none asked: *data NULL after), or ERR_IO with a message in err. Served from
 * memory at /oauth2/assets/logo; pages show it when there is one ({{#logo}}). */
int web_load_logo(const char *path, char *err, size_t cap);
const void *web_logo(size_t *len, const char **ctype);
/* The pages' scripts, served from 'self' for the CSP: submit.js posts the form_post answer,
 * retry.js the busy page's form once its delay (plus a random part) has passed. NULL for
 * another name. */
const char *web_script(const char *name);
/* The admin console (GET /admin/console): console.html, console.js, console.css or
 * favicon.svg, or the admin listener's OpenAPI description (openapi.json), and its
 * media type, served from memory; NULL for another name. Not replaceable by templates_dir:
 * it is part of the admin API. */
const char *web_console_asset(const char *name, const char **ctype);
/* The Content-Security-Policy, Referrer-Policy and other headers every page carries:
 * name/value pairs, NULL-terminated. */
extern const char *const web_headers[];

#endif
