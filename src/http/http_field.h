/* SPDX-License-Identifier: MIT */
/*
 * The syntax of a header field (RFC 9110 §5), checked by the session on every field of the
 * header section. Pure functions on a view; any thread.
 */
#ifndef HTTP_HTTP_FIELD_H
#define HTTP_HTTP_FIELD_H

#include <stdbool.h>

#include "core/str.h"

/* A field name is a token (§5.1): one or more of tchar. */
bool http_field_name_ok(struct str name);
/* A field value has no control byte but HTAB, and no DEL (§5.5). */
bool http_field_value_ok(struct str value);
/* True when value has no byte below 0x20 (HTAB, CR and LF included) and no DEL: the common
 * case, eight bytes at a time, which answers http_field_value_ok and "no CR or LF" at once.
 * False only says "check it exactly". */
bool http_field_value_plain(struct str value);
/* Neither CR nor LF in s, nor ':' when colon: what would split an answer's header block (the
 * check on a header this server adds). */
bool http_field_unbroken(struct str s, bool colon);

#endif
