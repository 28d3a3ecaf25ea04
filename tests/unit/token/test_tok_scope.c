/* SPDX-License-Identifier: MIT */
/* Scope lists: normalised to RFC 6749 §3.3 scope-tokens; subsets match whole items. */
#include "core/err.h"
#include "harness.h"
#include "token/tok_scope.h"

TEST(scopes_normalise_and_match_whole_items)
{
    char out[64];
    ASSERT_EQ_INT(tok_scope_normalize(STR_LIT("  read   write "), out, sizeof(out)), 0);
    ASSERT_EQ_STR(out, "read write");
    ASSERT_EQ_INT(tok_scope_normalize(STR_LIT("a\"b"), out, sizeof(out)), ERR_INVAL);
    ASSERT_EQ_INT(tok_scope_normalize(STR_LIT("a\\b"), out, sizeof(out)), ERR_INVAL);
    ASSERT_EQ_INT(tok_scope_normalize(STR_LIT("caf\xc3\xa9"), out, sizeof(out)), ERR_INVAL);
    ASSERT_EQ_INT(tok_scope_normalize(STR_LIT("abcdefgh"), out, 4), ERR_LIMIT);
    ASSERT_TRUE(tok_scope_subset(STR_LIT(""), "read"));
    ASSERT_TRUE(tok_scope_subset(STR_LIT(" read  "), "read write"));
    ASSERT_TRUE(!tok_scope_subset(STR_LIT("rea"), "read write")); /* no prefix match */
    ASSERT_TRUE(!tok_scope_subset(STR_LIT("read admin"), "read write"));
    ASSERT_TRUE(!tok_scope_subset(STR_LIT("read"), ""));
}
