/* SPDX-License-Identifier: MIT */
#include <http_parser.h>

#include "core/err.h"
#include "harness.h"
#include "http/http_router.h"

static int h(struct http_request *r)
{
    (void)r;
    return HTTP_DONE;
}

TEST(router_match_params_and_allow)
{
    struct http_router *rt = http_router_new();
    struct str params[HTTP_PARAMS_MAX];
    unsigned np, allow;

    ASSERT_TRUE(http_router_add(rt, HTTP_M(HTTP_GET), "/healthz", h) > 0);
    ASSERT_TRUE(http_router_add(rt, HTTP_M(HTTP_GET) | HTTP_M(HTTP_DELETE), "/users/{name}", h) >
                0);
    ASSERT_TRUE(http_router_add(rt, HTTP_M(HTTP_POST), "/users/{name}/keys/{kid}", h) > 0);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/healthz"), params, &np, &allow) != NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_HEAD, STR_LIT("/healthz"), params, &np, &allow) != NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/healthz/"), params, &np, &allow) == NULL);
    ASSERT_EQ_INT(allow, 0);
    ASSERT_TRUE(http_router_match(rt, HTTP_POST, STR_LIT("/healthz"), params, &np, &allow) == NULL);
    ASSERT_EQ_INT(allow, HTTP_M(HTTP_GET) | HTTP_M(HTTP_HEAD));
    const struct http_route *r =
        http_router_match(rt, HTTP_POST, STR_LIT("/users/ann/keys/k1"), params, &np, &allow);
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ_INT(np, 2);
    ASSERT_EQ_VIEW(params[0], "ann");
    ASSERT_EQ_VIEW(params[1], "k1");
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/users/"), params, &np, &allow) == NULL);
    /* shorter or longer than a route's fixed part, or differing in its last byte */
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/healthzz"), params, &np, &allow) == NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/healthy"), params, &np, &allow) == NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/users"), params, &np, &allow) == NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/user/ann"), params, &np, &allow) == NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_POST, STR_LIT("/users/ann/keys"), params, &np, &allow) ==
                NULL);
    ASSERT_TRUE(http_router_match(rt, HTTP_GET, STR_LIT("/users//keys/x"), params, &np, &allow) ==
                NULL);
    char m[64];
    http_methods_str(HTTP_M(HTTP_GET) | HTTP_M(HTTP_DELETE) | HTTP_M(HTTP_HEAD), m, sizeof(m));
    ASSERT_EQ_STR(m, "DELETE, GET, HEAD");
    http_router_free(rt);
}

TEST(router_rejects_bad_patterns)
{
    struct http_router *rt = http_router_new();
    ASSERT_EQ_INT(http_router_add(rt, HTTP_M(HTTP_GET), "nope", h), ERR_INVAL);
    ASSERT_EQ_INT(http_router_add(rt, HTTP_M(HTTP_GET), "/x{a}", h), ERR_INVAL);
    ASSERT_EQ_INT(http_router_add(rt, HTTP_M(HTTP_GET), "/{a", h), ERR_INVAL);
    ASSERT_EQ_INT(http_router_add(rt, HTTP_M(HTTP_GET), "/{}", h), ERR_INVAL);
    ASSERT_EQ_INT(http_router_add(rt, HTTP_M(HTTP_GET), "/{a}b", h), ERR_INVAL);
    http_router_free(rt);
}
