/* SPDX-License-Identifier: MIT */
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"
#include "harness.h"

static int cleaned;
static void on_clean(void *d)
{
    cleaned += *(int *)d;
}

TEST(arena_alloc_align_reset_cleanup)
{
    struct arena a;
    int one = 1;
    arena_init(&a, 256, 4096);
    char *p = arena_alloc(&a, 3);
    char *q = arena_alloc(&a, 5);
    ASSERT_TRUE(p && q);
    ASSERT_EQ_INT((uintptr_t)p % 16, 0);
    ASSERT_EQ_INT((uintptr_t)q % 16, 0);
    ASSERT_TRUE(arena_alloc(&a, 1000) != NULL); /* dedicated block */
    ASSERT_EQ_INT(arena_on_reset(&a, on_clean, &one), 0);
    cleaned = 0;
    arena_reset(&a);
    ASSERT_EQ_INT(cleaned, 1);
    ASSERT_EQ_STR(arena_strndup(&a, "hello", 5), "hello");
    arena_fini(&a);
}

TEST(arena_cap_is_hard)
{
    struct arena a;
    arena_init(&a, 256, 1024);
    ASSERT_TRUE(arena_alloc(&a, 1000) != NULL);
    ASSERT_TRUE(arena_alloc(&a, 100) == NULL);
    ASSERT_TRUE(arena_alloc(&a, SIZE_MAX) == NULL);
    ASSERT_TRUE(arena_alloc(&a, SIZE_MAX - 3) == NULL);
    arena_reset(&a);
    ASSERT_TRUE(arena_alloc(&a, 100) != NULL);
    arena_fini(&a);
}

/* Alloc-failure sweep: fail the 1st, 2nd, ... allocation; each must fail cleanly (NULL, no
 * leak under ASan), and the arena must stay usable afterwards. */
TEST(arena_alloc_failure_sweep)
{
    for (long k = 0; k < 8; k++) {
        struct arena a;
        arena_init(&a, 128, 1 << 16);
        mem_fail_after(k);
        int failed = 0;
        for (int i = 0; i < 8; i++)
            if (!arena_alloc(&a, (size_t)(i % 2 ? 100 : 20)))
                failed++;
        mem_fail_after(-1);
        ASSERT_TRUE(failed > 0 || k >= 4);
        ASSERT_TRUE(arena_alloc(&a, 10) != NULL);
        arena_fini(&a);
    }
}
