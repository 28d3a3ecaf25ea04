/* SPDX-License-Identifier: MIT */
/*
 * The command line: --help, and the configuration from built-in defaults, then the INI file
 * (--config FILE or FLOODGATE_CONFIG), then FLOODGATE_<KEY> environment variables, then
 * flags (later sources win), validated as a whole.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/version.h"
#include "redis/redis_sentinel.h"
#include "redis/redis_url.h"

extern char **environ;

void cli_usage(FILE *f)
{
    fprintf(
        f,
        "floodgate %s: authentication and token service built for traffic spikes\n"
        "\n"
        "Usage:\n"
        "  floodgate [--config FILE] [--KEY VALUE ...]   run the server\n"
        "  floodgate check-config FILE                  validate a configuration file\n"
        "  floodgate [flags] client create NAME [--grants LIST] [--scopes LIST]\n"
        "            [--audiences LIST] [--access-ttl SECONDS] [--json]\n"
        "            [--redirect-uris URI,..] [--public] [--first-party]\n"
        "            [--post-logout-uris URI,..] [--web-origins ORIGIN,..]\n"
        "            [--id-token-alg RS256|ES256|EdDSA]\n"
        "  floodgate [flags] client list|show ID|delete ID|rotate-secret ID [--json]\n"
        "  floodgate [flags] key list|rotate [--json]\n"
        "  floodgate [flags] user add|passwd NAME [--email E] [--name N]   (password on\n"
        "            stdin)\n"
        "  floodgate [flags] user import NAME HASH | disable|enable|delete NAME | list\n"
        "  floodgate [flags] event schedule --at TIME --expect Nx [--duration D] | list | "
        "cancel ID\n"
        "  floodgate [flags] store fold [--json]   fold the spent log and its runs into the\n"
        "            records (before going back to a release without them; the server stopped)\n"
        "  floodgate rehearse SCENARIO.json [--target URL] [--admin URL] ...   play a load\n"
        "            scenario against a running floodgate (see floodgate rehearse --help)\n"
        "  floodgate --help | --version\n"
        "  floodgate --config-reference                 print every key as a Markdown table\n"
        "\n"
        "Configuration comes from built-in defaults, then the INI file (--config FILE or\n"
        "FLOODGATE_CONFIG), then FLOODGATE_<KEY> environment variables, then flags; later\n"
        "sources win. The minimal start is:\n"
        "  floodgate --listen 127.0.0.1:8080 --data-dir ./data\n"
        "\n"
        "Keys (flag form; in the INI file use the key name under its [section]):\n",
        FG_VERSION);
    cfg_print_help(f);
    fprintf(f, "\nSignals: SIGTERM/SIGINT drain and exit 0; SIGHUP reopens the log files.\n"
               "Docs: README.md, docs/configuration.md.\n");
}

static void cfg_fail(const struct cfg_error *e)
{
    fprintf(stderr, "floodgate: configuration error: %s: %s\n", e->where, e->what);
}

/* Whether flag argv[i] takes argv[i + 1] as its value: every flag does, but --flag=value,
 * --json, and a boolean flag alone (--init-store), which means true unless a boolean word
 * follows it (--registration false). */
static bool takes_next(int argc, char **argv, int i)
{
    if (strchr(argv[i], '=') || strcmp(argv[i], "--json") == 0 || i + 1 >= argc)
        return false;
    return !cfg_flag_is_bool(argv[i]) || cfg_bool_word(argv[i + 1]) >= 0;
}

/* Applies flags from argv[from..]; returns 0, or 2 after printing the problem. */
static int apply_flags(struct cfg *c, int argc, char **argv, int from)
{
    struct cfg_error e = {0};

    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            i++; /* read earlier */
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        char name[128];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq && strncmp(a, "--", 2) == 0) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
            if (takes_next(argc, argv, i))
                val = argv[++i];
            else
                val = cfg_flag_is_bool(a) ? "true" : NULL;
        }
        int rc = cfg_set_flag(c, name, val, &e);
        if (rc == ERR_NOTFOUND) {
            fprintf(stderr, "floodgate: unknown option '%s' (see floodgate --help)\n", name);
            return 2;
        }
        if (rc) {
            cfg_fail(&e);
            return 2;
        }
    }
    return 0;
}

static const char *find_config(int argc, char **argv)
{
    const char *path = getenv("FLOODGATE_CONFIG");

    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path && *path ? path : NULL;
}

/* cfg_validate, and what only the modules above core can judge: the store's address. */
static int validate(const struct cfg *c, struct cfg_error *e)
{
    if (cfg_validate(c, e))
        return ERR_INVAL;
    if (c->store[0]) {
        static struct redis_sentinel_url su; /* (main thread; large) */
        static struct redis_cluster_url cu;
        struct redis_url u;
        char why[160];
        bool sentinel = strncmp(c->store, "redis-sentinel://", 17) == 0,
             cluster = strncmp(c->store, "redis-cluster://", 16) == 0;
        if (sentinel  ? redis_sentinel_url_parse(c->store, "store", &su, why, sizeof(why))
            : cluster ? redis_cluster_url_parse(c->store, "store", &cu, why, sizeof(why))
                      : redis_url_parse(c->store, "store", &u, why, sizeof(why))) {
            snprintf(e->where, sizeof(e->where), "store");
            snprintf(e->what, sizeof(e->what),
                     "'%.200s' is not a Redis address: expected "
                     "redis://[[user]:password@]host[:port][/db], "
                     "unix:///path[?db=N&user=U&password=P] or "
                     "redis-sentinel://[[user]:password@]host:port[,host:port...]/NAME[/db] "
                     "or redis-cluster://[[user]:password@]host:port[,host:port...]",
                     c->store);
            return ERR_INVAL;
        }
    }
    return ERR_OK;
}

static void print_error(const struct cfg_error *e, void *arg)
{
    (void)arg;
    cfg_fail(e);
}

int cli_check_config(struct cfg *c, const char *path)
{
    struct cfg_error e = {0};

    /* the file's errors in file order, then the environment's (the FLOODGATE_* variables a
     * unit's EnvironmentFile sets: run it with them, e.g. set -a; . secrets.env), then the
     * checks across keys, which need every source read */
    cfg_defaults(c);
    int n = cfg_check_file(c, path, print_error, NULL);
    n += cfg_check_env(c, (const char *const *)environ, print_error, NULL);
    if (n == 0 && validate(c, &e)) {
        cfg_fail(&e);
        n = 1;
    }
    if (n) {
        fprintf(stderr, "floodgate: %s: %d error%s\n", path, n, n == 1 ? "" : "s");
        return 1;
    }
    if (c->admin_token[0] && !cfg_is_loopback(c->admin_listen))
        fprintf(stderr,
                "floodgate: warning: admin_listen %s is not a loopback address: the "
                "admin API is reachable from the network\n",
                c->admin_listen);
    printf("%s: OK (with the FLOODGATE_* environment)\n", path);
    return 0;
}

int cli_config(struct cfg *c, int argc, char **argv, int *cmd)
{
    struct cfg_error e = {0};

    /* The first word that is not a flag or a flag's value is the command. */
    *cmd = 0;
    for (int i = 1; i < argc && !*cmd; i++) {
        if (argv[i][0] != '-')
            *cmd = i;
        else if (takes_next(argc, argv, i))
            i++;
    }
    if (*cmd && !cli_is_command(argv[*cmd])) {
        fprintf(stderr, "floodgate: unknown command '%s' (see floodgate --help)\n", argv[*cmd]);
        return 2;
    }
    cfg_defaults(c);
    const char *path = find_config(argc, argv);
    if (path && cfg_load_file(c, path, &e)) {
        cfg_fail(&e);
        return 2;
    }
    if (cfg_load_env(c, (const char *const *)environ, &e)) {
        cfg_fail(&e);
        return 2;
    }
    int rc = apply_flags(c, *cmd ? *cmd : argc, argv, 1);
    if (rc)
        return rc;
    if (validate(c, &e)) {
        cfg_fail(&e);
        return 2;
    }
    return 0;
}
