/* SPDX-License-Identifier: MIT */
/*
 * OAuth scopes (RFC 6749 §3.3): space-separated lists of scope-tokens. A client's allowed
 * scopes, a grant's, a refresh family's and a gateway's requirement are all such lists. Any
 * thread; no allocation.
 */
#ifndef TOKEN_TOK_SCOPE_H
#define TOKEN_TOK_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

#define TOK_SCOPE_MAX 1024 /* a normalised list, without its NUL */

/* Every space-separated item of `want` is in `allowed`. An empty want is a subset. */
bool tok_scope_subset(struct str want, const char *allowed);
/* Normalises a space-separated list (single spaces, no empty items); ERR_INVAL for
 * characters outside RFC 6749 §3.3 scope-token (%x21 / %x23-5B / %x5D-7E). */
int tok_scope_normalize(struct str in, char *out, size_t cap);

#endif
