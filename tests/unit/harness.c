/* SPDX-License-Identifier: MIT */
/* The harness's runner: TAP lines, then "N passed, N failed". */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct {
    const char *name;
    harness_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int current_failed;

void harness_register(const char *name, harness_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    current_failed = 1;
    printf("# %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int harness_failed(void)
{
    return current_failed;
}

static int run_one(int i, int use_fork)
{
    current_failed = 0;
    if (!use_fork) {
        tests[i].fn();
        return current_failed;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        tests[i].fn();
        fflush(stdout);
        _exit(current_failed ? 1 : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("# killed by signal %d\n", WTERMSIG(st));
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *f = getenv("HARNESS_FORK");
    int use_fork = f && *f == '1';
    int passed = 0, failed = 0, n = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        n++;
        if (run_one(i, use_fork)) {
            printf("not ok %d - %s\n", n, tests[i].name);
            failed++;
        } else {
            printf("ok %d - %s\n", n, tests[i].name);
            passed++;
        }
    }
    printf("1..%d\n", n);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
