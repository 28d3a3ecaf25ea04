/* SPDX-License-Identifier: MIT */
/* Client records, grants, scopes and the per-thread client cache (issue #11 item 22: no
 * unit test covered them; the record decoder in particular reads what the store holds,
 * which another instance or an attacker with store access may have written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_client.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"

static struct auth_client sample(void)
{
    struct auth_client c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "cid");
    snprintf(c.name, sizeof(c.name), "web \"app\"");
    c.grants = AUTH_GRANT_CLIENT_CREDENTIALS | AUTH_GRANT_PASSWORD;
    snprintf(c.scopes, sizeof(c.scopes), "read write");
    snprintf(c.audiences, sizeof(c.audiences), "api");
    memset(c.secret_digest, 0xab, sizeof(c.secret_digest));
    c.access_ttl = 600;
    c.introspect_any = true;
    c.created_at = 1700000000;
    return c;
}

TEST(client_record_round_trip)
{
    struct auth_client c = sample(), d;
    struct buf b;
    buf_init(&b, 8192);
    ASSERT_EQ_INT(auth_client_encode(&c, NULL, &b), 0);
    ASSERT_EQ_INT(auth_client_decode("cid", 3, b.p, b.len, &d), 0);
    ASSERT_EQ_STR(d.name, "web \"app\"");
    ASSERT_EQ_INT(d.grants, c.grants);
    ASSERT_EQ_STR(d.scopes, "read write");
    ASSERT_EQ_STR(d.audiences, "api");
    ASSERT_EQ_MEM(d.secret_digest, sizeof(d.secret_digest), c.secret_digest,
                  sizeof(c.secret_digest));
    ASSERT_TRUE(d.access_ttl == 600 && d.introspect_any && d.created_at == 1700000000);
    buf_fini(&b);
}

static int decode(const char *json)
{
    struct auth_client d;
    return auth_client_decode("cid", 3, json, strlen(json), &d);
}

#define DIGEST                                                                                     \
    "\"secret_digest\":\""                                                                         \
    "abababababababababababababababababababababababababababababababab\""

TEST(client_record_rejections)
{
    ASSERT_EQ_INT(decode("{\"name\":\"a\",\"scope\":\"\",\"audience\":\"\"," DIGEST
                         ",\"grants\":[\"password\"]}"),
                  0);
    ASSERT_EQ_INT(decode("not json"), ERR_INVAL);
    ASSERT_EQ_INT(decode("{\"scope\":\"\",\"audience\":\"\"," DIGEST "}"), ERR_INVAL);
    ASSERT_EQ_INT(decode("{\"name\":7,\"scope\":\"\",\"audience\":\"\"," DIGEST "}"), ERR_INVAL);
    ASSERT_EQ_INT(decode("{\"name\":\"a\",\"scope\":\"\",\"audience\":\"\","
                         "\"secret_digest\":\"abcd\"}"),
                  ERR_INVAL); /* short digest */
    ASSERT_EQ_INT(decode("{\"name\":\"a\",\"scope\":\"\",\"audience\":\"\",\"secret_digest\":\""
                         "zzababababababababababababababababababababababababababababababab\"}"),
                  ERR_INVAL); /* not hex */
    ASSERT_EQ_INT(decode("{\"name\":\"a\",\"scope\":\"\",\"audience\":\"\"," DIGEST
                         ",\"grants\":[\"implicit\"]}"),
                  ERR_INVAL);
    ASSERT_EQ_INT(
        decode("{\"name\":\"a\",\"scope\":\"\",\"audience\":\"\"," DIGEST ",\"grants\":[7]}"),
        ERR_INVAL);
    char id[AUTH_CLIENT_ID_MAX + 2];
    memset(id, 'i', sizeof(id));
    struct auth_client d;
    ASSERT_EQ_INT(auth_client_decode(id, sizeof(id), "{}", 2, &d), ERR_INVAL);
}

TEST(grants_and_scopes)
{
    unsigned g;
    struct buf b;
    ASSERT_EQ_INT(auth_grants_parse("client_credentials refresh_token,password", &g), 0);
    ASSERT_EQ_INT(g,
                  AUTH_GRANT_CLIENT_CREDENTIALS | AUTH_GRANT_REFRESH_TOKEN | AUTH_GRANT_PASSWORD);
    ASSERT_EQ_INT(auth_grants_parse("implicit", &g), ERR_INVAL);
    ASSERT_EQ_STR(auth_grant_name(AUTH_GRANT_PASSWORD), "password");
    buf_init(&b, 256);
    ASSERT_EQ_INT(auth_grants_json(AUTH_GRANT_REFRESH_TOKEN, &b), 0);
    ASSERT_EQ_MEM(b.p, b.len, "[\"refresh_token\"]", 17);
    buf_fini(&b);
}

TEST(client_cache_follows_the_generation)
{
    struct auth_client_cache *cc = auth_client_cache_new(8);
    struct auth_client c = sample(), out;
    ASSERT_EQ_INT(auth_client_cache_find(cc, 1, "cid", 3, &out), ERR_NOTFOUND);
    auth_client_cache_put(cc, 1, ERR_OK, "cid", 3, &c);
    ASSERT_EQ_INT(auth_client_cache_find(cc, 1, "cid", 3, &out), 0);
    ASSERT_EQ_STR(out.name, c.name);
    ASSERT_EQ_INT(auth_client_cache_find(cc, 2, "cid", 3, &out), ERR_NOTFOUND); /* moved on */
    auth_client_cache_put(cc, 2, ERR_OK, "cid", 3, &c);
    auth_client_cache_put(cc, 2, ERR_BACKEND, "cid", 3, NULL); /* a failed read: kept */
    ASSERT_EQ_INT(auth_client_cache_find(cc, 2, "cid", 3, &out), 0);
    auth_client_cache_put(cc, 2, ERR_NOTFOUND, "cid", 3, NULL); /* deleted: dropped */
    ASSERT_EQ_INT(auth_client_cache_find(cc, 2, "cid", 3, &out), ERR_NOTFOUND);
    ASSERT_EQ_INT(auth_client_cache_find(cc, 2, "other", 5, &out), ERR_NOTFOUND);
    auth_client_cache_free(cc);
    auth_client_cache_free(NULL);
}

TEST(basic_credentials_remembered_only_as_they_were_sent_and_while_the_generation_stands)
{
    struct auth_client_cache *cc = auth_client_cache_new(8);
    struct auth_client c = sample(), out;
    struct str cred = STR_LIT("Basic Y2lkOnNlY3JldA=="), other = STR_LIT("Basic Y2lkOnNlY3JldB==");
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 1, cred, &out), ERR_NOTFOUND);
    auth_client_cache_put(cc, 1, ERR_OK, "cid", 3, &c);
    auth_client_cache_put_cred(cc, 1, cred, "cid");
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 1, cred, &out), ERR_OK);
    ASSERT_EQ_STR(out.id, "cid");
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 1, other, &out), ERR_NOTFOUND); /* a byte */
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 1, (struct str){cred.p, cred.len - 1}, &out),
                  ERR_NOTFOUND);
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 2, cred, &out), ERR_NOTFOUND); /* moved on */
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 0, cred, &out), ERR_NOTFOUND);
    auth_client_cache_put(cc, 1, ERR_NOTFOUND, "cid", 3, NULL); /* deleted: the record is gone */
    ASSERT_EQ_INT(auth_client_cache_find_cred(cc, 1, cred, &out), ERR_NOTFOUND);
    auth_client_cache_free(cc);
}

TEST(server_key_is_made_once_and_checked)
{
    char dir[] = "/tmp/fg-keytest-XXXXXX", path[64], err[256];
    uint8_t a[CR_HASH_KEY_LEN], b[CR_HASH_KEY_LEN];
    cr_init();
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    ASSERT_EQ_INT(auth_key_load(path, a, err, sizeof(err)), 0); /* made, 0600 */
    ASSERT_EQ_INT(auth_key_load(path, b, err, sizeof(err)), 0); /* read back, the same */
    ASSERT_EQ_MEM(a, sizeof(a), b, sizeof(b));
    struct stat sb;
    ASSERT_EQ_INT(stat(path, &sb), 0);
    ASSERT_EQ_INT(sb.st_mode & 0777, 0600);
    chmod(path, 0604);
    ASSERT_EQ_INT(auth_key_load(path, b, err, sizeof(err)), ERR_IO);
    ASSERT_TRUE(strstr(err, "group or others") != NULL);
    unlink(path);
    ASSERT_EQ_INT(mkdir(path, 0700), 0); /* not a regular file */
    ASSERT_EQ_INT(auth_key_load(path, b, err, sizeof(err)), ERR_IO);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/missing/secret.key", dir); /* cannot be made */
    ASSERT_EQ_INT(auth_key_load(path, b, err, sizeof(err)), ERR_IO);
    rmdir(dir);
}
