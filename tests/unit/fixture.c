/* SPDX-License-Identifier: MIT */
/* Test fixtures; see fixture.h. */
#include "fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "token/tok_introspect.h"
#include "token/tok_keys.h"
#include "token/tok_rotate.h"

static int rm_rf(const char *dir)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

int fx_open(struct fx *f, const char *name)
{
    char err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/fg-%s-%d", name, (int)getpid());
    if (cr_init() || rm_rf(f->dir) ||
        store_open_lmdb(f->dir, 16u << 20, 0, &f->st, err, sizeof(err)))
        return -1;
    return loop_init(&f->lp, 0) ? -1 : 0;
}

void fx_close(struct fx *f)
{
    store_loop_release(f->st, &f->lp);
    loop_close_mailbox(&f->lp);
    uv_run(&f->lp.uv, UV_RUN_DEFAULT);
    loop_fini(&f->lp);
    store_close(f->st);
    f->st = NULL;
    rm_rf(f->dir);
}

void fx_wait(struct fx *f, const int *count, int want)
{
    while (*count < want)
        uv_run(&f->lp.uv, UV_RUN_ONCE);
}

int fx_keys(struct fx *f, struct tok_ring *ring)
{
    tok_keys_seal_with(NULL);
    if (tok_keys_ensure(f->st, 1000))
        return -1;
    memset(ring, 0, sizeof(*ring));
    return tok_ring_load(ring, f->st) ? -1 : 0;
}

void fx_tok_svc(struct fx *f, struct tok_svc *svc, const uint8_t *key)
{
    memset(svc, 0, sizeof(*svc));
    svc->st = f->st;
    svc->key = key;
    svc->refresh_ttl_s = 1000;
    svc->refresh_idle_s = 100;
    svc->refresh_grace_s = 5;
}

static int family_done, family_rc;

static void on_family(struct tok_family *q, int rc)
{
    (void)q;
    family_done++;
    family_rc = rc;
}

int fx_family(struct fx *f, const struct tok_svc *svc, const char *sub, const char *client,
              const char *scope, int64_t now, char *token)
{
    struct tok_family q;
    memset(&q, 0, sizeof(q));
    q.svc = svc;
    q.lp = &f->lp;
    q.done = on_family;
    q.now = now;
    snprintf(q.sub, sizeof(q.sub), "%s", sub);
    snprintf(q.client_id, sizeof(q.client_id), "%s", client);
    snprintf(q.scope, sizeof(q.scope), "%s", scope);
    family_done = 0;
    if (tok_family_start(&q) != ERR_AGAIN)
        return -1;
    fx_wait(f, &family_done, 1);
    memcpy(token, q.token, TOK_REFRESH_LEN + 1);
    return family_rc ? -1 : 0;
}

static void rt_answered(struct tok_rt_introspection *q, int rc)
{
    (void)q;
    (void)rc;
}

bool fx_rt_active(struct store *st, const uint8_t *key, const char *token, const char *client,
                  int64_t now)
{
    struct tok_rt_introspection q;
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.now = now;
    q.done = rt_answered;
    snprintf(q.client_id, sizeof(q.client_id), "%s", client);
    return tok_rt_introspect(&q, key, str_c(token)) == ERR_OK && q.active;
}

pid_t fx_redis_start(const char *sock)
{
    signal(SIGPIPE, SIG_IGN); /* as floodgate's main() does: a dead Redis is an error */
    unlink(sock);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *null = freopen("/dev/null", "w", stdout);
        (void)null;
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
               "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--loglevel",
               "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 500; i++, usleep(10000)) { /* until it accepts */
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return pid;
    }
    fprintf(stderr, "# redis-server did not start (is it installed?)\n");
    return -1;
}

void fx_redis_stop(pid_t *pid, const char *sock)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
        unlink(sock);
    }
}
