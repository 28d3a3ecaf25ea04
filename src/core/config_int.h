/* SPDX-License-Identifier: MIT */
/*
 * Inside core/config*.c only: the key table's entries, for the INI reader (config_ini.c)
 * beside the table and its other readers (config.c).
 */
#ifndef CORE_CONFIG_INT_H
#define CORE_CONFIG_INT_H

#include <stddef.h>

#include "core/config.h"

enum kind { K_STR, K_UINT, K_INT, K_SIZE, K_SIZE64, K_DUR, K_DUR_S, K_LEVEL, K_BOOL, K_RATE };

struct key {
    const char *section;
    const char *name; /* INI key; env is FLOODGATE_<NAME>, flag is --<name with - for _> */
    enum kind kind;
    size_t off;
    long long min, max;
    const char *def; /* default, as text: parsed like any other source */
    const char *help;
};

/* The table has at most this many keys (a static assertion in config.c says so). */
#define CFG_KEYS_MAX 512

/* The key `name` in `section` (any section if NULL), or NULL. */
const struct key *cfg__find_key(const char *section, const char *name);
/* k's place in the table: 0 .. CFG_KEYS_MAX - 1. */
size_t cfg__key_index(const struct key *k);
/* Parses val into c's field for k: ERR_OK, or ERR_INVAL with e filled (where: the source). */
int cfg__apply(struct cfg *c, const struct key *k, const char *val, const char *where,
               struct cfg_error *e);
/* Fills e (if not NULL) with where and the formatted message. */
void cfg__set_err(struct cfg_error *e, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
