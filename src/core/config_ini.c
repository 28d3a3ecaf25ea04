/* SPDX-License-Identifier: MIT */
/*
 * The INI reader of the configuration (libinih): every error names the file and its line;
 * a key given twice is an error (the second would win without a word); [webhook.NAME]
 * sections hold url, secret and events. cfg_load_file stops at the first error (start-up),
 * cfg_check_file reads on and hands every error over in file order (check-config).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "core/config_int.h"
#include "core/err.h"

#define INIH_SECTION_MAX 50 /* inih's MAX_SECTION (ini.c; not in its header) */
#define ERRORS_MAX       64 /* errors of one file kept for check-config; the rest counted */

struct line_err {
    int line;
    struct cfg_error e;
};

struct ini_ctx {
    struct cfg *c;
    const char *path;
    FILE *f;
    int line;              /* the line being read (the reader counts them) */
    bool at_start;         /* the next read starts a line (a longer one comes in pieces) */
    bool collect;          /* every error (check-config), not only the first */
    int nerr;              /* errors so far */
    struct line_err *errs; /* the first ERRORS_MAX, with their lines */
    unsigned char seen[CFG_KEYS_MAX];
    unsigned char hook_seen[CFG_HOOKS_MAX]; /* bit 0 url, 1 secret, 2 events */
};

/* Keeps an error at line `line`: where becomes "path:line". */
static void keep(struct ini_ctx *x, int line, const struct cfg_error *e)
{
    if (x->nerr < ERRORS_MAX) {
        struct line_err *le = &x->errs[x->nerr];
        le->line = line;
        snprintf(le->e.where, sizeof(le->e.where), "%s:%d", x->path, line);
        memcpy(le->e.what, e->what, sizeof(le->e.what));
    }
    x->nerr++;
}

/* inih's reader: fgets, counting lines. inih takes at most num - 1 bytes of a line (its
 * buffer, fixed when the library was built): the rest of a longer one would come as a line
 * of its own, and a value cut short could be applied. Such a line is an error and reaches
 * inih as an empty one. */
static char *read_line(char *str, int num, void *stream)
{
    struct ini_ctx *x = stream;
    char *r = fgets(str, num, x->f);
    if (!r)
        return NULL;
    x->line++;
    size_t n = strlen(r);
    if (n == 0 || r[n - 1] == '\n')
        return r;
    int ch = fgetc(x->f);
    if (ch == EOF || ch == '\n')
        return r; /* (exactly num - 1 bytes: it fits) */
    while (ch != EOF && ch != '\n')
        ch = fgetc(x->f);
    struct cfg_error e = {0};
    snprintf(e.what, sizeof(e.what),
             "line longer than %d characters, the INI reader's limit: give this value in its "
             "FLOODGATE_<KEY> variable or its flag",
             num - 2);
    keep(x, x->line, &e);
    snprintf(str, (size_t)num, "\n");
    return str;
}

/* [webhook.NAME] url / secret / events: one more webhook endpoint. */
static int on_hook(struct ini_ctx *x, const char *section, const char *name, const char *value,
                   struct cfg_error *e)
{
    const char *hook = section + 8;
    struct cfg *c = x->c;
    unsigned i = 0;

    while (i < c->nhooks && strcmp(c->hooks[i].name, hook) != 0)
        i++;
    if (i == c->nhooks) {
        if (!hook[0] || strlen(hook) >= sizeof(c->hooks[0].name) || c->nhooks == CFG_HOOKS_MAX) {
            cfg__set_err(e, x->path, "[%s]: a name of 1..40 characters, at most %d webhooks",
                         section, CFG_HOOKS_MAX);
            return ERR_INVAL;
        }
        memset(&c->hooks[i], 0, sizeof(c->hooks[i]));
        snprintf(c->hooks[i].name, sizeof(c->hooks[i].name), "%s", hook);
        snprintf(c->hooks[i].events, sizeof(c->hooks[i].events), "*");
        x->hook_seen[i] = 0;
        c->nhooks++;
    }
    struct cfg_hook *h = &c->hooks[i];
    int bit = strcmp(name, "url") == 0      ? 1
              : strcmp(name, "secret") == 0 ? 2
              : strcmp(name, "events") == 0 ? 4
                                            : 0;
    char *dst = bit == 1 ? h->url : bit == 2 ? h->secret : bit == 4 ? h->events : NULL;
    size_t cap = dst == h->secret ? sizeof(h->secret) : sizeof(h->url);
    if (!dst) {
        cfg__set_err(e, x->path, "[%s]: unknown key '%s' (url, secret, events)", section, name);
        return ERR_INVAL;
    }
    if (x->hook_seen[i] & bit) {
        cfg__set_err(e, x->path, "[%s] %s: given twice (or continued on an indented line)", section,
                     name);
        return ERR_INVAL;
    }
    x->hook_seen[i] |= (unsigned char)bit;
    if (strlen(value) >= cap) {
        cfg__set_err(e, x->path, "[%s] %s: too long", section, name);
        return ERR_INVAL;
    }
    memcpy(dst, value, strlen(value) + 1);
    return ERR_OK;
}

/* One key = value of section: applied, or an error into e. */
static int on_key(struct ini_ctx *x, const char *section, const char *name, const char *value,
                  struct cfg_error *e)
{
    /* inih cuts section names at INIH_SECTION_MAX - 1 bytes without a word: one that long
     * may be a longer one cut, naming another section than the file does. */
    if (strlen(section) >= INIH_SECTION_MAX - 1) {
        cfg__set_err(e, x->path, "[%s...]: section name too long (at most %d characters)", section,
                     INIH_SECTION_MAX - 2);
        return ERR_INVAL;
    }
    if (strncmp(section, "webhook.", 8) == 0)
        return on_hook(x, section, name, value, e);
    const struct key *k = cfg__find_key(section, name);
    if (!k) {
        const struct key *other = cfg__find_key(NULL, name);
        if (other)
            cfg__set_err(e, x->path, "key '%s' belongs in section [%s]", name, other->section);
        else
            cfg__set_err(e, x->path, "unknown key '%s' in section [%s]", name, section);
        return ERR_INVAL;
    }
    size_t i = cfg__key_index(k);
    if (x->seen[i]) {
        cfg__set_err(e, x->path, "%s: given twice (or continued on an indented line)", name);
        return ERR_INVAL;
    }
    x->seen[i] = 1;
    return cfg__apply(x->c, k, value, x->path, e);
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    struct cfg_error e = {0};

    if (x->nerr && !x->collect)
        return 1; /* (the first error is the one start-up reports) */
    if (on_key(x, section, name, value, &e))
        keep(x, x->line, &e);
    return 1; /* (inih's own return is then a syntax error's line only) */
}

static int by_line(const void *a, const void *b)
{
    const struct line_err *p = a, *q = b;
    return (p->line > q->line) - (p->line < q->line);
}

/* Reads path into c; the errors kept in x->errs, in file order. ERR_OK, ERR_INVAL (x->nerr
 * errors), or ERR_IO / ERR_NOMEM with e filled. */
static int read_file(struct ini_ctx *x, struct cfg_error *e)
{
    x->errs = calloc(ERRORS_MAX, sizeof(*x->errs));
    x->f = x->errs ? fopen(x->path, "r") : NULL;
    if (!x->f) {
        int saved = errno;
        cfg__set_err(e, x->path, x->errs ? "cannot open: %s" : "out of memory", strerror(saved));
        return x->errs ? ERR_IO : ERR_NOMEM;
    }
    int rc = ini_parse_stream(read_line, x, on_ini, x);
    fclose(x->f);
    if (rc == -2) {
        cfg__set_err(e, x->path, "out of memory");
        return ERR_NOMEM;
    }
    if (rc > 0 && (x->collect || !x->nerr || rc < x->errs[0].line)) {
        struct cfg_error se = {0};
        snprintf(se.what, sizeof(se.what), "syntax error (expected [section] or key = value)");
        keep(x, rc, &se);
    }
    size_t kept = x->nerr < ERRORS_MAX ? (size_t)x->nerr : ERRORS_MAX;
    qsort(x->errs, kept, sizeof(*x->errs), by_line);
    return x->nerr ? ERR_INVAL : ERR_OK;
}

int cfg_load_file(struct cfg *c, const char *path, struct cfg_error *e)
{
    struct ini_ctx *x = calloc(1, sizeof(*x));
    if (!x) {
        cfg__set_err(e, path, "out of memory");
        return ERR_NOMEM;
    }
    x->c = c;
    x->path = path;
    int rc = read_file(x, e);
    if (rc == ERR_INVAL && e)
        *e = x->errs[0].e;
    free(x->errs);
    free(x);
    return rc;
}

int cfg_check_file(struct cfg *c, const char *path, cfg_error_cb each, void *arg)
{
    struct cfg_error e = {0};
    struct ini_ctx *x = calloc(1, sizeof(*x));
    if (!x) {
        cfg__set_err(&e, path, "out of memory");
        each(&e, arg);
        return 1;
    }
    x->c = c;
    x->path = path;
    x->collect = true;
    int rc = read_file(x, &e), n = x->nerr;
    if (rc == ERR_INVAL) {
        for (int i = 0; i < n && i < ERRORS_MAX; i++)
            each(&x->errs[i].e, arg);
        if (n > ERRORS_MAX) {
            snprintf(e.where, sizeof(e.where), "%s", path);
            snprintf(e.what, sizeof(e.what), "and %d more errors", n - ERRORS_MAX);
            each(&e, arg);
        }
    } else if (rc) {
        each(&e, arg);
        n = 1;
    }
    free(x->errs);
    free(x);
    return n;
}
