/* SPDX-License-Identifier: MIT */
/*
 * One HTTP/1.1 connection's protocol state, with no I/O: bytes go in (http_session_rspace +
 * http_session_received), answers come out (http_session_take_output). The libuv glue in
 * http_server.c moves the bytes; the fuzzer drives the same code directly. Requests are
 * parsed by http_parser, one at a time: the parser pauses at each message end, the request
 * is dispatched, and parsing resumes only after it is answered, so pipelined answers leave
 * in order and the ones answered synchronously leave in one write.
 *
 * Limits enforced here: request line + headers (431), target (414), header count (431),
 * body (413), HTTP version (505), and request smuggling (400 + close: both Content-Length
 * and Transfer-Encoding, duplicate Content-Length, a coding other than chunked, a bad chunk
 * size, Transfer-Encoding in HTTP/1.0). Loop thread only.
 */
#ifndef HTTP_HTTP_SESSION_H
#define HTTP_HTTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct http_router;
struct met_shard;
struct sockaddr;

struct http_limits {
    size_t max_header_bytes;
    size_t max_headers;
    size_t max_url_bytes;
    size_t max_body_bytes;
};

enum http_phase {
    HTTP_PHASE_IDLE,   /* between requests */
    HTTP_PHASE_HEAD,   /* reading a request line and headers */
    HTTP_PHASE_BODY,   /* reading a body */
    HTTP_PHASE_BUSY,   /* a handler has the request (possibly waiting on a worker) */
    HTTP_PHASE_DONE,   /* no more requests on this connection: flush output, then close */
    HTTP_PHASE_STREAM, /* a streamed answer is being sent (http_stream_start); no deadline */
};

struct http_session_ops {
    /* An asynchronous answer was queued (output may be pending, reading may resume).
     * Not called for answers given inside http_session_received. */
    void (*on_async_answer)(void *owner);
    /* The session was aborted while busy and is now idle: the owner may free it. */
    void (*on_release)(void *owner);
};

struct http_session;

/* Sets http_parser's global header cap; call once before sessions are created. */
void http_session_global_init(size_t max_header_bytes);

/* All pointers are borrowed for the session's life. `app` is passed to handlers as r->app. */
struct http_session *http_session_new(const struct http_limits *lim, const struct http_router *rt,
                                      struct met_shard *met, const struct http_session_ops *ops,
                                      void *owner, void *app);
/* Frees. Must not be busy (see http_session_abort). NULL is a no-op. */
void http_session_free(struct http_session *s);

/* The peer address, copied. */
void http_session_set_peer(struct http_session *s, const struct sockaddr *sa, size_t len);

/* Room to read into: at least 1 byte, or *n = 0 when the session must not read now. */
void http_session_rspace(struct http_session *s, char **p, size_t *n);
/* `n` bytes were written at the space given by rspace: parse and dispatch. */
void http_session_received(struct http_session *s, size_t n);
/* The peer will send no more. */
void http_session_eof(struct http_session *s);
/* The phase's deadline passed: answers 408 if a request was being read. */
void http_session_timeout(struct http_session *s);
/* Graceful shutdown: finish the current request, answer it with Connection: close, stop. */
void http_session_drain(struct http_session *s);
/* The connection is idle (between requests, nothing buffered either way): its buffers, its
 * arena and its header table go back to the allocator, to be made again by the next
 * request, so that thousands of idle keep-alive connections cost little. true if it was
 * idle and trimmed. */
bool http_session_trim(struct http_session *s);
/* Output was written: continue parsing buffered pipelined requests if it was paused. */
void http_session_kick(struct http_session *s);
/* The connection is gone. Returns true if the session may be freed now; false if a handler
 * still holds a request (ops->on_release fires when it answers). */
bool http_session_abort(struct http_session *s);

/* Moves pending output into `dst` (which must be empty) by swapping buffers. Returns its
 * length; 0 if nothing is pending. */
size_t http_session_take_output(struct http_session *s, struct buf *dst);

enum http_phase http_session_phase(const struct http_session *s);
/* Requests begun on this connection so far: a change tells the glue a new request started
 * even when the phase looks the same (pipelining). */
unsigned long http_session_requests(const struct http_session *s);
/* True when reading more would help (not busy, not done, output not backed up). */
bool http_session_wants_read(const struct http_session *s);
/* True when all answers are queued and the connection should close once they are written. */
bool http_session_done(const struct http_session *s);

#endif
