/* SPDX-License-Identifier: MIT */
/*
 * One error space for the whole program. Functions return int: 0 is success, a negative
 * ERR_* is a failure. ERR_AGAIN is a normal state (the answer will come later or the caller
 * should retry), not a failure, as in nginx. Only api/ maps these to HTTP statuses.
 */
#ifndef CORE_ERR_H
#define CORE_ERR_H

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,    /* allocation failed */
    ERR_INVAL = -2,    /* malformed input */
    ERR_NOTFOUND = -3, /* no such object */
    ERR_CONFLICT = -4, /* object exists / state changed underneath */
    ERR_LIMIT = -5,    /* a configured bound would be exceeded */
    ERR_AGAIN = -6,    /* not now: retry later, or completion is asynchronous */
    ERR_IO = -7,       /* operating system I/O failure */
    ERR_BACKEND = -8,  /* the store or another dependency failed */
    ERR_DENIED = -9,   /* not allowed */
};

/* Returns a static, human-readable name for an ERR_* code. Any thread. */
const char *err_str(int err);

#endif
