/* SPDX-License-Identifier: MIT */
/* The event queues when a producer outruns the dispatcher (issue #11 item 21: never run
 * before): low-priority events are dropped first and counted, normal ones keep a quarter of
 * the ring, and security events are never dropped while the overflow list has room. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "crypto/cr.h"
#include "event/ev.h"
#include "harness.h"

static int count_lines(const char *path, const char *needle)
{
    char line[1024];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

TEST(a_full_ring_drops_low_priority_first_and_keeps_security_events)
{
    static struct cfg c; /* (large) */
    char dir[] = "/tmp/fg-evtest-XXXXXX", path[64], err[256];
    uint8_t key[32] = {1};
    struct ev e;
    struct ev_stats st;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
    cr_init();
    cfg_defaults(&c);
    snprintf(c.audit_log, sizeof(c.audit_log), "%s", path);
    c.ev_queue = 64; /* the smallest ring */
    ASSERT_EQ_INT(ev_start(&c, key, err, sizeof(err)), 0);
    /* a burst far faster than the dispatcher's 20 ms cycle drains */
    for (int i = 0; i < 4000; i++) {
        ev_begin(&e, i % 40 == 0 ? EV_ACCOUNT_LOCKED : EV_TOKEN_REFRESHED);
        ev_str(&e, "n", "x");
        ev_publish(&e);
    }
    ev_stop(2000);
    ev_get_stats(&st);
    ASSERT_TRUE(st.dropped[EV_TOKEN_REFRESHED] > 0); /* low: dropped, counted */
    ASSERT_EQ_INT(st.dropped[EV_ACCOUNT_LOCKED], 0); /* security: never */
    ASSERT_TRUE(st.published[EV_TOKEN_REFRESHED] + st.dropped[EV_TOKEN_REFRESHED] == 3900);
    ASSERT_EQ_INT(st.published[EV_ACCOUNT_LOCKED] + st.overflowed, 100);
    ASSERT_EQ_INT(count_lines(path, "\"account.locked\""), 100); /* every one written */
    ASSERT_EQ_INT(count_lines(path, "\"token.refreshed\""), (int)st.published[EV_TOKEN_REFRESHED]);
    unlink(path);
    rmdir(dir);
}
