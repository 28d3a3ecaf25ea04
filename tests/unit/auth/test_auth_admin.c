/* SPDX-License-Identifier: MIT */
/* Account and client administration without HTTP (#12 item 1), as the admin API and the
 * CLI both call it: users added, imported, changed; lists that never carry a secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/auth_admin.h"
#include "auth/auth_admin_op.h"
#include "auth/auth_client_web.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "token/tok_keys.h"
#include "token/tok_svc.h"

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
    ASSERT_EQ_INT(auth_admin_user_add(&svc, "ann", str_c(pw), 1000, NULL, &u), 0);
    ASSERT_EQ_STR(pw, "\0\0\0\0"); /* wiped */
    snprintf(pw, sizeof(pw), "whatever else");
    ASSERT_EQ_INT(auth_admin_user_add(&svc, "ann", str_c(pw), 1000, NULL, &v), ERR_CONFLICT);
    ASSERT_EQ_INT(auth_admin_user_import(&svc, "old", "$2b$12$notreally", 1000, NULL, &v),
                  ERR_INVAL);
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
    ASSERT_EQ_INT(auth_admin_client_create(&svc, &c, NULL, 1000, secret), 0);
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

/* The answer of an admin action as text. */
static const char *out_of(struct auth_admin_op *op)
{
    buf_append(&op->out, "", 1);
    return op->out.p;
}

/* The admin API's actions as values (auth_admin_op): each does its work, says whether it
 * made something, and answers JSON the API sends as is; a refusal says why. */
TEST(admin_actions_run_as_values_and_say_what_they_did)
{
    char dir[64], cmd[96], err[256], pw[64];
    struct store *st;
    struct auth_admin_op op;
    struct tok_ring ring = {0};
    snprintf(dir, sizeof(dir), "/tmp/fg-admin-op-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    struct tok_svc tok = {.st = st, .keys = {TOK_ALG_EDDSA, 60, 5}};
    struct auth_svc svc = {.st = st, .key = key, .pp = {64, 1, 1}, .tok = &tok};

    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_USER_ADD;
    snprintf(op.name, sizeof(op.name), "bea");
    snprintf(pw, sizeof(pw), "a fine password");
    op.secret = str_c(pw);
    auth_admin_op_run(&svc, &op, 1000);
    ASSERT_EQ_INT(op.rc, 0);
    ASSERT_TRUE(op.created);
    ASSERT_TRUE(strstr(out_of(&op), "\"username\":\"bea\"") != NULL);
    auth_admin_op_run(&svc, &op, 1000); /* (the password was wiped: a conflict all the same) */
    ASSERT_EQ_INT(op.rc, ERR_CONFLICT);

    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_USER_DISABLE;
    snprintf(op.name, sizeof(op.name), "bea");
    auth_admin_op_run(&svc, &op, 1001);
    ASSERT_EQ_INT(op.rc, 0);
    ASSERT_TRUE(!op.created);
    ASSERT_EQ_STR(out_of(&op), "{\"username\":\"bea\",\"disabled\":true}");

    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_CLIENT_SECRET;
    snprintf(op.name, sizeof(op.name), "no-such-client");
    auth_admin_op_run(&svc, &op, 1001);
    ASSERT_EQ_INT(op.rc, ERR_NOTFOUND);
    ASSERT_TRUE(auth_admin_op_why(&op) == NULL);

    /* a key by the server's policy: published 60 s before it signs */
    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_KEY_ROTATE;
    auth_admin_op_run(&svc, &op, 2000);
    ASSERT_EQ_INT(op.rc, 0);
    ASSERT_TRUE(strstr(out_of(&op), "\"active_from\":2060") != NULL);
    ASSERT_EQ_INT(tok_ring_load(&ring, st), 0);
    ASSERT_EQ_INT(ring.n, 3); /* one per algorithm */
    for (unsigned i = 0; i < ring.n; i++)
        ASSERT_EQ_INT(ring.keys[i].active_from, 2060);
    tok_ring_clear(&ring);

    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_EVENT_ADD;
    snprintf(op.event.name, sizeof(op.event.name), "launch");
    op.event.at = 5000;
    op.event.duration = 3600;
    op.event.expect = 5000; /* out of bounds */
    auth_admin_op_run(&svc, &op, 2000);
    ASSERT_EQ_INT(op.rc, ERR_INVAL);
    ASSERT_TRUE(op.created == true && strstr(auth_admin_op_why(&op), "expect 1..1000") != NULL);
    op.event.expect = 10;
    auth_admin_op_run(&svc, &op, 2000);
    ASSERT_EQ_INT(op.rc, 0);
    ASSERT_TRUE(strstr(out_of(&op), "\"name\":\"launch\"") != NULL);

    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_LIST_EVENTS;
    auth_admin_op_run(&svc, &op, 2000);
    ASSERT_EQ_INT(op.rc, 0);
    buf_append(&op.list, "", 1);
    ASSERT_TRUE(op.list.p[0] == '[' && strstr(op.list.p, "launch") != NULL);
    buf_fini(&op.list);
    auth_admin_op_fini(&op);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}

/* Clients for browsers (#13): their lists in the same record, the rules of a registration
 * kept by one check, a public client without a secret. */
TEST(browser_clients_register_their_uris_and_public_ones_no_secret)
{
    char dir[64], cmd[96], err[256];
    struct store *st;
    struct auth_admin_op op;
    struct auth_client c;
    struct auth_client_web w;
    const char *why;
    snprintf(dir, sizeof(dir), "/tmp/fg-admin-web-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    struct auth_svc svc = {.st = st, .key = key, .pp = {64, 1, 1}};

    json_t *o = json_loads("{\"name\":\"spa\",\"token_endpoint_auth_method\":\"none\","
                           "\"redirect_uris\":[\"https://app.example/cb\","
                           "\"http://127.0.0.1:8080/cb\"],"
                           "\"post_logout_redirect_uris\":\"https://app.example/bye\"}",
                           0, NULL);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_CLIENT_ADD;
    ASSERT_EQ_INT(auth_client_from_json(o, &op.client, &op.web, &why), 0);
    json_decref(o);
    /* the default grants of a browser's client, its origins from its redirect URIs */
    ASSERT_EQ_INT(op.client.grants, AUTH_GRANT_AUTHORIZATION_CODE | AUTH_GRANT_REFRESH_TOKEN);
    ASSERT_EQ_INT(op.web.n[AUTH_WEB_ORIGIN], 2);
    ASSERT_EQ_STR(op.web.origin[1], "http://127.0.0.1:8080");
    auth_admin_op_run(&svc, &op, 1000);
    ASSERT_EQ_INT(op.rc, 0);
    json_t *a = json_loads(out_of(&op), 0, NULL);
    ASSERT_TRUE(a != NULL);
    ASSERT_TRUE(json_object_get(a, "client_secret") == NULL); /* a public client has none */
    ASSERT_EQ_STR(json_string_value(json_object_get(a, "token_endpoint_auth_method")), "none");
    ASSERT_EQ_INT((int)json_array_size(json_object_get(a, "redirect_uris")), 2);
    char id[AUTH_CLIENT_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(a, "client_id")));
    json_decref(a);
    /* one record: the token endpoint's decoder reads the flags, the lists come on demand */
    ASSERT_EQ_INT(auth_client_get_web(st, id, &c, &w), 0);
    ASSERT_TRUE(c.public_client && !c.first_party);
    ASSERT_TRUE(auth_client_web_redirect_ok(&w, STR_LIT("https://app.example/cb")));
    ASSERT_TRUE(auth_client_web_redirect_ok(&w, STR_LIT("http://127.0.0.1:53111/cb")));
    ASSERT_TRUE(!auth_client_web_redirect_ok(&w, STR_LIT("https://app.example/cb/")));
    ASSERT_TRUE(!auth_client_web_redirect_ok(&w, STR_LIT("https://app.example/cb?x=1")));
    ASSERT_TRUE(auth_client_web_logout_ok(&w, STR_LIT("https://app.example/bye")));
    ASSERT_TRUE(auth_client_web_origin_ok(&w, STR_LIT("https://app.example")));
    ASSERT_TRUE(!auth_client_web_origin_ok(&w, STR_LIT("https://evil.example")));
    /* a public client has no secret to rotate, and its lists survive other changes */
    auth_admin_op_fini(&op);
    memset(&op, 0, sizeof(op));
    op.action = AUTH_ADMIN_CLIENT_SECRET;
    snprintf(op.name, sizeof(op.name), "%s", id);
    auth_admin_op_run(&svc, &op, 1001);
    ASSERT_EQ_INT(op.rc, ERR_INVAL);
    ASSERT_EQ_STR(auth_admin_op_why(&op), "a public client has no secret");
    ASSERT_EQ_INT(auth_client_set_introspection(st, id, false), 0);
    ASSERT_EQ_INT(auth_client_get_web(st, id, &c, &w), 0);
    ASSERT_EQ_INT(w.n[AUTH_WEB_REDIRECT], 2);

    /* the rules of a registration */
    static const char *const refused[] = {
        "{\"name\":\"x\",\"grants\":\"authorization_code\"}",             /* no redirect URI */
        "{\"name\":\"x\",\"redirect_uris\":[\"http://app.example/cb\"]}", /* http */
        "{\"name\":\"x\",\"redirect_uris\":[\"https://app.example/cb#f\"]}",
        "{\"name\":\"x\",\"redirect_uris\":[\"https://*.example/cb\"]}",
        "{\"name\":\"x\",\"redirect_uris\":[\"javascript:alert(1)\"]}",
        "{\"name\":\"x\",\"redirect_uris\":[\"https://u:p@app.example/cb\"]}",
        "{\"name\":\"x\",\"token_endpoint_auth_method\":\"none\"}", /* client_credentials */
        "{\"name\":\"x\",\"redirect_uris\":\"https://a.example/cb\","
        "\"id_token_signed_response_alg\":\"HS256\"}",
        "{\"name\":\"x\",\"redirect_uris\":\"https://a.example/cb\","
        "\"id_token_signed_response_alg\":\"none\"}",
        "{\"name\":\"x\",\"redirect_uris\":\"https://a.example/cb\","
        "\"web_origins\":[\"https://a.example/path\"]}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        o = json_loads(refused[i], 0, NULL);
        ASSERT_TRUE(o != NULL);
        memset(&c, 0, sizeof(c));
        if (auth_client_from_json(o, &c, &w, &why) != ERR_INVAL) {
            fprintf(stderr, "accepted: %s\n", refused[i]);
            ASSERT_TRUE(0);
        }
        json_decref(o);
    }
    /* every algorithm of the ring may sign a client's ID tokens */
    static const char *const algs[] = {"RS256", "ES256", "EdDSA"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char text[160];
        snprintf(text, sizeof(text),
                 "{\"name\":\"x\",\"redirect_uris\":\"https://a.example/cb\","
                 "\"id_token_signed_response_alg\":\"%s\"}",
                 algs[i]);
        o = json_loads(text, 0, NULL);
        ASSERT_EQ_INT(auth_client_from_json(o, &c, &w, &why), 0);
        ASSERT_EQ_STR(tok_alg_name((enum tok_alg)c.id_token_alg), algs[i]);
        json_decref(o);
    }
    /* what may be registered: a native app's scheme, loopback, https with a query */
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("com.example.app:/oauth2/cb"), &why), 0);
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("http://[::1]/cb"), &why), 0);
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("http://localhost:3000/cb"), &why), 0);
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("https://a.example/cb?x=1"), &why), 0);
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("myapp:/cb"), &why), ERR_INVAL);
    ASSERT_EQ_INT(auth_redirect_uri_check(STR_LIT("https:///cb"), &why), ERR_INVAL);
    auth_admin_op_fini(&op);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}

static void never_lookup(struct auth_user_lookup *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store reads at once");
}

/* UserInfo's index (#13 item 8): a user found by id, through the index checked against
 * the record; users from before the index get theirs at start. */
TEST(users_are_found_by_id_and_old_ones_indexed_at_start)
{
    char dir[64], cmd[96], err[256], pw[64];
    struct store *st;
    struct auth_user u, old, prof;
    struct auth_user_lookup q;
    unsigned added;
    const char *why;
    snprintf(dir, sizeof(dir), "/tmp/fg-index-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    struct auth_svc svc = {.st = st, .key = key, .pp = {64, 1, 1}};
    memset(&prof, 0, sizeof(prof));
    ASSERT_EQ_INT(auth_user_profile(&prof, "ann@example.org", "Ann", &why), 0);
    ASSERT_EQ_INT(auth_user_profile(&prof, "bad", NULL, &why), ERR_INVAL);
    snprintf(pw, sizeof(pw), "a fine password");
    ASSERT_EQ_INT(auth_admin_user_add(&svc, "ann", str_c(pw), 1000, &prof, &u), 0);
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.done = never_lookup;
    snprintf(q.sub, sizeof(q.sub), "%s", u.id);
    ASSERT_EQ_INT(auth_user_lookup(&q), 0);
    ASSERT_TRUE(q.found);
    ASSERT_EQ_STR(q.u.email, "ann@example.org");
    ASSERT_EQ_STR(q.u.display, "Ann");
    snprintf(q.sub, sizeof(q.sub), "nobody-at-all");
    ASSERT_EQ_INT(auth_user_lookup(&q), 0);
    ASSERT_TRUE(!q.found);
    /* a user written without the index (a store from before it) */
    auth_user_init(&old, "old", "$argon2id$x", 1000);
    ASSERT_EQ_INT(auth_user_put(st, &old, false), 0);
    snprintf(q.sub, sizeof(q.sub), "%s", old.id);
    ASSERT_EQ_INT(auth_user_lookup(&q), 0);
    ASSERT_TRUE(!q.found);
    ASSERT_EQ_INT(auth_user_index_backfill(st, &added), 0);
    ASSERT_EQ_INT(added, 1);
    ASSERT_EQ_INT(auth_user_lookup(&q), 0);
    ASSERT_TRUE(q.found);
    ASSERT_EQ_INT(auth_user_index_backfill(st, &added), 0);
    ASSERT_EQ_INT(added, 0); /* (counted equal: not scanned again) */
    /* deleted: its index entry goes, and a stale one would name no one */
    ASSERT_EQ_INT(auth_admin_user_change(&svc, "ann", AUTH_USER_DELETE, STR_NULL, 1001, &u), 0);
    snprintf(q.sub, sizeof(q.sub), "%s", u.id);
    ASSERT_EQ_INT(auth_user_lookup(&q), 0);
    ASSERT_TRUE(!q.found);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}

/* Many users from before the index: every one is indexed, in a few passes when a pass holds
 * only part of them, and the store stays small. The backfill used to commit one user at a
 * time inside the users' read transaction, which kept LMDB from reusing a freed page: about
 * 28 KiB of file per user, so 6,000 users filled this 64 MiB map (MDB_MAP_FULL). */
TEST(backfill_indexes_many_users_in_groups_and_the_store_stays_small)
{
    char dir[128], cmd[160], err[256], name[32], path[160];
    struct store *st;
    struct auth_user u;
    struct auth_user_lookup q;
    unsigned added;
    enum { N = 6000 };
    static char ids[N][AUTH_USER_ID_LEN + 1];
    snprintf(dir, sizeof(dir), "/tmp/fg-backfill-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)), 0);
    for (int i = 0; i < N; i++) { /* (written one by one, without the index, as before it) */
        snprintf(name, sizeof(name), "user%d", i);
        auth_user_init(&u, name, "$argon2id$x", 1000);
        memcpy(ids[i], u.id, sizeof(ids[i]));
        ASSERT_EQ_INT(auth_user_put(st, &u, false), 0);
    }
    struct stat before, after;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    ASSERT_EQ_INT(stat(path, &before), 0);
    auth_user_backfill_pass(64 * 1024); /* about 750 users a pass: several passes */
    ASSERT_EQ_INT(auth_user_index_backfill(st, &added), 0);
    auth_user_backfill_pass(0);
    ASSERT_EQ_INT(added, N);
    ASSERT_EQ_INT(stat(path, &after), 0);
    ASSERT_TRUE(after.st_size < before.st_size * 2); /* the index is smaller than the users */
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.done = never_lookup;
    for (int i = 0; i < N; i += 599) {
        snprintf(q.sub, sizeof(q.sub), "%s", ids[i]);
        ASSERT_EQ_INT(auth_user_lookup(&q), 0);
        ASSERT_TRUE(q.found);
        snprintf(name, sizeof(name), "user%d", i);
        ASSERT_EQ_STR(q.u.name, name);
    }
    ASSERT_EQ_INT(auth_user_index_backfill(st, &added), 0);
    ASSERT_EQ_INT(added, 0);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}
