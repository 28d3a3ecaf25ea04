/* SPDX-License-Identifier: MIT */
/*
 * JSON request bodies, parsed by jansson with our limits: the body size is already bounded
 * by max_body_bytes; here the top level must be an object, duplicate keys are rejected (two
 * readers could disagree on which one counts) and nesting is capped at JSON_MAX_DEPTH before
 * jansson sees the text (jansson recurses per level). Any thread.
 */
#ifndef JSON_JSON_H
#define JSON_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "core/str.h"

#define JSON_MAX_DEPTH 32

/* Makes jansson wipe every block it frees (JSON bodies carry passwords). Main thread, before
 * any JSON is parsed. */
void json_secure_alloc_init(void);

/* Frees a string that jansson allocated (json_dumps): with json_secure_alloc_init it is not
 * plain malloc memory, so free() would be wrong. */
void json_free_str(char *s);

/* Parses `in` into a new object (caller json_decref()s it). ERR_INVAL with a short reason
 * in err (errcap bytes) for malformed, non-object, too deep or duplicate-key input. */
int json_parse_object(struct str in, json_t **out, char *err, size_t errcap);

/* The string member `name` of o copied into dst (cap bytes with its NUL): ERR_OK, or
 * ERR_INVAL if absent, not a string or too long. For records we wrote. */
struct buf;
int json_copy_str(json_t *o, const char *name, char *dst, size_t cap);
/* o as compact JSON appended to b (the text jansson made is freed here). ERR_NOMEM, or
 * ERR_LIMIT past b's cap. */
int json_append(struct buf *b, const json_t *o);

/* Nesting depth of `in`, counting only brackets outside strings. */
size_t json_depth(struct str in);

#endif
