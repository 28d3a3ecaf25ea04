/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines logs. The formatting buffer is on the stack (records are capped at 4 KiB, a
 * longer message is cut), so logging never allocates and works when memory is short.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

#define LINE_MAX_BYTES   4096
#define ACCESS_BUF_BYTES (64 * 1024)

static int log_fd = 2;
static _Atomic int log_level = LOG_INFO;
static char log_path[4096];
static int access_fd = -1;
static char access_path[4096];

/* Per-thread access-log buffer: threads never share it, so appending takes no lock. */
static __thread char access_buf[ACCESS_BUF_BYTES];
static __thread size_t access_len;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    return (level >= 0 && level <= LOG_OFF) ? level_names[level] : "?";
}

int log_open(const char *path, int level)
{
    atomic_store(&log_level, level);
    if (!path || !*path || strcmp(path, "-") == 0) {
        log_path[0] = '\0';
        log_fd = 2;
        return ERR_OK;
    }
    int fd = open_append(path);
    if (fd < 0)
        return ERR_IO;
    snprintf(log_path, sizeof(log_path), "%s", path);
    log_fd = fd;
    return ERR_OK;
}

int log_access_open(const char *path)
{
    if (!path || !*path) {
        access_fd = -1;
        return ERR_OK;
    }
    if (strcmp(path, "-") == 0) {
        access_path[0] = '\0';
        access_fd = 1;
        return ERR_OK;
    }
    int fd = open_append(path);
    if (fd < 0)
        return ERR_IO;
    snprintf(access_path, sizeof(access_path), "%s", path);
    access_fd = fd;
    return ERR_OK;
}

static int reopen_one(const char *path, int fd)
{
    if (!path[0] || fd < 0)
        return ERR_OK;
    int nfd = open_append(path);
    if (nfd < 0)
        return ERR_IO;
    /* dup2 swaps the file under the same descriptor atomically for concurrent writers. */
    int rc = dup2(nfd, fd) < 0 ? ERR_IO : ERR_OK;
    close(nfd);
    return rc;
}

FILE *log_fopen_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

int log_reopen(void)
{
    int a = reopen_one(log_path, log_fd);
    int b = reopen_one(access_path, access_fd);
    return a ? a : b;
}

void log_close(void)
{
    log_access_flush();
    if (log_path[0] && log_fd > 2)
        close(log_fd);
    if (access_path[0] && access_fd > 2)
        close(access_fd);
    log_fd = 2;
    access_fd = -1;
    log_path[0] = access_path[0] = '\0';
}

int log_enabled(int level)
{
    return level >= atomic_load_explicit(&log_level, memory_order_relaxed) && level < LOG_OFF;
}

size_t log_timestamp(char *dst)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(dst, 21, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(dst + n, 6, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n;
}

/* Appends `s` JSON-escaped into line[*len..cap); cuts rather than overflows. */
static void put_escaped(char *line, size_t *len, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = *len;

    for (size_t i = 0; i < n && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            line[o++] = '\\';
            line[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            /* Non-ASCII is escaped byte-wise: a log line stays valid JSON whatever came in. */
            line[o++] = '\\';
            line[o++] = 'u';
            line[o++] = '0';
            line[o++] = '0';
            line[o++] = hex[c >> 4];
            line[o++] = hex[c & 15];
        } else {
            line[o++] = (char)c;
        }
    }
    *len = o;
}

static void put_raw(char *line, size_t *len, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n > cap)
        n = cap - *len;
    memcpy(line + *len, s, n);
    *len += n;
}

static size_t begin_record(char *line, int level, const char *msg, size_t msglen)
{
    char ts[32];
    size_t len = 0;

    put_raw(line, &len, LINE_MAX_BYTES, "{\"ts\":\"");
    log_timestamp(ts);
    put_raw(line, &len, LINE_MAX_BYTES, ts);
    put_raw(line, &len, LINE_MAX_BYTES, "\",\"level\":\"");
    put_raw(line, &len, LINE_MAX_BYTES, log_level_name(level));
    put_raw(line, &len, LINE_MAX_BYTES, "\",\"msg\":\"");
    put_escaped(line, &len, LINE_MAX_BYTES - 64, msg, msglen);
    put_raw(line, &len, LINE_MAX_BYTES, "\"");
    return len;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0)
            return; /* Nowhere left to report a failing log. */
        p += w;
        n -= (size_t)w;
    }
}

static void end_record(char *line, size_t len)
{
    if (len > LINE_MAX_BYTES - 2)
        len = LINE_MAX_BYTES - 2;
    line[len++] = '}';
    line[len++] = '\n';
    write_all(log_fd, line, len);
}

void log_kv(int level, const char *msg, ...)
{
    char line[LINE_MAX_BYTES];
    va_list ap;

    if (!log_enabled(level))
        return;
    size_t len = begin_record(line, level, msg, strlen(msg));
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_raw(line, &len, LINE_MAX_BYTES - 8, ",\"");
        put_escaped(line, &len, LINE_MAX_BYTES - 8, k, strlen(k));
        put_raw(line, &len, LINE_MAX_BYTES - 8, "\":\"");
        put_escaped(line, &len, LINE_MAX_BYTES - 8, v ? v : "", v ? strlen(v) : 0);
        put_raw(line, &len, LINE_MAX_BYTES - 8, "\"");
    }
    va_end(ap);
    end_record(line, len);
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES / 2];
    char line[LINE_MAX_BYTES];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t mlen = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    end_record(line, begin_record(line, level, msg, mlen));
}

int log_access_enabled(void)
{
    return access_fd >= 0;
}

void log_access_flush(void)
{
    if (access_len && access_fd >= 0)
        write_all(access_fd, access_buf, access_len);
    access_len = 0;
}

void log_access(const char *line, size_t n)
{
    if (access_fd < 0)
        return;
    if (n > ACCESS_BUF_BYTES) {
        write_all(access_fd, line, n);
        return;
    }
    if (access_len + n > ACCESS_BUF_BYTES)
        log_access_flush();
    memcpy(access_buf + access_len, line, n);
    access_len += n;
}
