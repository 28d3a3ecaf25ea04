/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "harness.h"

static char path[64];

static const char *write_ini(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/fg-test-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(config_defaults_are_safe)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    ASSERT_EQ_STR(c.listen, "127.0.0.1:8080");
    ASSERT_EQ_INT(c.max_header_bytes, 16384);
    ASSERT_EQ_INT(c.max_body_bytes, 65536);
    ASSERT_EQ_INT(c.header_timeout_ms, 10000);
    ASSERT_EQ_INT(c.log_level, LOG_INFO);
    ASSERT_EQ_INT(cfg_validate(&c, &e), 0);
}

TEST(config_precedence_file_env_flag)
{
    struct cfg c;
    struct cfg_error e = {0};
    const char *env[] = {"FLOODGATE_MAX_BODY_BYTES=2k", "FLOODGATE_IDLE_TIMEOUT=5s", "PATH=/bin",
                         NULL};
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c,
                                write_ini("[server]\nlisten = 0.0.0.0:9000\nthreads = 3\n"
                                          "[limits]\nmax_body_bytes = 1m\nidle_timeout = 2m\n"),
                                &e),
                  0);
    ASSERT_EQ_INT(c.max_body_bytes, 1 << 20);
    ASSERT_EQ_INT(c.idle_timeout_ms, 120000);
    ASSERT_EQ_INT(cfg_load_env(&c, env, &e), 0);
    ASSERT_EQ_INT(c.max_body_bytes, 2048);
    ASSERT_EQ_INT(c.idle_timeout_ms, 5000);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--max-body-bytes", "100", &e), 0);
    ASSERT_EQ_INT(c.max_body_bytes, 100);
    ASSERT_EQ_STR(c.listen, "0.0.0.0:9000");
    ASSERT_EQ_INT(c.threads, 3);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--no-such-flag", "1", &e), ERR_NOTFOUND);
    unlink(path);
}

TEST(config_errors_name_the_line)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[server]\nthreads = 2\n\nbogus = 1\n"), &e),
                  ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, ":4") != NULL);
    ASSERT_TRUE(strstr(e.what, "bogus") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[limits]\nmax_body_bytes = 12q\n"), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, ":2") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[limits]\nheader_timeout = 10\n"), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "duration") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[server]\nmax_body_bytes = 1k\n"), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "[limits]") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[server]\nthreads = 100000\n"), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "range") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("this is not ini\n"), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, ":1") != NULL);
    ASSERT_EQ_INT(cfg_load_file(&c, "/nonexistent/x.ini", &e), ERR_IO);
    const char *env[] = {"FLOODGATE_NOPE=1", NULL};
    ASSERT_EQ_INT(cfg_load_env(&c, env, &e), ERR_INVAL);
    unlink(path);
}

struct seen {
    int n;
    char where[8][96];
};

static void note(const struct cfg_error *e, void *arg)
{
    struct seen *s = arg;
    if (s->n < 8) {
        const char *colon = strrchr(e->where, ':'); /* (the line, or the variable whole) */
        snprintf(s->where[s->n], sizeof(s->where[0]), "%.90s", colon ? colon : e->where);
    }
    s->n++;
}

TEST(config_check_names_every_error_in_file_order)
{
    struct cfg c;
    struct cfg_error e = {0};
    struct seen s = {0};
    char text[1024];
    cfg_defaults(&c);
    /* a line longer than inih takes at once is an error of its own (the rest of it is not
     * read as another line) */
    snprintf(text, sizeof(text),
             "[server]\n#%0600d\nthreads = x\nno equals here\n[limits]\nmax_body_bytes = 1k\n"
             "max_body_bytes = 2k\n[webhook.a]\nevents = *\nevents = *\n",
             0);
    ASSERT_EQ_INT(cfg_check_file(&c, write_ini(text), note, &s), 5);
    ASSERT_EQ_STR(s.where[0], ":2");
    ASSERT_EQ_STR(s.where[1], ":3");
    ASSERT_EQ_STR(s.where[2], ":4");
    ASSERT_EQ_STR(s.where[3], ":7");
    ASSERT_EQ_STR(s.where[4], ":10");
    /* start-up stops at the first, with its line; a syntax error before it comes first */
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c, path, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, ":2") != NULL);
    ASSERT_TRUE(strstr(e.what, "longer than") != NULL);
    cfg_defaults(&c);
    ASSERT_EQ_INT(
        cfg_load_file(&c, write_ini("[server]\nnonsense\nthreads = 1\nthreads = 2\n"), &e),
        ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, ":2") != NULL);
    ASSERT_TRUE(strstr(e.what, "syntax") != NULL);
    /* a key given twice is an error even when both agree; a good file has none */
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[server]\nthreads = 1\nthreads = 1\n"), &e),
                  ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "twice") != NULL);
    cfg_defaults(&c);
    s.n = 0;
    ASSERT_EQ_INT(cfg_check_file(&c, write_ini("[server]\nthreads = 1\n"), note, &s), 0);
    ASSERT_EQ_INT(s.n, 0);
    /* the environment: every bad variable, named */
    const char *env[] = {"FLOODGATE_THREADS=x", "HOME=/", "FLOODGATE_NOPE=1", NULL};
    s.n = 0;
    ASSERT_EQ_INT(cfg_check_env(&c, env, note, &s), 2);
    ASSERT_EQ_STR(s.where[0], "FLOODGATE_THREADS");
    ASSERT_EQ_STR(s.where[1], "FLOODGATE_NOPE");
    s.n = 0;
    ASSERT_EQ_INT(cfg_check_file(&c, "/nonexistent/x.ini", note, &s), 1);
    unlink(path);
}

TEST(config_loopback)
{
    ASSERT_TRUE(cfg_is_loopback("127.0.0.1:8081"));
    ASSERT_TRUE(cfg_is_loopback("127.8.9.10:1"));
    ASSERT_TRUE(cfg_is_loopback("localhost:8081"));
    ASSERT_TRUE(cfg_is_loopback("[::1]:8081"));
    ASSERT_TRUE(cfg_is_loopback("[::ffff:127.0.0.1]:8081"));
    ASSERT_TRUE(!cfg_is_loopback("0.0.0.0:8081"));
    ASSERT_TRUE(!cfg_is_loopback("10.0.0.1:8081"));
    ASSERT_TRUE(!cfg_is_loopback("[::]:8081"));
    ASSERT_TRUE(!cfg_is_loopback("admin.example:8081"));
    ASSERT_TRUE(!cfg_is_loopback("128.0.0.1:8081"));
    ASSERT_TRUE(!cfg_is_loopback("nonsense"));
}

TEST(config_hostport)
{
    char h[64];
    unsigned p;
    ASSERT_EQ_INT(cfg_split_hostport("127.0.0.1:0", h, sizeof(h), &p), 0);
    ASSERT_EQ_STR(h, "127.0.0.1");
    ASSERT_EQ_INT(cfg_split_hostport("[::1]:8080", h, sizeof(h), &p), 0);
    ASSERT_EQ_STR(h, "::1");
    ASSERT_EQ_INT(p, 8080);
    ASSERT_EQ_INT(cfg_split_hostport("::1:80", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("host:65536", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("host:", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport(":80", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("[::1", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("[::1]80", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("[]:80", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("host:80a", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("host:123456", h, sizeof(h), &p), ERR_INVAL);
    ASSERT_EQ_INT(cfg_split_hostport("averyveryveryveryveryveryveryveryveryveryveryveryverylonghost"
                                     "name:80",
                                     h, sizeof(h), &p),
                  ERR_INVAL);
}

TEST(config_policy_by_mode)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    ASSERT_EQ_INT(c.pol_wait_ms[1], 100);
    ASSERT_EQ_INT(c.pol_wait_ms[3], 1500);
    ASSERT_EQ_INT(c.pol_load_pct[2], 90);
    ASSERT_EQ_INT(c.pol_ip_div[3], 4);
    ASSERT_EQ_INT(c.pol_ttl_factor[2], 2);
    ASSERT_EQ_INT(c.pol_ttl_max_s, 3600);
    ASSERT_EQ_INT(c.pol_event_lead_s, 300);
    ASSERT_EQ_STR(c.pol_registration_pause, "shed");
    ASSERT_EQ_INT(
        cfg_load_file(&c,
                      write_ini("[policy]\npolicy_wait_surge = 2s\npolicy_wait_shed = 3s\n"
                                "policy_ttl_factor_surge = 4\n"
                                "policy_registration_pause = surge\n"),
                      &e),
        0);
    ASSERT_EQ_INT(c.pol_wait_ms[2], 2000);
    ASSERT_EQ_INT(c.pol_ttl_factor[2], 4);
    ASSERT_EQ_INT(cfg_validate(&c, &e), 0);
    /* thresholds may not fall from one mode to the next */
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-wait-shed", "1s", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "must not fall") != NULL);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-wait-shed", "3s", &e), 0);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-load-elevated", "95", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-load-elevated", "50", &e), 0);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-registration-pause", "sometimes", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--policy-registration-pause", "never", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), 0);
    ASSERT_TRUE(cfg_set_flag(&c, "--policy-ttl-factor-shed", "25", &e) != 0); /* 1..24 */
    /* waiting for replicas: only on Redis, with a refresh grace, within redis_timeout */
    ASSERT_EQ_INT(cfg_set_flag(&c, "--redis-wait-replicas", "1", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "store = redis://") != NULL);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--store", "redis://127.0.0.1:6379", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "refresh_grace") != NULL);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--refresh-grace", "10s", &e), 0);
    ASSERT_EQ_INT(cfg_validate(&c, &e), 0);
    ASSERT_EQ_INT(cfg_set_flag(&c, "--redis-wait-timeout", "250ms", &e), 0); /* = redis_timeout */
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "below redis_timeout") != NULL);
    unlink(path);
}

/* Every kind of bad value names the key and says what it wanted (issue #11 item 22: these
 * refusals had never run), and a refused value changes nothing. */
static const char *flag_error(const char *flag, const char *value)
{
    static struct cfg c;
    static struct cfg_error e;
    cfg_defaults(&c);
    memset(&e, 0, sizeof(e));
    int rc = cfg_set_flag(&c, flag, value, &e);
    return rc == ERR_INVAL ? e.what : rc == ERR_NOTFOUND ? "(not found)" : "(accepted)";
}

TEST(config_every_kind_of_bad_value)
{
    char big[CFG_STR_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_TRUE(strstr(flag_error("--issuer", big), "longer than") != NULL);
    ASSERT_TRUE(strstr(flag_error("--log-level", "loud"), "debug, info") != NULL);
    ASSERT_TRUE(strstr(flag_error("--registration", "maybe"), "true or false") != NULL);
    ASSERT_TRUE(strstr(flag_error("--threads", "two"), "whole number") != NULL);
    ASSERT_TRUE(strstr(flag_error("--threads", "-1"), "range") != NULL);
    ASSERT_TRUE(strstr(flag_error("--max-body-bytes", "1x"), "size") != NULL);
    ASSERT_TRUE(strstr(flag_error("--ratelimit-login-ip", "10/d"), "login") != NULL);
    ASSERT_TRUE(strstr(flag_error("--ratelimit-login-ip", "x/s"), "login") != NULL);
    ASSERT_TRUE(strstr(flag_error("--refresh-ttl", "forever"), "duration") != NULL);
    ASSERT_EQ_STR(flag_error("--listen", NULL), "--listen needs a value");
    ASSERT_EQ_STR(flag_error("--no-such-flag", "1"), "(not found)");
    ASSERT_EQ_STR(flag_error("-x", "1"), "(not found)");
    ASSERT_EQ_STR(flag_error("--registration", "off"), "(accepted)");
    ASSERT_EQ_STR(flag_error("--ratelimit-login-ip", "off"), "(accepted)");
    ASSERT_EQ_STR(flag_error("--ratelimit-login-ip", "5/m:9"), "(accepted)");
    /* each malformed rate, duration and size is refused, never read as something else */
    static const char *const bad[][2] = {
        {"--ratelimit-login-ip", "0/s"},
        {"--ratelimit-login-ip", "10/"},
        {"--ratelimit-login-ip", "10/s:"},
        {"--ratelimit-login-ip", "10/s:0"},
        {"--ratelimit-login-ip", "10/s:x"},
        {"--ratelimit-login-ip", "10/sx"},
        {"--ratelimit-login-ip", "10"},
        {"--ratelimit-login-ip", "2000000/s"},
        {"--ratelimit-login-ip", "10/s:99999999"},
        {"--ratelimit-login-ip", ""},
        {"--refresh-ttl", "99999999999999999999d"},
        {"--refresh-ttl", "9999999999999999h"},
        {"--refresh-ttl", "-5m"},
        {"--refresh-ttl", "5 m"},
        {"--refresh-ttl", "5parsecs"},
        {"--max-body-bytes", "99999999999999999999"},
        {"--max-body-bytes", "-1"},
        {"--threads", "3x"},
        {"--threads", "99999999999999999999"},
        {"--registration", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = flag_error(bad[i][0], bad[i][1]);
        if (why[0] == '(')
            harness_fail(__FILE__, __LINE__, "%s %s: %s", bad[i][0], bad[i][1], why);
    }
    ASSERT_TRUE(cfg_flag_is_bool("--init-store"));
    ASSERT_TRUE(!cfg_flag_is_bool("--listen"));
    ASSERT_TRUE(!cfg_flag_is_bool("--nope"));
    ASSERT_TRUE(!cfg_flag_is_bool("x"));
}

TEST(config_validation_across_keys)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    c.max_url_bytes = c.max_header_bytes + 1;
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_STR(e.where, "max_url_bytes");
    cfg_defaults(&c);
    snprintf(c.admin_token, sizeof(c.admin_token), "%s", "0123456789abcdef0123456789abcdef");
    snprintf(c.admin_listen, sizeof(c.admin_listen), "nowhere");
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_STR(e.where, "admin_listen");
    cfg_defaults(&c);
    snprintf(c.signing_alg, sizeof(c.signing_alg), "HS256");
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_STR(e.where, "signing_alg");
    cfg_defaults(&c);
    c.data_dir[0] = '\0';
    ASSERT_EQ_INT(cfg_validate(&c, &e), ERR_INVAL);
    ASSERT_EQ_STR(e.where, "data_dir");
    /* (the store's address is checked above core: test_redis_url, and main at start-up) */
}

TEST(config_webhook_sections)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c,
                                write_ini("[webhook.ops]\nurl = http://127.0.0.1:9/x\n"
                                          "secret = 0123456789abcdef0123\n"
                                          "events = account.locked\n"),
                                &e),
                  0);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[webhook.ops]\nurl = http://x\ncolour = red\n"), &e),
                  ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "unknown key 'colour'") != NULL);
    char ini[512];
    snprintf(ini, sizeof(ini), "[webhook.ops]\nsecret = %0*d\n", 300, 0);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini(ini), &e), ERR_INVAL); /* (inih: line length) */
    /* a name of 1..63 characters, and a bounded number of endpoints */
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini("[webhook.]\nurl = http://x\n"), &e), ERR_INVAL);
    snprintf(ini, sizeof(ini), "[webhook.%0*d]\nurl = http://x\n", 40, 0);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini(ini), &e), 0);
    /* longer is refused, not cut by inih to a name that could be another section's */
    snprintf(ini, sizeof(ini), "[webhook.%0*d]\nurl = http://x\n", 41, 0);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini(ini), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "too long") != NULL);
    snprintf(ini, sizeof(ini), "[webhook.%0*d]\nurl = http://x\n", 64, 0);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini(ini), &e), ERR_INVAL);
    static char many[CFG_HOOKS_MAX * 64 + 64];
    size_t n = 0;
    for (int i = 0; i <= CFG_HOOKS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "[webhook.h%d]\nurl = http://x\n", i);
    cfg_defaults(&c);
    ASSERT_EQ_INT(cfg_load_file(&c, write_ini(many), &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "at most") != NULL);
    unlink(path);
}

TEST(config_environment_edges)
{
    struct cfg c;
    struct cfg_error e = {0};
    cfg_defaults(&c);
    char longname[200];
    snprintf(longname, sizeof(longname), "FLOODGATE_%0*d=1", 120, 0);
    const char *const skipped[] = {"FLOODGATE_CONFIG=/etc/x.ini", "FLOODGATE_NOVALUE", "PATH=/bin",
                                   NULL};
    ASSERT_EQ_INT(cfg_load_env(&c, skipped, &e), 0);
    const char *const toolong[] = {longname, NULL};
    ASSERT_EQ_INT(cfg_load_env(&c, toolong, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.what, "too long") != NULL);
    const char *const unknown[] = {"FLOODGATE_COLOUR=red", NULL};
    ASSERT_EQ_INT(cfg_load_env(&c, unknown, &e), ERR_INVAL);
    const char *const badval[] = {"FLOODGATE_THREADS=many", NULL};
    ASSERT_EQ_INT(cfg_load_env(&c, badval, &e), ERR_INVAL);
    ASSERT_TRUE(strstr(e.where, "FLOODGATE_THREADS") != NULL);
}
