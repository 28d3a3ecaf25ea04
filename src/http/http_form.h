/* SPDX-License-Identifier: MIT */
/*
 * application/x-www-form-urlencoded decoding (WHATWG URL §5.1; RFC 6749 sends every OAuth
 * request body this way) and percent-decoding. Hand-written because no Debian library
 * offers it with bounds and strictness we want; fuzzed by fuzz/fuzz_form.c.
 *
 * Contract: input is any bytes; output pairs are NUL-terminated copies in the arena, valid
 * until the arena resets. Malformed escapes ("%4", "%zz") are ERR_INVAL, not passed through,
 * so "a%zz" can never be read two ways. A decoded NUL byte is ERR_INVAL (a C consumer would
 * truncate at it). More than `max_pairs` pairs is ERR_LIMIT. Allocation failure (arena cap)
 * is ERR_NOMEM. Any thread, no shared state.
 */
#ifndef HTTP_HTTP_FORM_H
#define HTTP_HTTP_FORM_H

#include <stddef.h>

#include "core/str.h"

struct arena;

struct http_form_pair {
    struct str name;
    struct str value;
};

struct http_form {
    struct http_form_pair *pairs;
    size_t n;
};

/* Decodes `in` into `out`. '+' means space. Empty segments ("a=1&&b=2") are skipped. */
int http_form_parse(struct str in, size_t max_pairs, struct arena *a, struct http_form *out);

/* Percent-decodes `in` (no '+' rule) into dst, which has room for in.len bytes. Returns the
 * decoded length through *out_len. ERR_INVAL on a bad escape or a decoded NUL. */
int http_pct_decode(struct str in, int plus_is_space, char *dst, size_t *out_len);

/* Finds `name`. Returns ERR_NOTFOUND, ERR_CONFLICT if it occurs more than once (RFC 6749
 * §3.1: parameters MUST NOT be included more than once), or ERR_OK with *value set. */
int http_form_get(const struct http_form *f, const char *name, struct str *value);

/* The value of cookie `name` in a Cookie header's value (RFC 6265 §5.4: "a=1; b=2"), as
 * is (no decoding). ERR_OK, ERR_NOTFOUND, or ERR_CONFLICT when the name is there twice
 * (a cookie set for a sibling path or domain must not be taken for ours). */
int http_cookie_get(struct str header, const char *name, struct str *value);

/* The credentials of an `Authorization: Basic` header as OAuth clients send them (RFC 7617,
 * with RFC 6749 §2.3.1's rule: id and secret each form-urlencoded before the base64), from
 * `b64`, the header's value after "Basic ". Copies into the arena, NUL-terminated; the
 * decoded bytes on the stack are wiped. ERR_INVAL: not well-formed (no colon, bad base64 or
 * escapes, a NUL, over 512 bytes decoded), ERR_NOMEM. */
int http_basic_credentials(struct str b64, struct arena *a, struct str *id, struct str *secret);

#endif
