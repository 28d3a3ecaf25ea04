/* SPDX-License-Identifier: MIT */
/* Lower-case hexadecimal: n bytes into 2n characters and a NUL, and back (exactly 2n
 * characters of 0-9 a-f: ERR_INVAL otherwise). For record keys and ids, not secrets. */
#ifndef CORE_HEX_H
#define CORE_HEX_H

#include <stddef.h>
#include <stdint.h>

void hex_encode(const uint8_t *p, size_t n, char *out);
int hex_decode(const char *s, uint8_t *out, size_t n);

#endif
