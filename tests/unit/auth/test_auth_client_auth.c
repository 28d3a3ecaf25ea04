/* SPDX-License-Identifier: MIT */
/* Client authentication without HTTP (#12 item 1): the right secret passes, a wrong one,
 * an unknown id, an empty secret and an impossible id are one answer; a secret rotated
 * while the old record is cached works at once. Embedded store (reads complete at once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_client_auth.h"
#include "core/err.h"
#include "harness.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {3};

static void never(struct auth_client_check *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store reads at once");
}

static int check(const struct auth_svc *svc, struct auth_client_cache *cc, const char *id,
                 const char *secret)
{
    struct auth_client_check q;
    memset(&q, 0, sizeof(q));
    q.svc = svc;
    q.cache = cc;
    q.gen = 1;
    q.id = str_c(id);
    q.secret = str_c(secret);
    q.done = never;
    int rc = auth_client_check(&q);
    if (rc == ERR_OK && strcmp(q.c.id, id) != 0)
        harness_fail(__FILE__, __LINE__, "authenticated as another client");
    return rc;
}

TEST(client_authentication_decides_alike_for_every_failure)
{
    char dir[64], cmd[96], err[256], secret[AUTH_SECRET_LEN + 1], fresh[AUTH_SECRET_LEN + 1];
    struct store *st;
    struct auth_client c;
    snprintf(dir, sizeof(dir), "/tmp/fg-clientauth-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    struct auth_svc svc = {.st = st, .key = key};
    struct auth_client_cache *cc = auth_client_cache_new(8);
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "app");
    c.grants = AUTH_GRANT_CLIENT_CREDENTIALS;
    ASSERT_EQ_INT(auth_client_create(st, key, &c, NULL, 1000, secret), 0);
    ASSERT_EQ_INT(check(&svc, cc, c.id, secret), ERR_OK);
    ASSERT_EQ_INT(check(&svc, cc, c.id, secret), ERR_OK); /* cached */
    ASSERT_EQ_INT(check(&svc, cc, c.id, "wrong"), ERR_DENIED);
    ASSERT_EQ_INT(check(&svc, cc, c.id, ""), ERR_DENIED);
    ASSERT_EQ_INT(check(&svc, cc, "nobody", secret), ERR_DENIED);
    ASSERT_EQ_INT(check(&svc, cc, "", secret), ERR_DENIED);
    char longid[AUTH_CLIENT_ID_MAX + 8];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ASSERT_EQ_INT(check(&svc, cc, longid, secret), ERR_DENIED);
    /* rotated by an administrator while this thread caches the old record */
    ASSERT_EQ_INT(auth_client_rotate_secret(st, key, c.id, fresh), 0);
    ASSERT_EQ_INT(check(&svc, cc, c.id, fresh), ERR_OK);
    ASSERT_EQ_INT(check(&svc, cc, c.id, secret), ERR_DENIED);
    /* a public client (#13): its id alone, never with a secret (it has none to match) */
    struct auth_client pub;
    char none[AUTH_SECRET_LEN + 1];
    memset(&pub, 0, sizeof(pub));
    snprintf(pub.name, sizeof(pub.name), "spa");
    pub.grants = AUTH_GRANT_AUTHORIZATION_CODE;
    pub.public_client = true;
    ASSERT_EQ_INT(auth_client_create(st, key, &pub, NULL, 1000, none), 0);
    ASSERT_EQ_STR(none, "");
    ASSERT_EQ_INT(check(&svc, cc, pub.id, ""), ERR_OK);
    ASSERT_EQ_INT(check(&svc, cc, pub.id, ""), ERR_OK); /* cached */
    ASSERT_EQ_INT(check(&svc, cc, pub.id, "anything"), ERR_DENIED);
    ASSERT_EQ_INT(check(&svc, cc, c.id, ""), ERR_DENIED); /* a confidential one still needs it */
    auth_client_cache_free(cc);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}
