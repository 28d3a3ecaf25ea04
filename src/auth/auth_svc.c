/* SPDX-License-Identifier: MIT */
/* What the authentication operations share; see auth_svc.h. */
#include "auth/auth_svc.h"

#include "core/buf.h"
#include "core/err.h"
#include "loop/pool.h"
#include "policy/pol_lockout.h"

uint64_t auth_svc_over_deadline(const struct auth_svc *svc)
{
    uint64_t ms = svc->hash_deadline_ms ? pool_expected_wait_ms(svc->pool) : 0;
    return ms > svc->hash_deadline_ms ? ms : 0;
}

int auth_svc_submit(const struct auth_svc *svc, struct loop *lp, struct pool_job *pj,
                    uint64_t *retry_ms)
{
    uint64_t late = auth_svc_over_deadline(svc);
    /* ... and one that waits past the deadline all the same (the estimate is a mean) is
     * answered busy when its turn comes, not hashed late */
    pj->deadline_ns = svc->hash_deadline_ms * 1000000ull;
    if (!late && pool_submit(svc->pool, lp, pj) == ERR_OK)
        return ERR_OK;
    *retry_ms = late ? late : 1000;
    return ERR_LIMIT;
}

int auth_svc_metrics_text(const struct auth_svc *svc, struct buf *b, int64_t now)
{
    buf_printf(b,
               "# HELP floodgate_logins_total Password logins by outcome (refused: a locked key, "
               "answered without hashing).\n# TYPE floodgate_logins_total counter\n"
               "floodgate_logins_total{result=\"succeeded\"} %llu\n"
               "floodgate_logins_total{result=\"failed\"} %llu\n"
               "floodgate_logins_total{result=\"refused\"} %llu\n",
               (unsigned long long)atomic_load(&svc->logins[AUTH_LOGINS_OK]),
               (unsigned long long)atomic_load(&svc->logins[AUTH_LOGINS_FAILED]),
               (unsigned long long)atomic_load(&svc->logins[AUTH_LOGINS_REFUSED]));
    return buf_printf(b,
                      "# HELP floodgate_lockouts_active Usernames, IPs and pairs locked now.\n"
                      "# TYPE floodgate_lockouts_active gauge\nfloodgate_lockouts_active %u\n",
                      (unsigned)pol_lockout_locked(svc->lockout, now));
}
