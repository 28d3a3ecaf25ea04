/* SPDX-License-Identifier: MIT */
/* Scenario files and the open-loop arrival schedule. */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "rehearse/rh.h"

static int parse(const char *text, struct rh_scenario *sc, char *err)
{
    return rh_scenario_parse(text, strlen(text), sc, err, 200);
}

TEST(rh_scenario_parses_rates_and_defaults)
{
    static struct rh_scenario sc;
    char err[200] = "";
    int rc = parse("{\"name\":\"t\",\"users\":7,\"phases\":["
                   "{\"name\":\"a\",\"duration_s\":10,\"rates\":{\"login\":[\"1x\",\"10x\"],"
                   "\"introspect\":500,\"refresh\":\"20\"}},"
                   "{\"name\":\"b\",\"duration_s\":0.5,\"rates\":{\"verify\":[100,0]}}]}",
                   &sc, err);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(sc.name, "t");
    ASSERT_EQ_INT(sc.users, 7);
    ASSERT_EQ_INT(sc.connections, 512); /* defaults */
    ASSERT_EQ_INT(sc.timeout_ms, 10000);
    ASSERT_EQ_INT(sc.nphases, 2);
    ASSERT_EQ_INT(sc.calibrate_with, -1);
    ASSERT_TRUE(rh_scenario_uses_x(&sc));
    ASSERT_EQ_INT(parse("{\"calibrate_with\":\"b\",\"phases\":[{\"name\":\"a\","
                        "\"duration_s\":1,\"rates\":{}},{\"name\":\"b\",\"duration_s\":1,"
                        "\"rates\":{}}]}",
                        &sc, err),
                  0);
    ASSERT_EQ_INT(sc.calibrate_with, 1);
    ASSERT_EQ_INT(parse("{\"name\":\"t\",\"users\":7,\"phases\":["
                        "{\"name\":\"a\",\"duration_s\":10,\"rates\":{\"login\":[\"1x\",\"10x\"],"
                        "\"introspect\":500,\"refresh\":\"20\"}},"
                        "{\"name\":\"b\",\"duration_s\":0.5,\"rates\":{\"verify\":[100,0]}}]}",
                        &sc, err),
                  0);
    const struct rh_phase *a = &sc.phase[0];
    ASSERT_TRUE(a->rate[RH_LOGIN].from_x && a->rate[RH_LOGIN].to_x);
    ASSERT_TRUE(rh_rate_at(a, RH_LOGIN, 0, 40) == 40);
    ASSERT_TRUE(rh_rate_at(a, RH_LOGIN, 5, 40) == 220);
    ASSERT_TRUE(rh_rate_at(a, RH_LOGIN, 99, 40) == 400); /* clamped to the phase */
    ASSERT_TRUE(rh_rate_at(a, RH_INTROSPECT, 3, 40) == 500);
    ASSERT_TRUE(rh_rate_at(a, RH_REFRESH, 3, 40) == 20);
    ASSERT_TRUE(rh_rate_at(a, RH_TOKEN, 3, 40) == 0);
    ASSERT_TRUE(rh_rate_at(&sc.phase[1], RH_VERIFY, 0.25, 0) == 50);
}

TEST(rh_scenario_rejects_what_it_cannot_play)
{
    static struct rh_scenario sc;
    static const char *const bad[] = {
        "{}",
        "[]",
        "{\"phases\":[]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"logins\":1}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":-1}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":\"x\"}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":\"2y\"}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":[1,2,3]}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":2e9}}]}",
        "{\"phases\":[{\"duration_s\":0,\"rates\":{}}]}",
        "{\"phases\":[{\"rates\":{}}]}",
        "{\"phases\":[{\"duration_s\":1}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{},\"extra\":1}]}",
        "{\"user\":5,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"users\":0,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":\"<script>\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{}}],\"phases\":[]}",
        "{\"calibrate_with\":\"b\",\"phases\":[{\"name\":\"a\",\"duration_s\":1,\"rates\":{}}]}",
        "{\"connections\":0,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"connections\":20001,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"connections\":\"9\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"timeout_ms\":9,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"timeout_ms\":600001,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"calibrate_s\":0.5,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"calibrate_s\":601,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"calibrate_s\":\"5\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"users\":100001,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"users\":1.5,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":\"\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":7,\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":\"a&b\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":\"tab\\there\",\"phases\":[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"name\":\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\",\"phases\":"
        "[{\"duration_s\":1,\"rates\":{}}]}",
        "{\"phases\":{}}",
        "{\"phases\":[7]}",
        "{\"phases\":[{\"name\":\"\",\"duration_s\":1,\"rates\":{}}]}",
        "{\"phases\":[{\"name\":\"pppppppppppppppppppppppppppppppp\",\"duration_s\":1,\"rates\":{}}"
        "]}",
        "{\"phases\":[{\"duration_s\":86401,\"rates\":{}}]}",
        "{\"phases\":[{\"duration_s\":\"1\",\"rates\":{}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":[]}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":true}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":\"\"}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":[1,\"x\"]}}]}",
        "{\"phases\":[{\"duration_s\":1,\"rates\":{\"login\":[\"-1x\",1]}}]}",
        "{\"calibrate_with\":7,\"phases\":[{\"name\":\"a\",\"duration_s\":1,\"rates\":{}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[200] = "";
        if (parse(bad[i], &sc, err) != ERR_INVAL)
            harness_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
        ASSERT_TRUE(err[0] != 0);
    }
    char err[200];
    parse("{\"phases\":[{\"duration_s\":1,\"rates\":{\"logins\":1}}]}", &sc, err);
    ASSERT_TRUE(strstr(err, "phase 1") && strstr(err, "logins"));
}

TEST(rh_arrivals_follow_the_rate_integral)
{
    static struct rh_scenario sc;
    char err[200];
    ASSERT_EQ_INT(parse("{\"phases\":[{\"duration_s\":10,\"rates\":{\"login\":[0,100],"
                        "\"verify\":50,\"refresh\":[100,0]}}]}",
                        &sc, err),
                  0);
    const struct rh_phase *p = &sc.phase[0];
    /* constant: 50/s -> arrival k at k/50 s; 500 in the phase */
    ASSERT_TRUE(fabs(rh_arrivals_by(p, RH_VERIFY, 10, 0) - 500) < 1e-9);
    ASSERT_TRUE(fabs(rh_arrival_time(p, RH_VERIFY, 25, 0) - 0.5) < 1e-9);
    /* ramp 0 -> 100/s over 10 s: 500 arrivals, half the time gives a quarter of them */
    ASSERT_TRUE(fabs(rh_arrivals_by(p, RH_LOGIN, 10, 0) - 500) < 1e-9);
    ASSERT_TRUE(fabs(rh_arrivals_by(p, RH_LOGIN, 5, 0) - 125) < 1e-9);
    ASSERT_TRUE(fabs(rh_arrival_time(p, RH_LOGIN, 125, 0) - 5) < 1e-9);
    /* ramp down 100 -> 0: the first half carries three quarters */
    ASSERT_TRUE(fabs(rh_arrivals_by(p, RH_REFRESH, 5, 0) - 375) < 1e-9);
    ASSERT_TRUE(fabs(rh_arrival_time(p, RH_REFRESH, 375, 0) - 5) < 1e-6);
    /* the schedule is increasing and each arrival is due when its count is reached */
    double prev = 0;
    for (int k = 1; k <= 500; k++) {
        double t = rh_arrival_time(p, RH_LOGIN, k, 0);
        ASSERT_TRUE(t > prev && t <= 10 + 1e-9);
        ASSERT_TRUE(fabs(rh_arrivals_by(p, RH_LOGIN, t, 0) - k) < 1e-6);
        prev = t;
    }
}
