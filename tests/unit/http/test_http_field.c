/* SPDX-License-Identifier: MIT */
/* Header field syntax: the word-at-a-time checks against the rules read byte by byte. */
#include <string.h>

#include "harness.h"
#include "http/http_field.h"

/* Every byte at every place of a word (and in the tail), against the rules read byte by
 * byte: a value is plain exactly when it has no byte below 0x20 and no DEL, and ok exactly
 * when, besides, HTAB is the only one below; unbroken exactly when there is no CR and no
 * LF, and, for a name, no ':'. */
TEST(checks_every_byte_everywhere)
{
    char v[19];
    for (unsigned b = 0; b < 256; b++)
        for (unsigned at = 0; at < sizeof(v); at++) {
            memset(v, 'a', sizeof(v));
            v[at] = (char)b;
            struct str s = {v, sizeof(v)};
            bool plain = b >= 0x20 && b != 0x7f, unbroken = b != '\r' && b != '\n';
            if (http_field_value_plain(s) != plain)
                harness_fail(__FILE__, __LINE__, "plain: byte 0x%02x at %u", b, at);
            if (http_field_value_ok(s) != (plain || b == '\t'))
                harness_fail(__FILE__, __LINE__, "ok: byte 0x%02x at %u", b, at);
            if (http_field_unbroken(s, false) != unbroken)
                harness_fail(__FILE__, __LINE__, "unbroken value: byte 0x%02x at %u", b, at);
            if (http_field_unbroken(s, true) != (unbroken && b != ':'))
                harness_fail(__FILE__, __LINE__, "unbroken name: byte 0x%02x at %u", b, at);
        }
    ASSERT_TRUE(http_field_value_plain(STR_LIT("")) && http_field_value_ok(STR_LIT("")));
    ASSERT_TRUE(http_field_unbroken(STR_LIT(""), true));
}

TEST(name_is_a_token)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    char n[3] = {'x', 0, 'y'};
    for (unsigned b = 0; b < 256; b++) {
        n[1] = (char)b;
        bool ok = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                  (b && strchr(tchar, (int)b));
        if (http_field_name_ok((struct str){n, 3}) != ok)
            harness_fail(__FILE__, __LINE__, "byte 0x%02x", b);
    }
    ASSERT_TRUE(!http_field_name_ok(STR_LIT("")));
}
