/* SPDX-License-Identifier: MIT */
/* The syntax of header fields (RFC 9110 §5); see http_field.h. */
#include "http/http_field.h"

#include <stdint.h>
#include <string.h>

/* RFC 9110 §5.1: a field name is a token. http_parser (non-strict build) lets some
 * non-token bytes through, such as a space inside the name. */
bool http_field_name_ok(struct str s)
{
    /* the tchar set of RFC 9110 §5.6.2 ("!#$%&'*+-.^_`|~", digits, letters) as two bitmaps:
     * bytes 0-63 and 64-127 */
    static const uint64_t tchar_lo = 0x03ff6cfa00000000ull, tchar_hi = 0x57ffffffc7fffffeull;

    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        uint64_t set = c < 64 ? tchar_lo : c < 128 ? tchar_hi : 0;
        if (!(set >> (c & 63) & 1))
            return false;
    }
    return true;
}

/* RFC 9110 §5.5: no control characters but HTAB in a field value. */
bool http_field_value_ok(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* True when s has no byte below 0x20 (CR, LF and HTAB included) and no DEL: the common
 * case, checked eight bytes at a time, which answers is_field_value and the line-folding
 * check at once; false sends the caller to those checks for the exact answer. (A byte
 * below 0x20 is the only one that borrows in x - 0x20..; bytes from 0x80 up are masked out
 * by ~x; DEL is a zero byte of x ^ 0x7f...) */
bool http_field_value_plain(struct str s)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;

    for (; i + 8 <= s.len; i += 8) {
        uint64_t x, d;
        memcpy(&x, s.p + i, 8);
        d = x ^ (ones * 0x7f);
        if (((x - ones * 0x20) & ~x & high) | ((d - ones) & ~d & high))
            return false;
    }
    for (; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* Eight bytes at a time: the gateway verify adds five headers to every answer. */
bool http_field_unbroken(struct str s, bool colon)
{
    size_t i = 0;
    for (; i + 8 <= s.len; i += 8) {
        uint64_t x = str_word(s.p + i);
        if (str_word_has(x, '\r') || str_word_has(x, '\n') || (colon && str_word_has(x, ':')))
            return false;
    }
    for (; i < s.len; i++)
        if (s.p[i] == '\r' || s.p[i] == '\n' || (colon && s.p[i] == ':'))
            return false;
    return true;
}
