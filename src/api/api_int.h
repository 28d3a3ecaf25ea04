/* SPDX-License-Identifier: MIT */
/* Inside api/: helpers the handler files share. Loop thread only. */
#ifndef API_API_INT_H
#define API_API_INT_H

#include <stdint.h>

#include <jansson.h>

#include "api/api.h"
#include "auth/auth_client.h"
#include "core/str.h"
#include "http/http_form.h"
#include "token/tok_jwt.h"

/* Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1). */
void api__no_store(struct http_request *r);
/* CORS (auth_origins.h): a preflight (OPTIONS) is answered here (204, with the
 * Access-Control-* headers when the Origin is allowed for `kind`, without them otherwise):
 * HTTP_DONE. Any other request from an allowed Origin gets Access-Control-Allow-Origin and
 * Vary: Origin for its answer, and -1: the handler goes on. `methods`: what the route
 * takes ("POST", "GET, POST"). */
int api__cors(struct http_request *r, int kind, const char *methods);

/* The hosted pages (api_authorize.c): a page from its template with the headers every page
 * carries (csp, if set, replaces the default policy), an error page, the 503 page with
 * Retry-After; whether the issuer is https; the names of the CSRF and the session cookies
 * (__Host- over https). Each answer returns HTTP_DONE. */
struct web_var;
int api__page_csp(struct http_request *r, unsigned status, int page, const struct web_var *v,
                  size_t n, const char *csp);
int api__page(struct http_request *r, unsigned status, int page, const struct web_var *v, size_t n);
int api__error_page(struct http_request *r, unsigned status, const char *title, const char *msg,
                    const char *code);
int api__busy_page(struct http_request *r, uint64_t retry_s);
bool api__https(const struct http_request *r);
/* The admin token check (api_admin.c): true when r was refused (401, answered); what may
 * change something, and every refusal, is logged. */
bool api__admin_deny(struct http_request *r);
const char *api__csrf_cookie(const struct http_request *r);
const char *api__session_cookie(const struct http_request *r);

/* The admin action (enum auth_admin_action) the route of r names, -1 if none. */
int api__admin_action(const struct http_request *r);
/* The answering helpers return HTTP_DONE, so a handler ends with `return api__...(...)`. */
/* A JSON answer (http_respond_json). */
int api__json(struct http_request *r, unsigned status, const char *json);
/* An error answer (http_respond_error). */
int api__error(struct http_request *r, unsigned status, const char *code, const char *desc);
/* A bearer token refused (RFC 6750 §3): the WWW-Authenticate challenge with `error`, and the
 * answer with it as the code. */
int api__bearer_refused(struct http_request *r, unsigned status, const char *error,
                        const char *desc);
/* An RFC 6749 §5.2 error with no-store. */
int api__oauth_error(struct http_request *r, unsigned status, const char *code, const char *desc);
/* The one map from a domain result to an answer (api_error.c): status, error code, a
 * default description (desc, if set, replaces it), no-store, and on a 503 Retry-After
 * (1 s, or retry_s). */
/* Retry-After: seconds (0 is said as 1: come back, but not at once). */
void api__retry_after(struct http_request *r, uint64_t seconds);
int api__fail(struct http_request *r, int rc, const char *desc);
int api__fail_retry(struct http_request *r, int rc, const char *desc, uint64_t retry_s);
/* A body written into b (a JSON document unless ctype says otherwise) answered 200 with
 * cache_control if not NULL, or, when writing it failed (rc), 500; b is freed. */
int api__answer_buf(struct http_request *r, int rc, struct buf *b, const char *ctype,
                    const char *cache_control);
/* A zeroed job of `size` bytes in r's arena (freed with the answer), or NULL after
 * answering 503: the start of every asynchronous handler. */
void *api__job(struct http_request *r, size_t size);
/* The same, not zeroed: for the hot paths (cached introspection and verify), whose jobs are
 * kilobytes and whose every field read is set first. */
void *api__alloc(struct http_request *r, size_t size);
/* Reads a form body (400 if it is not one). ERR_OK or ERR_INVAL after answering. */
int api__read_form(struct http_request *r, struct http_form *f);
/* Reads a JSON object body (415/400 if not). ERR_OK (caller json_decref()s) or ERR_INVAL. */
int api__read_json(struct http_request *r, json_t **out);
/* Applies rate-limit rule `rule` (POL_RL_*) to the client's IP, or for the global rules
 * to everyone: true after answering 429 with Retry-After and the IETF RateLimit-Policy /
 * RateLimit headers; false if allowed or the rule is off. */
bool api__rate_limited(struct http_request *r, int rule);
/* Counts the request against its class's in-flight cap until it is answered (an arena
 * cleanup hook gives it back, on every path). True after answering 503 + Retry-After
 * when the class is full. */
bool api__inflight_full(struct http_request *r, int cls);
/* Admission control before any work: answers 503 + Retry-After and returns true when a new
 * hashing job would wait past hash_deadline. Logins and registrations ask before reading
 * their body, so a flood is refused for the price of its headers. */
bool api__admission_refused(struct http_request *r);
/* The same with an explicit key (a username, a client_id). */
bool api__rate_limited_key(struct http_request *r, int rule, struct str key);
/* The same without answering, for a caller that answers with a page: true if refused (res
 * says when to come back); counted and announced as the others. */
struct pol_gcra_result;
bool api__rate_take(struct http_request *r, int rule, struct str key, struct pol_gcra_result *res);
bool api__rate_take_ip(struct http_request *r, int rule, struct pol_gcra_result *res);
/* api__inflight_full without answering: ERR_OK (counted until answered), ERR_LIMIT (full),
 * ERR_NOMEM. */
int api__inflight_take(struct http_request *r, int cls);
/* The 429 of `rule` with Retry-After (retry_ms, rounded up to a second) and RateLimit
 * headers: for a limit the shared store refused (store_guard_begin). */
void api__rate_limited_answer(struct http_request *r, int rule, uint64_t retry_ms);
/* The login rate rules in force now (by mode and stuffing), per IP and per user: what a
 * shared store's guard counts (auth_login). */
struct pol_gcra_rule;
void api__login_rules(struct http_request *r, struct pol_gcra_rule *ip, struct pol_gcra_rule *user);
/* 503 with Retry-After (ms rounded up to a second, plus one), counted as shed: a hash that
 * would wait past hash_deadline, or a full queue. */
void api__busy(struct http_request *r, uint64_t ms);
/* The key per-IP rules count this client under: its address masked to client_ipv4_prefix
 * or client_ipv6_prefix (pol_ip_key). */
void api__peer_key(const struct http_request *r, char *out, size_t cap);
/* The client's IP address as text: the TCP peer, or what a trusted proxy says it is. */
void api__peer_ip(const struct http_request *r, char *out, size_t cap);
/* A JSON string member copied into the arena; {NULL, 0} if absent or not a string. */
struct str api__jstr(struct http_request *r, json_t *o, const char *name);
/* The required `token` parameter of introspection and revocation: ERR_OK, or an error
 * after answering 400. */
int api__token_param(struct http_request *r, const struct http_form *f, struct str *token);
/* A parameter: ERR_OK, ERR_NOTFOUND, or ERR_INVAL after answering 400 (repeated). */
int api__param(struct http_request *r, const struct http_form *f, const char *name, struct str *v);
/* The rest of a handler once its client is authenticated: f and c stay valid until the
 * request is answered. Returns HTTP_DONE or HTTP_ASYNC, like a handler. */
typedef int (*api__client_next)(struct http_request *r, const struct http_form *f,
                                const struct auth_client *c);
/* Authenticates the client (Basic or post), then runs next, at once or (a client not cached
 * on a shared store) when the store has answered, on this thread. Answers 400/401/503
 * itself. Returns HTTP_DONE or HTTP_ASYNC: the handler's own return value. */
int api__client_auth(struct http_request *r, const struct http_form *f, api__client_next next);
/* Whether an access token is active, for a request, without blocking its thread:
 * answer(r, rc, claims, arg) runs once with ERR_OK (active), ERR_INVAL (not) or ERR_BACKEND
 * (cannot tell: answer 503, never "inactive"), now or when a shared store has answered.
 * answer returns HTTP_DONE (it answered) or HTTP_ASYNC (it went on without answering yet);
 * api__verify returns what answer did, or HTTP_ASYNC while the store is asked. arg is the
 * caller's, borrowed until then. */
typedef int (*api__verify_answer)(struct http_request *r, int rc, const struct tok_claims *cl,
                                  void *arg);
int api__verify(struct http_request *r, struct str token, api__verify_answer answer, void *arg);
/* Issues an access token for cl (jti, times filled) with `ttl` (jitter applied) and answers
 * {"access_token",..,"refresh_token"?,"scope"?,"id_token"?} with no-store. */
void api__answer_tokens(struct http_request *r, struct tok_claims *cl, int64_t ttl,
                        const char *refresh, const struct tok_id *id);
/* grant_type=authorization_code (api_authorize.c) */
int api__grant_code(struct http_request *r, const struct http_form *f, const struct auth_client *c);

int api_register(struct http_request *r);
int api_login(struct http_request *r);
int api_refresh(struct http_request *r);
int api_logout(struct http_request *r);
/* /oauth2/token grants handled in api_auth.c */
int api__grant_password(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c);
int api__grant_refresh(struct http_request *r, const struct http_form *f,
                       const struct auth_client *c);
/* Revokes a refresh token's family (if it is client_id's; {NULL, 0}: none) and an access
 * token ({NULL, 0}: none; one not ours or expired is no error), then answers 200 as RFC
 * 7009 (oauth) or the logout API, or 400 (oauth: another client's access token), or 503.
 * Returns HTTP_ASYNC or HTTP_DONE. */
int api__revoke(struct http_request *r, int oauth, const char *client_id, struct str refresh,
                struct str access);

#endif
