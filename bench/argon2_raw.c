/* SPDX-License-Identifier: MIT */
/*
 * The reference for the login benchmark: raw Argon2id hashes per second with the given
 * parameters on N threads, each reusing one pre-faulted buffer (as floodgate's workers do),
 * with no HTTP, no store, no tokens. Usage: argon2_raw THREADS SECONDS M_KIB T P
 * Prints: "argon2id m=.. t=.. p=.. threads=N: H hashes in S s = R/s".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <argon2.h>

static uint32_t m_kib, t_cost, lanes;
static double seconds;
static _Atomic unsigned long total;
static __thread uint8_t *buf;
static __thread size_t buflen;

static int alloc_cb(uint8_t **mem, size_t n)
{
    if (buflen < n) {
        buf = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
        buflen = n;
    }
    *mem = buf;
    return buf == MAP_FAILED ? -1 : 0;
}

static void free_cb(uint8_t *mem, size_t n)
{
    (void)mem;
    (void)n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    uint8_t out[32], salt[16] = "benchmarksalt!!";
    char pw[] = "correct horse battery";
    double end = now() + seconds;
    unsigned long n = 0;

    (void)arg;
    while (now() < end) {
        argon2_context c;
        memset(&c, 0, sizeof(c));
        c.out = out;
        c.outlen = sizeof(out);
        c.pwd = (uint8_t *)pw;
        c.pwdlen = (uint32_t)strlen(pw);
        c.salt = salt;
        c.saltlen = sizeof(salt);
        c.t_cost = t_cost;
        c.m_cost = m_kib;
        c.lanes = lanes;
        c.threads = 1;
        c.version = ARGON2_VERSION_13;
        c.allocate_cbk = alloc_cb;
        c.free_cbk = free_cb;
        if (argon2_ctx(&c, Argon2_id) != ARGON2_OK)
            abort();
        n++;
    }
    atomic_fetch_add(&total, n);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: argon2_raw THREADS SECONDS M_KIB T P\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    seconds = atof(argv[2]);
    m_kib = (uint32_t)atoi(argv[3]);
    t_cost = (uint32_t)atoi(argv[4]);
    lanes = (uint32_t)atoi(argv[5]);
    pthread_t th[64];
    double t0 = now();
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&th[i], NULL, run, NULL);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(th[i], NULL);
    double took = now() - t0;
    printf("argon2id m=%u t=%u p=%u threads=%d: %lu hashes in %.2f s = %.1f/s\n", m_kib, t_cost,
           lanes, threads, (unsigned long)total, took, (double)total / took);
    return 0;
}
