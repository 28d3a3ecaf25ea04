/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "json/json.h"

TEST(json_object_limits)
{
    json_t *j;
    char err[128];
    ASSERT_EQ_INT(json_parse_object(STR_LIT("{\"a\":1,\"b\":\"x\"}"), &j, err, sizeof(err)), 0);
    ASSERT_EQ_INT(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    ASSERT_EQ_INT(json_parse_object(STR_LIT("[1]"), &j, err, sizeof(err)), ERR_INVAL);
    ASSERT_EQ_INT(json_parse_object(STR_LIT("{\"a\":1,\"a\":2}"), &j, err, sizeof(err)), ERR_INVAL);
    ASSERT_EQ_INT(json_parse_object(STR_LIT("{\"a\":"), &j, err, sizeof(err)), ERR_INVAL);
    ASSERT_TRUE(strstr(err, "malformed") != NULL);
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[0] = '{';
    ASSERT_EQ_INT(json_parse_object((struct str){deep, 200}, &j, err, sizeof(err)), ERR_INVAL);
    ASSERT_TRUE(strstr(err, "deeper") != NULL);
    /* brackets inside strings do not count */
    ASSERT_EQ_INT(json_depth(STR_LIT("{\"a\":\"[[[[\\\"[[\"}")), 1);
}
