/* SPDX-License-Identifier: MIT */
#include "core/arena.h"
#include "core/err.h"
#include "harness.h"
#include "http/http_form.h"

static struct arena a;

static int parse(const char *s, struct http_form *f)
{
    arena_fini(&a);
    arena_init(&a, 4096, 1 << 20);
    return http_form_parse(str_c(s), 16, &a, f);
}

TEST(form_basic_and_escapes)
{
    struct http_form f;
    struct str v;
    ASSERT_EQ_INT(parse("grant_type=client_credentials&scope=a+b%20c&x=%2B%3d&empty=&flag", &f), 0);
    ASSERT_EQ_INT(f.n, 5);
    ASSERT_EQ_INT(http_form_get(&f, "scope", &v), 0);
    ASSERT_EQ_VIEW(v, "a b c");
    ASSERT_EQ_INT(http_form_get(&f, "x", &v), 0);
    ASSERT_EQ_VIEW(v, "+=");
    ASSERT_EQ_INT(http_form_get(&f, "empty", &v), 0);
    ASSERT_EQ_INT(v.len, 0);
    ASSERT_EQ_INT(http_form_get(&f, "flag", &v), 0);
    ASSERT_EQ_INT(http_form_get(&f, "nope", &v), ERR_NOTFOUND);
    arena_fini(&a);
}

TEST(form_rejects_bad_escapes_and_nul)
{
    struct http_form f;
    ASSERT_EQ_INT(parse("a=%", &f), ERR_INVAL);
    ASSERT_EQ_INT(parse("a=%4", &f), ERR_INVAL);
    ASSERT_EQ_INT(parse("a=%zz", &f), ERR_INVAL);
    ASSERT_EQ_INT(parse("a=%00", &f), ERR_INVAL);
    ASSERT_EQ_INT(parse("%zz=1", &f), ERR_INVAL);
    arena_fini(&a);
}

TEST(form_duplicates_are_conflicts)
{
    struct http_form f;
    struct str v;
    ASSERT_EQ_INT(parse("a=1&b=2&a=3", &f), 0);
    ASSERT_EQ_INT(http_form_get(&f, "a", &v), ERR_CONFLICT);
    ASSERT_EQ_INT(http_form_get(&f, "b", &v), 0);
    arena_fini(&a);
}

TEST(form_limits)
{
    struct http_form f;
    ASSERT_EQ_INT(parse("&&&", &f), 0);
    ASSERT_EQ_INT(f.n, 0);
    ASSERT_EQ_INT(parse("a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q", &f), ERR_LIMIT);
    arena_init(&a, 64, 64);
    ASSERT_EQ_INT(
        http_form_parse(str_c("aaaaaaaaaaaaaaaaaaaaaaa=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                              "bbbbbbbbbbbbbbbbbbbbbbbb"),
                        16, &a, &f),
        ERR_NOMEM);
    arena_fini(&a);
}

/* Basic credentials: RFC 7617's id:secret, percent-decoded (RFC 6749 §2.3.1); refused when
 * not base64, without a colon, or with a byte from 0x80 up (libsodium 1.0.18 decodes those
 * as '/': "Yi9j" and "Yi\x80j" both gave "b/c"). */
TEST(basic_credentials)
{
    struct str id, secret;
    char bad[] = "YWxpY2U6cy9j";
    arena_init(&a, 4096, 4096);
    ASSERT_EQ_INT(http_basic_credentials(str_c("YWxpY2U6cy9j"), &a, &id, &secret), 0);
    ASSERT_TRUE(str_eq(id, STR_LIT("alice")) && str_eq(secret, STR_LIT("s/c")));
    ASSERT_EQ_INT(http_basic_credentials(str_c("YWxpY2U="), &a, &id, &secret), ERR_INVAL);
    ASSERT_EQ_INT(http_basic_credentials(str_c("not base64!"), &a, &id, &secret), ERR_INVAL);
    bad[8] = (char)0x80; /* in place of the 'c' of "cy9j": refused, not decoded as '/' */
    ASSERT_EQ_INT(http_basic_credentials(str_c(bad), &a, &id, &secret), ERR_INVAL);
    bad[8] = (char)0xff;
    ASSERT_EQ_INT(http_basic_credentials(str_c(bad), &a, &id, &secret), ERR_INVAL);
    arena_fini(&a);
}
