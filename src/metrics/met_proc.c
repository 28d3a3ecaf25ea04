/* SPDX-License-Identifier: MIT */
/*
 * The standard process_* families that Prometheus client libraries export, read from
 * /proc/self at each scrape (a few hundred bytes of the kernel's own text): CPU seconds,
 * resident and virtual memory, open and most file descriptors, start time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "metrics/met_text.h"

/* utime + stime in clock ticks, vsize in bytes and rss in pages from /proc/self/stat:
 * fields 14, 15, 23 and 24, counted after the command's closing parenthesis (a command may
 * hold spaces and parentheses itself). */
static int read_stat(unsigned long long *ticks, unsigned long long *vsize, long long *rss)
{
    char s[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(s, 1, sizeof(s) - 1, f) : 0;
    if (f)
        fclose(f);
    s[n] = '\0';
    char *p = strrchr(s, ')');
    unsigned long long ut, st;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime cstime priority nice threads itrealvalue starttime(22)
     * vsize(23) rss(24) */
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                     "%*d %*d %*u %llu %lld",
                     &ut, &st, vsize, rss) != 4)
        return -1;
    *ticks = ut + st;
    return 0;
}

/* /proc/self/fd, opened once by met_proc_init and read again at each scrape with getdents64
 * under a lock: a scrape makes no descriptor (one made and closed on a loop thread would
 * take the number of a socket libuv closed with a raw system call, which ThreadSanitizer
 * cannot see, and costs two system calls more). */
static int fd_dir = -1;
static pthread_mutex_t fd_mu = PTHREAD_MUTEX_INITIALIZER;

void met_proc_init(void)
{
    if (fd_dir < 0)
        fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static long open_fds(void)
{
    char buf[8192];
    long n = 0;
    if (fd_dir < 0)
        return -1;
    pthread_mutex_lock(&fd_mu);
    if (lseek(fd_dir, 0, SEEK_SET) != 0)
        n = -1;
    for (long got; n >= 0 && (got = syscall(SYS_getdents64, fd_dir, buf, sizeof(buf))) > 0;) {
        for (long off = 0; off < got;) {
            const struct dirent64 *e = (const struct dirent64 *)(const void *)(buf + off);
            n += e->d_name[0] != '.';
            off += e->d_reclen;
        }
    }
    pthread_mutex_unlock(&fd_mu);
    return n < 0 ? -1 : n;
}

int met_text_process(struct buf *b, double started)
{
    unsigned long long ticks, vsize;
    long long rss;
    struct rlimit rl;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
    int rc = 0;

    if (read_stat(&ticks, &vsize, &rss) == 0 && hz > 0 && page > 0) {
        rc |= met_text_family(b, "process_cpu_seconds_total", "counter",
                              "User and system CPU time spent, in seconds.");
        rc |= buf_printf(b, "process_cpu_seconds_total %.2f\n", (double)ticks / (double)hz);
        rc |= met_text_gauge(b, "process_resident_memory_bytes", "Resident memory, in bytes.",
                             (double)rss * (double)page);
        rc |= met_text_gauge(b, "process_virtual_memory_bytes", "Virtual memory, in bytes.",
                             (double)vsize);
    }
    if (fds >= 0)
        rc |= met_text_gauge(b, "process_open_fds", "Open file descriptors.", (double)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rc |= met_text_gauge(b, "process_max_fds", "Most file descriptors it may open.",
                             (double)rl.rlim_cur);
    rc |= met_text_gauge(b, "process_start_time_seconds",
                         "Start time of the process, seconds since the epoch.", started);
    return rc;
}
