/* SPDX-License-Identifier: MIT */
/*
 * Unit-test harness: TEST(name) registers a test, ASSERT_* compare and print both sides.
 * Output is TAP (prove can run it) followed by a closing "N passed, N failed" line.
 * A name filter is the first argument (substring). HARNESS_FORK=1 runs each test in a child
 * process, so a crash fails one test instead of the run. Why not cmocka: one dependency less,
 * and full control of fault injection (mem_fail_after).
 */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stddef.h>
#include <string.h>

typedef void (*harness_fn)(void);

void harness_register(const char *name, harness_fn fn);
void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int harness_failed(void);

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        harness_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define ASSERT_TRUE(x)                                                                             \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            harness_fail(__FILE__, __LINE__, "expected true: %s", #x);                             \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            harness_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            harness_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                 \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ_MEM(a, alen, b, blen)                                                            \
    do {                                                                                           \
        const char *a_ = (const char *)(a), *b_ = (const char *)(b);                               \
        size_t al_ = (alen), bl_ = (blen);                                                         \
        if (al_ != bl_ || (al_ && memcmp(a_, b_, al_) != 0)) {                                     \
            harness_fail(__FILE__, __LINE__, "%s == %s: \"%.*s\" != \"%.*s\"", #a, #b, (int)al_,   \
                         a_, (int)bl_, b_);                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A view against a literal. */
#define ASSERT_EQ_VIEW(view, lit) ASSERT_EQ_MEM((view).p, (view).len, lit, strlen(lit))

#endif
