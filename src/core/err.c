/* SPDX-License-Identifier: MIT */
/* Text for the ERR_* codes; kept beside the enum so a new code cannot miss its name. */
#include "core/err.h"

const char *err_str(int err)
{
    switch (err) {
    case ERR_OK:
        return "ok";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_INVAL:
        return "invalid input";
    case ERR_NOTFOUND:
        return "not found";
    case ERR_CONFLICT:
        return "conflict";
    case ERR_LIMIT:
        return "limit exceeded";
    case ERR_AGAIN:
        return "try again";
    case ERR_IO:
        return "I/O error";
    case ERR_BACKEND:
        return "backend error";
    case ERR_DENIED:
        return "denied";
    default:
        return "unknown error";
    }
}
