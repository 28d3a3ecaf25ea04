/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"
#include "harness.h"

TEST(buf_cap_is_hard)
{
    struct buf b;
    buf_init(&b, 10);
    ASSERT_EQ_INT(buf_append(&b, "0123456789", 10), 0);
    ASSERT_EQ_INT(buf_append(&b, "x", 1), ERR_LIMIT);
    ASSERT_EQ_INT(b.len, 10);
    buf_consume(&b, 4);
    ASSERT_EQ_MEM(b.p, b.len, "456789", 6);
    buf_fini(&b);
}

TEST(buf_printf_long_and_escape)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    ASSERT_EQ_INT(buf_printf(&b, "%0300d", 7), 0);
    ASSERT_EQ_INT(b.len, 300);
    buf_reset(&b);
    ASSERT_EQ_INT(buf_json_escape(&b, "a\"b\\c\n\x01", 7), 0);
    ASSERT_EQ_MEM(b.p, b.len, "a\\\"b\\\\c\\n\\u0001", 15);
    buf_fini(&b);
}

TEST(buf_put_i64_every_edge)
{
    struct buf b;
    buf_init(&b, 256);
    ASSERT_EQ_INT(buf_put_i64(&b, 0), 0);
    ASSERT_EQ_INT(buf_puts(&b, " "), 0);
    ASSERT_EQ_INT(buf_put_i64(&b, -1), 0);
    ASSERT_EQ_INT(buf_puts(&b, " "), 0);
    ASSERT_EQ_INT(buf_put_i64(&b, 1733347200), 0);
    ASSERT_EQ_INT(buf_puts(&b, " "), 0);
    ASSERT_EQ_INT(buf_put_i64(&b, INT64_MAX), 0);
    ASSERT_EQ_INT(buf_puts(&b, " "), 0);
    ASSERT_EQ_INT(buf_put_i64(&b, INT64_MIN), 0);
    static const char want[] = "0 -1 1733347200 9223372036854775807 -9223372036854775808";
    ASSERT_EQ_MEM(b.p, b.len, want, sizeof(want) - 1);
    buf_fini(&b);
    buf_init(&b, 3); /* the cap holds */
    ASSERT_EQ_INT(buf_put_i64(&b, 1234), ERR_LIMIT);
    buf_fini(&b);
}

/* Two digits at a time: the same text as printf for every value below a million, each sign,
 * and every power of ten with its neighbours up to the type's ends. */
static void same_as_printf(int64_t v, int *bad)
{
    char want[24];
    struct buf b;
    buf_init(&b, 64);
    int n = snprintf(want, sizeof(want), "%lld", (long long)v);
    if (buf_put_i64(&b, v) || b.len != (size_t)n || memcmp(b.p, want, b.len) != 0)
        (*bad)++;
    buf_fini(&b);
}

TEST(buf_put_i64_matches_printf)
{
    int bad = 0;
    for (int64_t v = 0; v < 1000000; v++) {
        same_as_printf(v, &bad);
        same_as_printf(-v, &bad);
    }
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10)
        for (int64_t d = -1; d <= 1; d++) {
            same_as_printf(p * 10 + d, &bad);
            same_as_printf(-(p * 10 + d), &bad);
        }
    same_as_printf(INT64_MAX, &bad);
    same_as_printf(INT64_MIN, &bad);
    same_as_printf(INT64_MIN + 1, &bad);
    ASSERT_EQ_INT(bad, 0);
}

TEST(buf_alloc_failure_is_clean)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    mem_fail_after(0);
    int rc = buf_append(&b, "abc", 3);
    mem_fail_after(-1);
    ASSERT_EQ_INT(rc, ERR_NOMEM);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_EQ_INT(buf_append(&b, "abc", 3), 0);
    buf_fini(&b);
}

TEST(str_helpers)
{
    uint64_t v;
    char d[24];
    ASSERT_EQ_INT(str_to_u64(STR_LIT("18446744073709551615"), &v), 0);
    ASSERT_TRUE(v == UINT64_MAX);
    ASSERT_EQ_INT(str_to_u64(STR_LIT("18446744073709551616"), &v), ERR_INVAL);
    ASSERT_EQ_INT(str_to_u64(STR_LIT(""), &v), ERR_INVAL);
    ASSERT_EQ_INT(str_to_u64(STR_LIT("1 "), &v), ERR_INVAL);
    ASSERT_EQ_INT(str_to_u64(STR_LIT("-1"), &v), ERR_INVAL);
    ASSERT_TRUE(str_eq_nocase(STR_LIT("Content-Length"), STR_LIT("content-length")));
    ASSERT_TRUE(!str_eq_nocase(STR_LIT("Content-Length"), STR_LIT("content-lengtx")));
    ASSERT_EQ_MEM(d, str_utoa(d, 0), "0", 1);
    ASSERT_EQ_MEM(d, str_utoa(d, 1234567890123ull), "1234567890123", 13);
}

/* Every pair of bytes, at every place of views of each length the comparison takes apart
 * (bytes; four and four; words and the last eight): equal without case exactly when equal
 * after ASCII lower-casing ('A'..'Z' only; 0x80 up as they are). Each view in a heap block
 * of its exact length, so that ASan sees a read past it. */
TEST(str_eq_nocase_every_byte_pair)
{
    static const unsigned lens[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 19};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        unsigned n = lens[k];
        char *a = malloc(n), *b = malloc(n);
        ASSERT_TRUE(a && b);
        for (unsigned at = 0; at < n; at++)
            for (unsigned x = 0; x < 256; x++)
                for (unsigned y = 0; y < 256; y++) {
                    unsigned lx = x >= 'A' && x <= 'Z' ? x | 0x20 : x;
                    unsigned ly = y >= 'A' && y <= 'Z' ? y | 0x20 : y;
                    memset(a, 'q', n);
                    memset(b, 'Q', n);
                    a[at] = (char)x;
                    b[at] = (char)y;
                    if (str_eq_nocase((struct str){a, n}, (struct str){b, n}) != (lx == ly))
                        harness_fail(__FILE__, __LINE__, "0x%02x 0x%02x at %u of %u", x, y, at, n);
                }
        free(a);
        free(b);
    }
}

/* STR_EAT: the literal whole at the cursor or nothing moves; an input shorter than the
 * literal is refused without a read past its end (the input is a heap block of its exact
 * length, so ASan would see one). */
TEST(str_eat_whole_literal_or_nothing)
{
    static const char *const in[] = {"{\"alg\":\"EdDSA", "{\"alg\":\"", "{\"alg\":", "",
                                     "{\"alG\":\"x",     "x{\"alg\":\""};
    static const int moved[] = {8, 8, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        size_t n = strlen(in[i]);
        char *h = malloc(n ? n : 1);
        ASSERT_TRUE(h != NULL);
        memcpy(h, in[i], n);
        const char *p = h;
        bool ate = STR_EAT(&p, h + n, "{\"alg\":\"");
        if (ate != (moved[i] != 0) || p - h != moved[i])
            harness_fail(__FILE__, __LINE__, "input %zu: ate %d, moved %td", i, ate, p - h);
        free(h);
    }
}

/* Every byte at every place of a word: the escaped string is what a byte-by-byte escape
 * gives (the copy of a plain run and the escaping after it agree). */
TEST(json_escape_every_byte_everywhere)
{
    char s[19], want[64];
    struct buf b;
    buf_init(&b, 1 << 10);
    for (unsigned x = 0; x < 256; x++)
        for (unsigned at = 0; at < sizeof(s); at++) {
            memset(s, 'a', sizeof(s));
            s[at] = (char)x;
            size_t w = 0;
            for (size_t i = 0; i < sizeof(s); i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                    w += (size_t)snprintf(want + w, sizeof(want) - w, "\\%c", c);
                else if (c == '\n')
                    w += (size_t)snprintf(want + w, sizeof(want) - w, "\\n");
                else if (c < 0x20 || c == 0x7f)
                    w += (size_t)snprintf(want + w, sizeof(want) - w, "\\u%04x", c);
                else
                    want[w++] = (char)c;
            }
            buf_reset(&b);
            ASSERT_EQ_INT(buf_json_escape(&b, s, sizeof(s)), 0);
            if (b.len != w || memcmp(b.p, want, w) != 0)
                harness_fail(__FILE__, __LINE__, "byte 0x%02x at %u: %.*s", x, at, (int)b.len, b.p);
        }
    buf_fini(&b);
}
