/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines logging. Each line is one write(2) of a complete record, so lines from several
 * threads never interleave. log_reopen (SIGHUP) opens the file anew and dup2()s it over the
 * old descriptor: atomic for concurrent writers, so no lock is needed. The access log is
 * buffered per thread and flushed by size or by log_access_flush (a 1 s loop timer), never
 * a write per request. Any thread, unless stated.
 */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stddef.h>
#include <stdio.h>

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Opens the log (`path` NULL, "" or "-": stderr) at `level`. ERR_IO on failure. Main thread,
 * before other threads start. */
int log_open(const char *path, int level);
/* Opens the access log (`path` NULL or "": none; "-": stdout). ERR_IO on failure. */
int log_access_open(const char *path);
/* Reopens both files after rotation. ERR_IO if one could not be opened (the old one stays). */
int log_reopen(void);

/* Opens path for appending, created 0600 if missing (audit logs and dead letters carry
 * user ids and addresses: not for every local account to read). NULL with errno set. */
FILE *log_fopen_private(const char *path);
void log_close(void);

/* Parses "debug|info|warn|error|off". Returns the level or -1. */
int log_level_parse(const char *s);
const char *log_level_name(int level);
int log_enabled(int level);

/* Ends a log_kv list: a typed null pointer, as variadic functions need. */
#define LOG_END ((const char *)NULL)

/* Writes {"ts":..,"level":..,"msg":..} then each "key":"value" pair from the LOG_END-terminated
 * list of (const char *key, const char *value); values are JSON-escaped. */
void log_kv(int level, const char *msg, ...) __attribute__((sentinel));
/* printf-style message in the "msg" field. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int log_access_enabled(void);
/* Appends one ready-made line (including its newline) to this thread's access-log buffer. */
void log_access(const char *line, size_t n);
/* Writes this thread's buffered access-log lines. Call from each loop's timer and at exit. */
void log_access_flush(void);

/* Writes the current UTC time as 2026-11-27T21:28:54.123Z into dst[25]; returns length. */
size_t log_timestamp(char *dst);

#endif
