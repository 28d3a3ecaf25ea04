/* SPDX-License-Identifier: MIT */
/* Small helpers on string views; all are bounded by the view's length. */
#include "core/str.h"

#include "core/err.h"

int str_to_u64(struct str s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 20)
        return ERR_INVAL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return ERR_INVAL;
        if (v > (UINT64_MAX - d) / 10)
            return ERR_INVAL;
        v = v * 10 + d;
    }
    *out = v;
    return ERR_OK;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Eight bytes with each of 'A'..'Z' made lower case, the others as they are (0x80 up
 * included): a byte is upper case when its low seven bits are at least 'A' and not above
 * 'Z' and its high bit is clear; that byte gets 0x20. */
static uint64_t lower8(uint64_t x)
{
    const uint64_t ones = STR_WORD_ONES, high = ones * 0x80;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A'); /* high bit set from 'A' up */
    uint64_t gt_z = low7 + ones * (0x7f - 'Z'); /* high bit set above 'Z' */
    uint64_t upper = (ge_a ^ gt_z) & ~x & high;
    return x | upper >> 2;
}

static uint32_t str_word4(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* Words only: from eight bytes up, whole words and then the last eight bytes (overlapping
 * the word before); from four, the first four and the last four. (lower8 leaves a zero byte
 * zero, so four bytes widened compare as eight.) */
bool str_same_nocase(const char *p, const char *q, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (lower8(str_word(p + i)) != lower8(str_word(q + i)))
                return false;
        return lower8(str_word(p + n - 8)) == lower8(str_word(q + n - 8));
    }
    if (n >= 4)
        return lower8(str_word4(p)) == lower8(str_word4(q)) &&
               lower8(str_word4(p + n - 4)) == lower8(str_word4(q + n - 4));
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != lower((unsigned char)q[i]))
            return false;
    return true;
}

bool str_ascii(const char *p, size_t n)
{
    unsigned char high = 0;
    for (size_t i = 0; i < n; i++)
        high |= (unsigned char)p[i];
    return !(high & 0x80);
}

size_t str_utoa(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}
