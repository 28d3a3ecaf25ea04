/* SPDX-License-Identifier: MIT */
/*
 * What a handler sees: one parsed HTTP/1.1 request and the calls that answer it.
 *
 * Lifetimes: a request and every view in it (path, headers, body, params) are valid from the
 * handler's call until it answers with http_respond*; after that they are gone. A handler
 * either answers before returning (returns HTTP_DONE) or returns HTTP_ASYNC and answers
 * later, exactly once, from the same loop thread (e.g. in a pool job's on_done). While a
 * request is outstanding the connection reads nothing more, so answers stay in order.
 * Loop thread only.
 */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct arena;
struct http_route;
struct http_session;
struct sockaddr;

#define HTTP_PARAMS_MAX 4

enum { HTTP_DONE = 0, HTTP_ASYNC = 1 };

struct http_header_view {
    struct str name;
    struct str value; /* leading and trailing blanks removed */
};

struct http_resp_header;

struct http_request {
    unsigned method; /* enum http_method from http_parser.h */
    unsigned http_minor;
    struct str target; /* as sent */
    struct str path;   /* target up to '?', not percent-decoded */
    struct str query;  /* after '?', not decoded (see http_form.h) */
    struct str body;   /* de-chunked; bounded by max_body_bytes */
    const struct http_header_view *headers;
    unsigned nheaders;
    struct str params[HTTP_PARAMS_MAX]; /* {name} segments of the route pattern, in order */
    unsigned nparams;
    struct arena *arena;         /* reset when the answer is sent */
    void *app;                   /* the loop thread's application context */
    const struct sockaddr *peer; /* the TCP peer; borrowed for the request's life */
    uint64_t start_ns;           /* monotonic time the request began arriving */
    struct http_session *_s;
    struct http_resp_header *_extra;
};

typedef int (*http_handler_cb)(struct http_request *r);

/* The value of the first header named `name` (ASCII case-insensitive), or {NULL, 0}. */
struct str http_header(const struct http_request *r, const char *name);

/* True if Content-Type's media type is `type` (parameters such as charset ignored). */
bool http_content_type_is(const struct http_request *r, const char *type);

/* Adds a response header for the coming answer. Name and value are copied into the arena;
 * CR and LF are rejected (ERR_INVAL) so a value cannot split the response. */
int http_add_header(struct http_request *r, const char *name, const char *value);

/* Answers. `ctype` may be NULL for no Content-Type. Copies `body`. After this call `r` is
 * gone. If the answer cannot be built (output buffer cap), the connection is closed. */
void http_respond(struct http_request *r, unsigned status, const char *ctype, const void *body,
                  size_t len);
/* A JSON answer from a NUL-terminated document. */
void http_respond_json(struct http_request *r, unsigned status, const char *json);
/* {"error":code,"error_description":desc} (desc may be NULL), the shape RFC 6749 §5.2 uses. */
void http_respond_error(struct http_request *r, unsigned status, const char *code,
                        const char *desc);

/* A streamed answer (Server-Sent Events): the status line and headers now, with no length
 * (the body ends when the connection does, so it is not reused), then whatever
 * http_stream_send adds, until http_stream_end, or until the stream ends from the other
 * side: the peer leaves, or the server drains. Then on_end(arg) runs, once, on this loop
 * thread, and the handle is gone. After this call r is gone. NULL if no stream started (the
 * peer left, or the server is draining: answered 503; a HEAD request: answered its head). */
struct http_stream;
struct http_stream *http_stream_start(struct http_request *r, unsigned status, const char *ctype,
                                      void (*on_end)(void *arg), void *arg);
/* Queues n bytes. ERR_LIMIT when the peer has not read what was sent before (256 KiB
 * pending): the stream is ended then, without on_end, and the handle is gone. */
int http_stream_send(struct http_stream *st, const void *p, size_t n);
/* Ends the stream from this side (on_end does not run); the handle is gone. */
void http_stream_end(struct http_stream *st);

/* The route's metric id (0 when no route matched). */
unsigned http_request_route_id(const struct http_request *r);

#endif
