/* SPDX-License-Identifier: MIT */
/* Test fixtures; see fixture.h. */
#include "fixture.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
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
#include "loop/pool.h"
#include "policy/pol_lockout.h"
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

int fx_auth_open(struct fx_auth *a, struct fx *f, const uint8_t *key,
                 const struct auth_pw_params *pp, unsigned user_attempts)
{
    struct pol_lockout_cfg lc = {.user = {user_attempts, 60, 600, 600, 0, 0},
                                 .ip = {100, 60, 600, 600, 0, 0},
                                 .pair = {100, 60, 600, 600, 0, 0},
                                 .entries = 1024};
    memset(a, 0, sizeof(*a));
    if (pool_new(1, 16, 0, &a->pool) || !(a->lockout = pol_lockout_new(&lc)))
        return -1;
    fx_tok_svc(f, &a->tok, key);
    a->tok.pool = a->pool;
    a->tok.refresh_grace_s = 0;
    a->svc.st = f->st;
    a->svc.pool = a->pool;
    a->svc.key = key;
    a->svc.pp = *pp;
    a->svc.lockout = a->lockout;
    a->svc.logins = a->logins;
    a->svc.tok = &a->tok;
    return 0;
}

void fx_auth_close(struct fx_auth *a, struct fx *f)
{
    pool_drain(a->pool);
    uv_run(&f->lp.uv, UV_RUN_NOWAIT);
    pool_free(a->pool);
    pol_lockout_free(a->lockout);
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

static bool free_port(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int fx_sh(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    if (!f)
        return -1;
    if (out) {
        n = fread(out, 1, cap - 1, f);
        out[n] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof(sink), f) > 0) {
        }
    }
    return pclose(f);
}

static bool cluster_up(struct fx_cluster *c, int primaries, int replicas)
{
    char cmd[2048], out[4096];
    /* ports p and p + 10000 (the cluster bus) free, from a pid-dependent start */
    int p = 20000 + (int)(getpid() % 9000) * 2;
    for (int i = 0; i < c->n; i++) {
        while (!free_port(p) || !free_port(p + 10000))
            p++;
        c->port[i] = p++;
        char port[16], conf[128];
        snprintf(port, sizeof(port), "%d", c->port[i]);
        snprintf(conf, sizeof(conf), "%s/nodes-%d.conf", c->dir, c->port[i]);
        c->pid[i] = fork();
        if (c->pid[i] == 0) {
            FILE *null = freopen("/dev/null", "w", stdout);
            null = freopen("/dev/null", "w", stderr); /* (a pipe left open would hang a tee) */
            (void)null;
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
                   "--cluster-enabled", "yes", "--cluster-config-file", conf, "--dir", c->dir,
                   "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no",
                   "--loglevel", "warning", (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < c->n; i++) { /* until each answers */
        snprintf(cmd, sizeof(cmd), "redis-cli -p %d ping 2>/dev/null", c->port[i]);
        int k = 0;
        while (k++ < 500 && (fx_sh(cmd, out, sizeof(out)) != 0 || strncmp(out, "PONG", 4) != 0))
            usleep(10000);
        if (k >= 500)
            return false;
    }
    size_t n = (size_t)snprintf(cmd, sizeof(cmd), "redis-cli --cluster create");
    for (int i = 0; i < c->n; i++)
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " 127.0.0.1:%d", c->port[i]);
    snprintf(cmd + n, sizeof(cmd) - n, " --cluster-replicas %d --cluster-yes 2>&1", replicas);
    if (fx_sh(cmd, NULL, 0) != 0)
        return false;
    (void)primaries;
    for (int k = 0; k < 1000; k++, usleep(10000)) { /* until every node says ok */
        int ok = 0;
        for (int i = 0; i < c->n; i++) {
            snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster info", c->port[i]);
            ok += fx_sh(cmd, out, sizeof(out)) == 0 && strstr(out, "cluster_state:ok") != NULL;
        }
        if (ok == c->n)
            return true;
    }
    return false;
}

int fx_cluster_start(struct fx_cluster *c, int primaries, int replicas)
{
    memset(c, 0, sizeof(*c));
    c->n = primaries * (1 + replicas);
    snprintf(c->dir, sizeof(c->dir), "/tmp/fg-cluster-XXXXXX");
    if (primaries < 3 || c->n > FX_CLUSTER_MAX || !mkdtemp(c->dir)) {
        c->dir[0] = '\0';
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cluster_up(c, primaries, replicas))
        return 0;
    fx_cluster_stop(c);
    return -1;
}

void fx_cluster_stop(struct fx_cluster *c)
{
    char cmd[128];
    for (int i = 0; i < c->n; i++)
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], NULL, 0);
            c->pid[i] = 0;
        }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", c->dir);
    if (c->dir[0])
        (void)!system(cmd);
    c->dir[0] = '\0';
}
