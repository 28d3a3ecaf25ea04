/* SPDX-License-Identifier: MIT */
/* What the authentication operations share; see auth_svc.h. */
#include "auth/auth_svc.h"

#include "core/err.h"
#include "loop/pool.h"

int auth_svc_submit(const struct auth_svc *svc, struct loop *lp, struct pool_job *pj,
                    uint64_t *retry_ms)
{
    uint64_t ms = svc->hash_deadline_ms ? pool_expected_wait_ms(svc->pool) : 0;
    bool late = ms > svc->hash_deadline_ms;
    if (!late && pool_submit(svc->pool, lp, pj) == ERR_OK)
        return ERR_OK;
    *retry_ms = late ? ms : 1000;
    return ERR_LIMIT;
}
