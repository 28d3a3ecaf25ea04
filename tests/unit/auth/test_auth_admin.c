/* SPDX-License-Identifier: MIT */
/* Account and client administration without HTTP (#12 item 1), as the admin API and the
 * CLI both call it: users added, imported, changed; lists that never carry a secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/auth_admin.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {4};

TEST(users_and_clients_are_administered_and_listed_without_secrets)
{
    char dir[64], cmd[96], err[256], pw[64], secret[AUTH_SECRET_LEN + 1];
    struct store *st;
    struct auth_user u, v;
    struct auth_client c;
    struct buf b;
    bool ok, rehash;
    snprintf(dir, sizeof(dir), "/tmp/fg-admin-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    struct auth_svc svc = {.st = st, .key = key, .pp = {64, 1, 1}};
    snprintf(pw, sizeof(pw), "first password");
    ASSERT_EQ_INT(auth_admin_user_add(&svc, "ann", str_c(pw), 1000, &u), 0);
    ASSERT_EQ_STR(pw, "\0\0\0\0"); /* wiped */
    snprintf(pw, sizeof(pw), "whatever else");
    ASSERT_EQ_INT(auth_admin_user_add(&svc, "ann", str_c(pw), 1000, &v), ERR_CONFLICT);
    ASSERT_EQ_INT(auth_admin_user_import(&svc, "old", "$2b$12$notreally", 1000, &v), ERR_INVAL);
    ASSERT_EQ_INT(auth_user_get(st, "old", &v), ERR_NOTFOUND);
    /* a new password: the record's hash changes and the sessions generation moves */
    snprintf(pw, sizeof(pw), "second password");
    ASSERT_EQ_INT(auth_admin_user_change(&svc, "ann", AUTH_USER_PASSWORD, str_c(pw), 1001, &v), 0);
    ASSERT_EQ_INT(auth_user_get(st, "ann", &v), 0);
    ASSERT_EQ_INT(auth_pw_verify(v.phc, "second password", 15, &svc.pp, &ok, &rehash), 0);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(v.sessions != u.sessions);
    ASSERT_EQ_INT(auth_admin_user_change(&svc, "nobody", AUTH_USER_DISABLE, STR_NULL, 1001, &v),
                  ERR_NOTFOUND);
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "a \"quoted\" app");
    c.grants = AUTH_GRANT_CLIENT_CREDENTIALS;
    ASSERT_EQ_INT(auth_admin_client_create(&svc, &c, 1000, secret), 0);
    /* lists: valid JSON, the hash's kind, never the hash, the secret or its digest */
    buf_init(&b, 1 << 16);
    ASSERT_EQ_INT(auth_admin_list(st, STORE_T_USERS, &b), 0);
    buf_append(&b, "", 1);
    json_t *j = json_loads(b.p, 0, NULL);
    ASSERT_TRUE(j && json_array_size(j) == 1);
    ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(j, 0), "hash")), "argon2id");
    ASSERT_TRUE(strstr(b.p, "$argon2id$") == NULL);
    json_decref(j);
    buf_reset(&b);
    ASSERT_EQ_INT(auth_admin_list(st, STORE_T_CLIENTS, &b), 0);
    buf_append(&b, "", 1);
    j = json_loads(b.p, 0, NULL);
    ASSERT_TRUE(j && json_array_size(j) == 1);
    ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(j, 0), "name")),
                  "a \"quoted\" app");
    ASSERT_TRUE(json_object_get(json_array_get(j, 0), "client_secret") == NULL);
    ASSERT_TRUE(strstr(b.p, secret) == NULL);
    json_decref(j);
    buf_fini(&b);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}
