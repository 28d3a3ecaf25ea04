/* SPDX-License-Identifier: MIT */
/*
 * The admin CLI, working directly on the data directory (of a stopped or a running server:
 * LMDB serialises writers across processes, and a running server notices changes through
 * the store generation within a second):
 *
 *   floodgate [flags] client create NAME [--grants G,..] [--scopes "a b"] [--audiences "x y"]
 *                                        [--access-ttl SECONDS] [--introspection] [--json]
 *                                        [--redirect-uris URI,..] [--public] [--first-party]
 *                                        [--post-logout-uris URI,..] [--web-origins O,..]
 *                                        [--id-token-alg ALG]
 *   floodgate [flags] client list|show ID|delete ID|rotate-secret ID [--json]
 *   floodgate [flags] client introspection ID on|off [--json]
 *   floodgate [flags] key list|rotate|reseal [--json]
 *
 * Output is for people by default and JSON with --json; secrets are printed once, at
 * creation and rotation.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "auth/auth_admin.h"
#include "auth/auth_client.h"
#include "auth/auth_client_web.h"
#include "auth/auth_password.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "policy/pol_announce.h"
#include "store/store.h"
#include "token/tok_jws.h"
#include "token/tok_keys.h"
#include "token/tok_scope.h"

struct cli {
    const struct cfg *cfg;
    struct store *st;
    uint8_t *key;
    int json;
};

int cli_is_command(const char *word)
{
    return strcmp(word, "client") == 0 || strcmp(word, "key") == 0 || strcmp(word, "user") == 0 ||
           strcmp(word, "event") == 0 || strcmp(word, "store") == 0;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: floodgate [--data-dir DIR] client create NAME [--grants LIST] [--scopes LIST]\n"
        "                 [--audiences LIST] [--access-ttl SECONDS] [--introspection] [--json]\n"
        "                 [--redirect-uris URI,..] [--public] [--first-party]\n"
        "                 [--post-logout-uris URI,..] [--web-origins ORIGIN,..]\n"
        "                 [--id-token-alg RS256|ES256|EdDSA]\n"
        "       floodgate [--data-dir DIR] client list|show ID|delete ID|rotate-secret ID "
        "[--json]\n"
        "       floodgate [--data-dir DIR] client introspection ID on|off\n"
        "       floodgate [--data-dir DIR] key list|rotate|reseal [--json]\n"
        "       floodgate [--data-dir DIR] user add NAME [--email E] [--name N] [--json]\n"
        "                                                         (password on stdin)\n"
        "       floodgate [--data-dir DIR] user passwd NAME              (password on stdin)\n"
        "       floodgate [--data-dir DIR] user import NAME HASH [--json] (bcrypt or "
        "PBKDF2-SHA256)\n"
        "       floodgate [--data-dir DIR] user disable|enable|delete NAME\n"
        "       floodgate [--data-dir DIR] user list [--json]\n"
        "       floodgate [--data-dir DIR] event schedule --at TIME --expect Nx "
        "[--duration D] [--name NAME] [--json]\n"
        "                 (TIME: epoch seconds, 2026-11-28T18:00:00Z, or +30m)\n"
        "       floodgate [--data-dir DIR] event list [--json] | cancel ID\n"
        "       floodgate [--data-dir DIR] store fold [--json]   (before going back to a "
        "release\n"
        "                 without the spent log or its runs; the server stopped)\n");
    return 2;
}

static void print_client(const struct auth_client *c, const struct auth_client_web *w,
                         const char *secret, int json)
{
    static const char *const what[AUTH_WEB_LISTS] = {
        "redirect_uri:", "post_logout:", "web_origin:"};
    if (!json) {
        printf("client_id:  %s\nname:       %s\n", c->id, c->name);
        if (secret && secret[0])
            printf("secret:     %s   (shown once: store it now)\n", secret);
        printf("grants:    ");
        for (unsigned b = 1; b <= AUTH_GRANT_AUTHORIZATION_CODE; b <<= 1)
            if (c->grants & b)
                printf(" %s", auth_grant_name(b));
        printf("\nscopes:     %s\naudiences:  %s\n", c->scopes, c->audiences);
        if (c->access_ttl)
            printf("access_ttl: %llds\n", (long long)c->access_ttl);
        if (c->introspect_any)
            printf("introspection: any token\n");
        if (c->public_client || c->first_party)
            printf("kind:       %s%s%s\n", c->public_client ? "public (no secret; PKCE)" : "",
                   c->public_client && c->first_party ? ", " : "",
                   c->first_party ? "first-party (no consent page)" : "");
        for (int l = 0; w && l < AUTH_WEB_LISTS; l++)
            for (unsigned i = 0; i < w->n[l]; i++)
                printf("%-13s %s\n", what[l],
                       l == AUTH_WEB_REDIRECT ? w->redirect[i]
                       : l == AUTH_WEB_LOGOUT ? w->logout[i]
                                              : w->origin[i]);
        return;
    }
    struct buf b;
    buf_init(&b, 1 << 16);
    if (auth_client_json(&b, c, w, secret) == ERR_OK)
        printf("%.*s\n", (int)b.len, b.p);
    cr_wipe(b.p, b.cap);
    buf_fini(&b);
}

static int set_list(const char *val, char *dst, size_t cap, const char *what)
{
    /* Commas are accepted as separators too: "a,b" == "a b". */
    char tmp[AUTH_LIST_MAX + 1];
    size_t n = strlen(val);
    if (n >= sizeof(tmp)) {
        fprintf(stderr, "floodgate: %s too long\n", what);
        return ERR_INVAL;
    }
    for (size_t i = 0; i <= n; i++)
        tmp[i] = val[i] == ',' ? ' ' : val[i];
    if (tok_scope_normalize(str_c(tmp), dst, cap)) {
        fprintf(stderr, "floodgate: %s: invalid characters in '%s'\n", what, val);
        return ERR_INVAL;
    }
    return ERR_OK;
}

/* One of client create's browser-facing options into w: 1 (taken), 0 (not one), or -1. */
static int web_option(const char *opt, const char *v, struct auth_client *c,
                      struct auth_client_web *w)
{
    static const struct {
        const char *opt;
        enum auth_web_list list;
    } lists[] = {{"--redirect-uris", AUTH_WEB_REDIRECT},
                 {"--post-logout-uris", AUTH_WEB_LOGOUT},
                 {"--web-origins", AUTH_WEB_ORIGIN}};
    const char *why;

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(opt, lists[i].opt) == 0 && v) {
            if (auth_client_web_add(w, lists[i].list, str_c(v), &why) == ERR_OK)
                return 1;
            fprintf(stderr, "floodgate: %s: %s\n", opt, why);
            return -1;
        }
    if (strcmp(opt, "--id-token-alg") == 0 && v) {
        c->id_token_alg = (uint8_t)tok_alg_parse(v);
        if (c->id_token_alg)
            return 1;
        fprintf(stderr, "floodgate: --id-token-alg is RS256, ES256 or EdDSA\n");
        return -1;
    }
    return 0;
}

static int client_option(struct auth_client *c, struct auth_client_web *w, const char *opt,
                         const char *v, bool *grants_set)
{
    int web = web_option(opt, v, c, w);
    if (web)
        return web < 0 ? -1 : 1;
    bool *flag = strcmp(opt, "--public") == 0          ? &c->public_client
                 : strcmp(opt, "--first-party") == 0   ? &c->first_party
                 : strcmp(opt, "--introspection") == 0 ? &c->introspect_any
                                                       : NULL;
    if (flag) {
        *flag = true;
        return 0;
    }
    if (!v)
        return -2;
    if (strcmp(opt, "--grants") == 0) {
        *grants_set = true;
        if (auth_grants_parse(v, &c->grants) == ERR_OK && c->grants)
            return 1;
        fprintf(stderr, "floodgate: grants are client_credentials, refresh_token, password, "
                        "authorization_code\n");
        return -1;
    }
    if (strcmp(opt, "--scopes") == 0 || strcmp(opt, "--audiences") == 0) {
        bool sc = opt[2] == 's';
        return set_list(v, sc ? c->scopes : c->audiences,
                        sc ? sizeof(c->scopes) : sizeof(c->audiences), opt + 2)
                   ? -1
                   : 1;
    }
    if (strcmp(opt, "--access-ttl") == 0) {
        char *end;
        long long t = strtoll(v, &end, 10);
        if (*end || t < 10 || t > TOK_ACCESS_TTL_MAX_S) {
            fprintf(stderr, "floodgate: --access-ttl takes 10..86400 seconds\n");
            return -1;
        }
        c->access_ttl = t;
        return 1;
    }
    return -2;
}

static int client_create(struct cli *x, int argc, char **argv)
{
    struct auth_client c;
    struct auth_client_web w;
    char secret[AUTH_SECRET_LEN + 1];
    bool grants_set = false;
    const char *why;

    if (argc < 1 || argv[0][0] == '-')
        return usage();
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    if (strlen(argv[0]) > AUTH_NAME_MAX) {
        fprintf(stderr, "floodgate: client name longer than %d bytes\n", AUTH_NAME_MAX);
        return 2;
    }
    snprintf(c.name, sizeof(c.name), "%s", argv[0]);
    c.grants = AUTH_GRANT_CLIENT_CREDENTIALS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            x->json = 1;
            continue;
        }
        int taken = client_option(&c, &w, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &grants_set);
        if (taken == -2)
            return usage();
        if (taken < 0)
            return 2;
        i += taken;
    }
    if (!grants_set && w.n[AUTH_WEB_REDIRECT]) /* a browser's client, unless told otherwise */
        c.grants = AUTH_GRANT_AUTHORIZATION_CODE | AUTH_GRANT_REFRESH_TOKEN;
    auth_client_web_default_origins(&w);
    if (auth_client_validate(&c, &w, &why)) {
        fprintf(stderr, "floodgate: %s\n", why);
        return 2;
    }
    int rc = auth_client_create(x->st, x->key, &c, &w, clock_wall_s(), secret);
    if (rc) {
        fprintf(stderr, "floodgate: cannot create the client: %s\n", err_str(rc));
        return 1;
    }
    print_client(&c, &w, secret, x->json);
    cr_wipe(secret, sizeof(secret));
    return 0;
}

struct list_ctx {
    int json;
    int n;
};

/* `... list [--json]`: every record of a table, one line each or one JSON array. */
static int list_table(struct cli *x, enum store_table t, store_each_cb fn)
{
    struct list_ctx l = {x->json, 0};
    if (x->json)
        printf("[");
    int rc = store_each(x->st, t, fn, &l);
    if (x->json)
        printf("]\n");
    return rc ? 1 : 0;
}

static int on_client(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct list_ctx *l = ctx;
    struct auth_client c;

    if (auth_client_decode(key, klen, val, vlen, &c))
        return ERR_OK; /* skip what we cannot read rather than hide the rest */
    if (l->json) {
        struct auth_client_web w;
        printf("%s", l->n ? "," : "");
        print_client(&c, auth_client_decode_web(val, vlen, &w) ? NULL : &w, NULL, 1);
    } else {
        printf("%-24s %s\n", c.id, c.name);
    }
    l->n++;
    return ERR_OK;
}

static int client_cmd(struct cli *x, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *verb = argv[0];
    if (strcmp(verb, "create") == 0)
        return client_create(x, argc - 1, argv + 1);
    if (strcmp(verb, "list") == 0)
        return list_table(x, STORE_T_CLIENTS, on_client);
    if (argc < 2 || argv[1][0] == '-')
        return usage();
    const char *id = argv[1];
    struct auth_client c;
    struct auth_client_web w;
    if (strcmp(verb, "show") == 0) {
        int rc = auth_client_get_web(x->st, id, &c, &w);
        if (rc) {
            fprintf(stderr, "floodgate: client %s: %s\n", id, err_str(rc));
            return 1;
        }
        print_client(&c, &w, NULL, x->json);
        return 0;
    }
    if (strcmp(verb, "introspection") == 0) {
        bool on = argc >= 3 && strcmp(argv[2], "on") == 0;
        if (argc < 3 || (!on && strcmp(argv[2], "off") != 0))
            return usage();
        int rc = auth_client_set_introspection(x->st, id, on);
        if (rc) {
            fprintf(stderr, "floodgate: client %s: %s\n", id, err_str(rc));
            return 1;
        }
        printf(x->json ? "{\"client_id\":\"%s\",\"introspection\":%s}\n"
                       : "client %s may introspect %s\n",
               id, x->json ? (on ? "true" : "false") : (on ? "any token" : "its own tokens only"));
        return 0;
    }
    if (strcmp(verb, "rotate-secret") == 0) {
        char secret[AUTH_SECRET_LEN + 1];
        int rc = auth_client_rotate_secret(x->st, x->key, id, secret);
        if (rc == ERR_OK)
            rc = auth_client_get_web(x->st, id, &c, &w);
        if (rc) {
            fprintf(stderr, "floodgate: client %s: %s\n", id,
                    rc == ERR_INVAL ? "a public client has no secret" : err_str(rc));
            return 1;
        }
        print_client(&c, &w, secret, x->json);
        cr_wipe(secret, sizeof(secret));
        return 0;
    }
    if (strcmp(verb, "delete") == 0) {
        int rc = store_exec_kv(x->st, STORE_OP_DELETE, STORE_T_CLIENTS, id, NULL, 0);
        if (rc) {
            fprintf(stderr, "floodgate: client %s: %s\n", id, err_str(rc));
            return 1;
        }
        if (x->json)
            printf("{\"deleted\":\"%s\"}\n", id);
        else
            printf("deleted %s\n", id);
        return 0;
    }
    return usage();
}

static int key_cmd(struct cli *x, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    int64_t now = clock_wall_s();
    if (strcmp(argv[0], "rotate") == 0) {
        struct tok_key_policy kp = {tok_alg_parse(x->cfg->signing_alg),
                                    x->cfg->key_publish_ahead_ms / 1000, x->cfg->leeway_ms / 1000,
                                    tok_alg_parse(x->cfg->id_token_signing_alg)};
        struct tok_key_rotation rot;
        int rc = tok_keys_rotate_by(x->st, &kp, now, &rot);
        if (rc) {
            fprintf(stderr, "floodgate: key rotation failed: %s%s\n", err_str(rc),
                    rc == ERR_LIMIT ? " (the ring is full: wait for retired keys to expire)" : "");
            return 1;
        }
        if (x->json) {
            printf("{\"kid\":\"%s\",\"active_from\":%lld,\"keys\":[",
                   tok_key_rotation_kid(&rot, kp.alg), (long long)rot.from);
            for (unsigned i = 0; i < rot.n; i++)
                printf("%s{\"kid\":\"%s\",\"alg\":\"%s\"}", i ? "," : "", rot.keys[i].kid,
                       tok_alg_name(rot.keys[i].alg));
            printf("]}\n");
        } else {
            for (unsigned i = 0; i < rot.n; i++)
                printf("new %-5s key %s signs from %lld (now + %llds)\n",
                       tok_alg_name(rot.keys[i].alg), rot.keys[i].kid, (long long)rot.from,
                       (long long)(rot.from - now));
            printf("the previous keys stay published until their tokens expire\n");
        }
        return 0;
    }
    if (strcmp(argv[0], "reseal") == 0) {
        unsigned n;
        int rc = tok_keys_reseal(x->st, &n);
        if (rc) {
            fprintf(stderr, "floodgate: reseal failed: %s\n", err_str(rc));
            return 1;
        }
        if (x->json)
            printf("{\"resealed\":%u}\n", n);
        else
            printf("%u key(s) sealed under the server key\n", n);
        return 0;
    }
    if (strcmp(argv[0], "list") == 0) {
        struct tok_ring r = {0};
        if (tok_ring_load(&r, x->st)) {
            fprintf(stderr, "floodgate: cannot read keys\n");
            return 1;
        }
        if (x->json)
            printf("[");
        for (unsigned i = 0; i < r.n; i++) {
            const struct tok_ring_key *k = &r.keys[i];
            const struct tok_ring_key *signer = tok_ring_signer(&r, k->k.alg, now);
            if (x->json)
                printf("%s{\"kid\":\"%s\",\"alg\":\"%s\",\"created\":%lld,\"active_from\":%lld,"
                       "\"retire_at\":%lld,\"signing\":%s}",
                       i ? "," : "", k->k.kid, tok_alg_name(k->k.alg), (long long)k->created_at,
                       (long long)k->active_from, (long long)k->retire_at,
                       k == signer ? "true" : "false");
            else
                printf("%-18s %-5s active_from=%lld retire_at=%lld%s\n", k->k.kid,
                       tok_alg_name(k->k.alg), (long long)k->active_from, (long long)k->retire_at,
                       k == signer ? "  (signing)" : "");
        }
        if (x->json)
            printf("]\n");
        tok_ring_clear(&r);
        return 0;
    }
    return usage();
}

/* Reads one line (the password) from stdin, without its newline. */
static int read_password(char *out, size_t cap, size_t *len)
{
    if (!fgets(out, (int)cap, stdin)) {
        fprintf(stderr, "floodgate: expected the password on standard input\n");
        return ERR_INVAL;
    }
    *len = strcspn(out, "\r\n");
    out[*len] = '\0';
    return ERR_OK;
}

static int on_user(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct list_ctx *l = ctx;
    struct auth_user u;

    if (auth_user_decode(key, klen, val, vlen, &u))
        return ERR_OK;
    if (l->json) {
        struct buf b;
        buf_init(&b, 4096);
        if (auth_user_json(&b, &u) == ERR_OK)
            printf("%s%.*s", l->n ? "," : "", (int)b.len, b.p);
        buf_fini(&b);
    } else
        printf("%-32s %s%s\n", u.name, u.id, u.disabled ? "  (disabled)" : "");
    l->n++;
    return ERR_OK;
}

/* The account change a verb makes (auth_user_change), or -1 for the other verbs. */
static int change_of(const char *verb)
{
    return strcmp(verb, "disable") == 0  ? AUTH_USER_DISABLE
           : strcmp(verb, "enable") == 0 ? AUTH_USER_ENABLE
           : strcmp(verb, "delete") == 0 ? AUTH_USER_DELETE
           : strcmp(verb, "passwd") == 0 ? AUTH_USER_PASSWORD
                                         : -1;
}

/* The password from stdin, checked against the same policy as registration and the admin
 * API (the deny list included). 0, or the exit code after saying why. */
static int new_password(struct cli *x, char *pw, size_t cap, size_t *len)
{
    struct auth_denylist *deny = NULL;
    char err[256];
    const char *why;

    if (read_password(pw, cap, len))
        return 2;
    if (x->cfg->password_denylist[0] &&
        auth_denylist_load(x->cfg->password_denylist, &deny, err, sizeof(err))) {
        cr_wipe(pw, cap);
        fprintf(stderr, "floodgate: password_denylist: %s\n", err);
        return 1;
    }
    int rc = auth_password_policy((struct str){pw, *len}, deny, &why);
    auth_denylist_free(deny);
    if (rc) {
        cr_wipe(pw, cap);
        fprintf(stderr, "floodgate: %s\n", why);
        return 2;
    }
    return 0;
}

static void user_done(struct cli *x, const char *verb, int change, const struct auth_user *u,
                      const char *name)
{
    if (strcmp(verb, "add") == 0 || strcmp(verb, "import") == 0) {
        if (x->json)
            printf("{\"username\":\"%s\",\"id\":\"%s\"}\n", u->name, u->id);
        else
            printf("user %s created (id %s)\n", u->name, u->id);
    } else if (!x->json) {
        bool ends = auth_user_change_ends_sessions((enum auth_user_change)change);
        printf("user %s: %s done%s\n", name, verb,
               ends ? "; every session of the user is revoked" : "");
    } else {
        printf("{\"username\":\"%s\",\"%s\":true}\n", name, verb);
    }
}

static int user_cmd(struct cli *x, int argc, char **argv)
{
    char name[AUTH_USERNAME_MAX + 1], pw[AUTH_PASSWORD_MAX + 2];
    struct auth_svc svc = {
        .st = x->st,
        .key = x->key,
        .pp = {x->cfg->argon2_memory_kib, x->cfg->argon2_passes, x->cfg->argon2_lanes}};
    struct auth_user u;
    size_t pwlen = 0;
    int rc;

    if (argc < 1)
        return usage();
    if (strcmp(argv[0], "list") == 0)
        return list_table(x, STORE_T_USERS, on_user);
    if (argc < 2 || argv[1][0] == '-')
        return usage();
    if (auth_username_normalize(str_c(argv[1]), name)) {
        fprintf(stderr, "floodgate: usernames are 1-64 of a-z 0-9 . _ - @ + (case-insensitive)\n");
        return 2;
    }
    const char *verb = argv[0];
    int change = change_of(verb);
    struct auth_user profile; /* add, import: --email E, --name N */
    memset(&profile, 0, sizeof(profile));
    for (int i = strcmp(verb, "import") == 0 ? 3 : 2; i + 1 < argc; i++) {
        const char *why, *v = argv[i + 1];
        bool email = strcmp(argv[i], "--email") == 0, display = strcmp(argv[i], "--name") == 0;
        if (!email && !display)
            continue;
        if (auth_user_profile(&profile, email ? v : NULL, display ? v : NULL, &why)) {
            fprintf(stderr, "floodgate: %s\n", why);
            return 2;
        }
        i++;
    }
    if ((strcmp(verb, "add") == 0 || change == AUTH_USER_PASSWORD) &&
        (rc = new_password(x, pw, sizeof(pw), &pwlen)) != 0)
        return rc;
    if (strcmp(verb, "add") == 0) {
        rc = auth_admin_user_add(&svc, name, (struct str){pw, pwlen}, clock_wall_s(), &profile, &u);
    } else if (strcmp(verb, "import") == 0) {
        if (argc < 3)
            return usage();
        /* A hash we cannot read would lock the user out: its form is checked first. */
        rc = auth_admin_user_import(&svc, name, argv[2], clock_wall_s(), &profile, &u);
        if (rc == ERR_INVAL) {
            fprintf(stderr, "floodgate: not a supported hash (argon2id PHC, bcrypt "
                            "$2a$/$2b$/$2y$, $pbkdf2-sha256$, pbkdf2_sha256$)\n");
            return 2;
        }
    } else if (change >= 0) {
        rc = auth_admin_user_change(&svc, name, (enum auth_user_change)change,
                                    (struct str){pw, pwlen}, clock_wall_s(), &u);
    } else {
        return usage();
    }
    cr_wipe(pw, sizeof(pw));
    if (rc) {
        fprintf(stderr, "floodgate: user %s: %s\n", name,
                rc == ERR_CONFLICT ? "already exists" : err_str(rc));
        return 1;
    }
    user_done(x, verb, change, &u, name);
    return 0;
}

static int on_event(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct list_ctx *l = ctx;
    if (l->json)
        printf("%s{\"id\":\"%.*s\",\"event\":%.*s}", l->n ? "," : "", (int)klen, (const char *)key,
               (int)vlen, (const char *)val);
    else
        printf("%.*s  %.*s\n", (int)klen, (const char *)key, (int)vlen, (const char *)val);
    l->n++;
    return ERR_OK;
}

/* `store fold`: the embedded store's spent log and runs folded into the refresh records,
 * for a release from before them (docs/upgrading.md). */
static int store_cmd(struct cli *x, int argc, char **argv)
{
    uint64_t n;

    if (argc < 1 || strcmp(argv[0], "fold") != 0)
        return usage();
    int rc = store_fold(x->st, &n);
    if (rc) {
        fprintf(stderr, "floodgate: store fold: %s\n", err_str(rc));
        return 1;
    }
    printf(x->json ? "{\"folded\":%llu}\n"
                   : "folded %llu spent refresh tokens into their records\n",
           (unsigned long long)n);
    return 0;
}

static int event_cmd(struct cli *x, int argc, char **argv)
{
    int64_t now = clock_wall_s(), at = -1, duration = 3600;
    double expect = 0;
    const char *name = "event";

    if (argc < 1)
        return usage();
    if (strcmp(argv[0], "list") == 0)
        return list_table(x, STORE_T_EVENTS, on_event);
    if (strcmp(argv[0], "cancel") == 0) {
        if (argc < 2)
            return usage();
        int rc = store_exec_kv(x->st, STORE_OP_DELETE, STORE_T_EVENTS, argv[1], NULL, 0);
        if (rc) {
            fprintf(stderr, "floodgate: event %s: %s\n", argv[1], err_str(rc));
            return 1;
        }
        printf(x->json ? "{\"cancelled\":\"%s\"}\n" : "cancelled %s\n", argv[1]);
        return 0;
    }
    if (strcmp(argv[0], "schedule") != 0)
        return usage();
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (!v)
            return usage();
        if (strcmp(argv[i], "--at") == 0)
            at = pol_announce_time(v, now);
        else if (strcmp(argv[i], "--expect") == 0)
            expect = strtod(v, NULL);
        else if (strcmp(argv[i], "--duration") == 0)
            duration = pol_announce_secs(v);
        else if (strcmp(argv[i], "--name") == 0)
            name = v;
        else
            return usage();
        i++;
    }
    char id[POL_ANNOUNCE_ID_MAX + 1], json[POL_ANNOUNCE_JSON_MAX];
    int rc = pol_announce_schedule(x->st, name, at, duration, expect, id, json);
    if (rc == ERR_INVAL) {
        fprintf(stderr, "floodgate: event schedule needs --at TIME (epoch, "
                        "YYYY-MM-DDTHH:MM:SSZ or +DURATION), --expect Nx (1..1000), "
                        "--duration of 1s..30d and a --name of at most 100 characters\n");
        return 2;
    }
    if (rc) {
        fprintf(stderr, "floodgate: cannot store the event: %s\n", err_str(rc));
        return 1;
    }
    if (x->json)
        printf("{\"id\":\"%s\",\"event\":%s}\n", id, json);
    else
        printf("event %s scheduled: %s (the policy rises %u s before it: policy_event_lead)\n", id,
               json, x->cfg->pol_event_lead_s);
    return 0;
}

/* A store that opened but cannot take the server key's pin yet (a Redis Cluster just
 * created says CLUSTERDOWN until its nodes agree, a Redis loading its file says LOADING) is
 * waited for this long, so that starting floodgate beside its store is not a race. */
#define PIN_WAIT_MS 10000

/* One nap of a start-up wait for the store, said once; false once PIN_WAIT_MS is spent. */
static bool store_nap(int waited)
{
    if (waited >= PIN_WAIT_MS)
        return false;
    if (waited == 0)
        log_kv(LOG_WARN, "waiting for the store", "for", "up to 10 s", LOG_END);
    struct timespec nap = {0, 250 * 1000000L};
    nanosleep(&nap, NULL);
    return true;
}

int cli_keys_ensure(struct store *st)
{
    int rc = tok_keys_ensure(st, clock_wall_s());
    for (int waited = 0; (rc == ERR_BACKEND || rc == ERR_AGAIN) && store_nap(waited); waited += 250)
        rc = tok_keys_ensure(st, clock_wall_s());
    return rc;
}

int cli_store_open(const struct cfg *c, struct store **st, uint8_t *key, char *err, size_t cap)
{
    char path[CFG_STR_MAX + 32], why[400];
    int rc =
        c->store[0]
            ? store_open_redis(c->store, c->redis_prefix, c->redis_timeout_ms, st, why, sizeof(why))
            : store_open_lmdb(c->data_dir, c->store_map_size, c->init_store ? STORE_OPEN_INIT : 0,
                              st, why, sizeof(why));
    if (rc == ERR_OK && c->store[0] && c->redis_wait_replicas)
        rc = store_wait_replicas(*st, c->redis_wait_replicas, c->redis_wait_timeout_ms);
    if (rc == ERR_OK && !c->store[0])
        store_lmdb_fold_at(*st, c->store_fold_at);
    if (rc) {
        snprintf(err, cap, "cannot open the store: %s", why);
        return rc;
    }
    if (c->secret_key_file[0])
        snprintf(path, sizeof(path), "%s", c->secret_key_file);
    else if (mkdir(c->data_dir, 0700) == 0 || errno == EEXIST) /* (Redis: only the key) */
        snprintf(path, sizeof(path), "%s/secret.key", c->data_dir);
    else
        snprintf(path, sizeof(path), "%s/secret.key (%s)", c->data_dir, strerror(errno));
    rc = auth_key_load(path, key, why, sizeof(why));
    if (rc) {
        snprintf(err, cap, "cannot load the server key: %s", why);
    } else {
        /* Refresh-token and client-secret digests are keyed: instances with different keys
         * would refuse each other's tokens. Only a fingerprint leaves the process. */
        uint8_t fp[CR_HASH_LEN];
        char hex[2 * CR_HASH_LEN + 1];
        static const char what[] = "floodgate server key fingerprint";
        cr_keyed_hash(fp, key, what, sizeof(what) - 1);
        sodium_bin2hex(hex, sizeof(hex), fp, sizeof(fp));
        rc = store_pin(*st, "server-key", hex, strlen(hex));
        for (int waited = 0; rc && rc != ERR_CONFLICT && store_nap(waited); waited += 250)
            rc = store_pin(*st, "server-key", hex, strlen(hex));
        if (rc == ERR_CONFLICT)
            snprintf(err, cap,
                     "the server key %s differs from the one the other instances on this store "
                     "use; give every instance the same secret_key_file",
                     path);
        else if (rc)
            snprintf(err, cap,
                     "cannot reach the store to check the server key (for 10 s: "
                     "is Redis up, and a Redis Cluster's state ok?)");
    }
    if (rc) {
        store_close(*st);
        *st = NULL;
    } else {
        tok_keys_seal_with(key); /* signing keys are stored sealed under it */
    }
    return rc;
}

int cli_main(const struct cfg *c, int argc, char **argv)
{
    struct cli x = {c, NULL, NULL, 0};
    char err[512];
    int rc;

    if (cr_init()) {
        fprintf(stderr, "floodgate: libsodium failed to start\n");
        return 1;
    }
    x.key = sodium_malloc(CR_HASH_KEY_LEN);
    if (!x.key || cli_store_open(c, &x.st, x.key, err, sizeof(err))) {
        fprintf(stderr, "floodgate: %s\n", x.key ? err : "out of memory");
        sodium_free(x.key);
        return 1;
    }
    for (int i = 1; i < argc; i++) /* --json anywhere after the command word */
        if (strcmp(argv[i], "--json") == 0)
            x.json = 1;
    int krc = argc >= 2 && strcmp(argv[0], "key") == 0 && strcmp(argv[1], "reseal") == 0
                  ? ERR_OK /* (reads what ensure would refuse) */
                  : cli_keys_ensure(x.st);
    if (krc == ERR_DENIED) {
        fprintf(stderr, "floodgate: a signing key in the store is not sealed: refused. If it is "
                        "yours (a store older than sealing), run 'floodgate key reseal' once\n");
        rc = 1;
    } else if (krc) {
        fprintf(stderr, "floodgate: cannot read or create the signing keys (unreachable store, "
                        "or keys sealed under another server key)\n");
        rc = 1;
    } else if (strcmp(argv[0], "client") == 0) {
        rc = client_cmd(&x, argc - 1, argv + 1);
    } else if (strcmp(argv[0], "user") == 0) {
        rc = user_cmd(&x, argc - 1, argv + 1);
    } else if (strcmp(argv[0], "event") == 0) {
        rc = event_cmd(&x, argc - 1, argv + 1);
    } else if (strcmp(argv[0], "store") == 0) {
        rc = store_cmd(&x, argc - 1, argv + 1);
    } else {
        rc = key_cmd(&x, argc - 1, argv + 1);
    }
    store_close(x.st);
    sodium_free(x.key);
    return rc;
}
