/* SPDX-License-Identifier: MIT */
/*
 * The configuration table and its three readers (INI via libinih, environment, flags).
 * Values are parsed strictly: a size or duration with trailing junk, a number out of its
 * range or an unknown key is an error naming the source and line, never a silent default.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_int.h"
#include "core/err.h"
#include "core/log.h"

#define F(field) offsetof(struct cfg, field)

static const struct key keys[] = {
    {"server", "listen", K_STR, F(listen), 0, 0, "127.0.0.1:8080",
     "address to listen on, HOST:PORT or [V6]:PORT; port 0 picks a free port (logged)"},
    {"server", "listen_shared", K_BOOL, F(listen_shared), 0, 1, "false",
     "start even when another process already listens on listen (or admin_listen), and "
     "share the connections with it (SO_REUSEPORT): for a zero-downtime restart, start the "
     "new instance with this, then stop the old one; otherwise that start is refused"},
    {"server", "data_dir", K_STR, F(data_dir), 0, 0, "./data",
     "data directory, created if missing: the embedded store and the server key live here "
     "(with a Redis store, only the key); /readyz checks it is writable"},
    {"server", "threads", K_UINT, F(threads), 0, 256, "0",
     "event-loop threads, each with its own SO_REUSEPORT listener; 0 = one per core"},
    {"server", "max_connections", K_UINT, F(max_connections), 1, 1000000, "10000",
     "open connections across all threads; more are answered 503 and closed"},
    {"server", "drain_timeout", K_DUR, F(drain_timeout_ms), 0, 3600000, "10s",
     "on SIGTERM/SIGINT, how long in-flight requests may take before connections are cut"},
    {"server", "secret_key_file", K_STR, F(secret_key_file), 0, 0, "",
     "32-byte server key for secret digests (created 0600 if missing); empty = "
     "DATA_DIR/secret.key"},
    {"server", "init_store", K_BOOL, F(init_store), 0, 1, "false",
     "start an empty embedded store in a data directory that has held one (an empty "
     "data.mdb, or none beside a lock.mdb), which is otherwise refused: for a deliberate new "
     "start, never a default"},
    {"server", "store_map_size", K_SIZE64, F(store_map_size), 1 << 20, 1LL << 40, "4g",
     "largest size the embedded store may grow to (address space, not disk, until used)"},
    {"server", "store_fold_at", K_UINT, F(store_fold_at), 1000, 10000000, "200000",
     "embedded store: spent refresh tokens held in memory (about 100 bytes each, and a line "
     "each in data.mdb) before they are folded into their records, or, in a store large "
     "against them, written as a sorted run (up to 40, each with a filter of about 1.25 "
     "bytes a token in memory, and one filter before them all) that a later fold merges in; "
     "lower holds less memory, higher spreads the fold's random writes over more rotations "
     "(docs/internals/STORE.md)"},
    {"server", "store", K_STR, F(store), 0, 0, "",
     "where state lives: empty = the embedded store in data_dir (one instance); "
     "redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N&user=U&password=P] = a "
     "Redis shared by every "
     "instance; redis-sentinel://[[user]:password@]host:port[,host:port...]/NAME[/db] = the "
     "primary the sentinels name NAME, followed when they fail it over; "
     "redis-cluster://[[user]:password@]host:port[,host:port...] = a Redis Cluster, some of its "
     "nodes named (docs/deploy.md)"},
    {"server", "redis_prefix", K_STR, F(redis_prefix), 0, 0,
     "fg:", "prefix of every key floodgate writes in Redis (several deployments can share one)"},
    {"server", "redis_timeout", K_DUR, F(redis_timeout_ms), 1, 60000, "250ms",
     "a Redis command unanswered this long fails (the request gets 503) and the connection is "
     "remade"},
    {"server", "redis_wait_replicas", K_UINT, F(redis_wait_replicas), 0, 16, "0",
     "a write that must not be lost (a refresh rotation or a new family, a revocation, a "
     "user, a client, a key) is answered only once WAIT says this many replicas have it; "
     "fewer within redis_wait_timeout: 503 (the write may still reach them, or be lost in a "
     "failover; docs/deploy.md). 0: answered once the primary has it"},
    {"server", "redis_wait_timeout", K_DUR, F(redis_wait_timeout_ms), 1, 60000, "100ms",
     "how long a write waits for redis_wait_replicas (below redis_timeout)"},
    {"server", "redis_stale", K_DUR, F(redis_stale_ms), 0, 3600000, "30s",
     "while Redis is unreachable, access tokens already checked against the revocation list "
     "(the verification cache) are still answered for this long; then verification answers "
     "503. A token this instance knows was revoked stays refused"},
    {"server", "redis_stale_unchecked", K_BOOL, F(redis_stale_unchecked), 0, 1, "false",
     "within redis_stale, also accept a token not in the cache on its signature alone, unless "
     "this instance knows it was revoked (a revocation it never heard of cannot be seen). "
     "false: such a token is answered 503, never active"},
    {"limits", "max_header_bytes", K_SIZE, F(max_header_bytes), 256, 1 << 20, "16k",
     "request line plus headers; more is 431"},
    {"limits", "max_headers", K_UINT, F(max_headers), 1, 1000, "64",
     "number of header fields; more is 431"},
    {"limits", "max_url_bytes", K_SIZE, F(max_url_bytes), 16, 1 << 20, "8k",
     "request target length; more is 414"},
    {"limits", "max_body_bytes", K_SIZE, F(max_body_bytes), 0, 64 << 20, "64k",
     "request body; more is 413"},
    {"limits", "header_timeout", K_DUR, F(header_timeout_ms), 100, 3600000, "10s",
     "time to receive a request's line and headers (slowloris); then 408 and close"},
    {"limits", "body_timeout", K_DUR, F(body_timeout_ms), 100, 3600000, "10s",
     "time to receive a request body once headers are in; then 408 and close"},
    {"limits", "idle_timeout", K_DUR, F(idle_timeout_ms), 100, 3600000, "60s",
     "keep-alive connection idle time before it is closed"},
    {"limits", "write_timeout", K_DUR, F(write_timeout_ms), 100, 3600000, "10s",
     "time a client may take to accept a pending response before it is cut"},
    {"workers", "workers", K_UINT, F(workers), 0, 256, "0",
     "worker threads for CPU-heavy jobs (password hashing); 0 = one per core"},
    {"workers", "worker_queue", K_UINT, F(worker_queue), 1, 1000000, "1024",
     "jobs waiting for a worker; when full, requests get 503 with Retry-After"},
    {"workers", "worker_nice", K_INT, F(worker_nice), 0, 19, "10",
     "nice value of worker threads, so loop threads win the CPU when hashing saturates it"},
    {"tokens", "default_audience", K_STR, F(default_audience), 0, 0, "",
     "the aud of an access token when neither the request (resource/audience) nor the "
     "client's audiences name one, as for the JSON login API (RFC 9068 makes aud required); "
     "empty = the issuer"},
    {"tokens", "issuer", K_STR, F(issuer), 0, 0, "",
     "the iss of every token and the discovery issuer; empty = http:// plus the listen address"},
    {"tokens", "access_ttl", K_DUR, F(access_ttl_ms), 10000, 86400000, "15m",
     "access-token lifetime unless the client sets its own"},
    {"tokens", "access_ttl_jitter", K_DUR, F(access_ttl_jitter_ms), 0, 3600000, "0s",
     "up to this much is taken off each lifetime at random, so a mass login does not become a "
     "mass refresh at the same second"},
    {"tokens", "leeway", K_DUR, F(leeway_ms), 0, 300000, "30s",
     "clock skew allowed when checking nbf and iat; exp is enforced exactly (floodgate "
     "issued the token and knows when it ends)"},
    {"tokens", "verify_cache", K_UINT, F(verify_cache), 1, 1 << 22, "16384",
     "verified-token cache slots per loop thread (about 1.5 KiB each)"},
    {"tokens", "key_publish_ahead", K_DUR, F(key_publish_ahead_ms), 0, 86400000, "10m",
     "on rotation, how long a new signing key is published in JWKS before it signs"},
    {"tokens", "refresh_ttl", K_DUR_S, F(refresh_ttl_s), 60, 365 * 86400, "30d",
     "absolute lifetime of a refresh-token family (a login); rotation does not extend it"},
    {"tokens", "refresh_idle_ttl", K_DUR_S, F(refresh_idle_ttl_s), 60, 365 * 86400, "7d",
     "a refresh token unused this long expires"},
    {"tokens", "refresh_grace", K_DUR, F(refresh_grace_ms), 0, 300000, "0s",
     "a rotated refresh token presented again within this time gets the same successor "
     "(a lost answer, retried) instead of revoking its family. 0s (the default, as in Hydra, "
     "Auth0 and Keycloak): any reuse revokes the family at once (RFC 9700 4.14.2). A window "
     "spares clients on bad networks that lost an answer, but lets whoever holds a stolen "
     "spent token take the chain's next token within it, without a reuse signal"},
    {"tokens", "key_rotation", K_DUR_S, F(key_rotation_s), 0, 365 * 86400, "0s",
     "rotate the signing key when the newest one is this old (e.g. 30d); 0s: only by "
     "'floodgate key rotate'"},
    {"tokens", "signing_alg", K_STR, F(signing_alg), 0, 0, "EdDSA",
     "algorithm of access tokens: EdDSA (Ed25519), ES256 (P-256) or RS256 (RSA-2048). The key "
     "ring holds a key of each (the JWKS publishes them), so a change takes effect at the "
     "next start"},
    {"tokens", "id_token_signing_alg", K_STR, F(id_token_signing_alg), 0, 0, "RS256",
     "algorithm of ID tokens for clients that name none (--id-token-alg): RS256 (the one "
     "every OpenID Connect relying party supports), ES256 or EdDSA"},
    {"tokens", "purge_interval", K_DUR_S, F(purge_interval_s), 60, 86400, "10m",
     "how often expired refresh tokens, families and revoked ids are deleted"},
    {"auth", "registration", K_BOOL, F(registration), 0, 1, "true",
     "POST /v1/users is open to anyone (false: users only from the CLI)"},
    {"auth", "password_grant", K_BOOL, F(password_grant), 0, 1, "true",
     "accept grant_type=password at /oauth2/token (first-party clients with that grant)"},
    {"auth", "argon2_memory", K_UINT, F(argon2_memory_kib), 8, 1 << 20, "19456",
     "Argon2id memory in KiB (OWASP: 19456 = 19 MiB)"},
    {"auth", "argon2_passes", K_UINT, F(argon2_passes), 1, 64, "2", "Argon2id passes (OWASP: 2)"},
    {"auth", "argon2_lanes", K_UINT, F(argon2_lanes), 1, 16, "1", "Argon2id lanes (OWASP: 1)"},
    {"auth", "password_denylist", K_STR, F(password_denylist), 0, 0, "",
     "file of forbidden passwords, one per line (NIST SP 800-63B); empty for none"},
    {"auth", "first_party_client", K_STR, F(first_party_client), 0, 0, "first-party",
     "the client_id of tokens issued by the JSON login API (/v1/auth/*)"},
    {"auth", "session_idle", K_DUR_S, F(session_idle_s), 60, 30 * 86400, "1h",
     "a browser session (single sign-on at the login page) ends after this long unused"},
    {"auth", "session_ttl", K_DUR_S, F(session_ttl_s), 60, 365 * 86400, "12h",
     "... and this long after its sign-in, used or not"},
    {"auth", "cors_origins", K_STR, F(cors_origins), 0, 0, "",
     "web origins (https://app.example, comma-separated) whose pages may call the JSON API "
     "(/v1/*) from a browser; the OAuth endpoints allow the origins the clients registered"},
    {"auth", "logo_file", K_STR, F(logo_file), 0, 0, "",
     "the operator's logo on the hosted pages (.png, .svg, .jpg or .webp, at most 256 KiB; "
     "served from memory); empty = none"},
    {"auth", "product_name", K_STR, F(product_name), 0, 0, "floodgate",
     "the name the hosted login page shows people (\"Sign in to ...\")"},
    {"auth", "templates_dir", K_STR, F(templates_dir), 0, 0, "",
     "a directory of page templates replacing the built-in ones (login.html, consent.html, "
     "busy.html, logout.html, error.html, form_post.html, style.css; each optional; "
     "{{name}} is escaped, {{#name}}..{{/name}} shown if set); empty = the built-in pages"},
    {"protection", "lockout_pair_attempts", K_UINT, F(lockout_pair_attempts), 0, 1000, "5",
     "failed logins for one username from one IP before that pair is locked; 0 = off"},
    {"protection", "lockout_user_attempts", K_UINT, F(lockout_user_attempts), 0, 100000, "20",
     "failed logins for one username from anywhere before it is locked; 0 = off"},
    {"protection", "lockout_ip_attempts", K_UINT, F(lockout_ip_attempts), 0, 1000000, "100",
     "failed logins from one IP for any usernames before it is locked; 0 = off"},
    {"protection", "lockout_delay", K_DUR_S, F(lockout_delay_s), 0, 3600, "1s",
     "progressive delay per (username, IP) before the lock: after lockout_delay_after failures "
     "the next attempt must wait this long, doubling with each failure (at most lockout_base); "
     "refused like a wrong password; 0s: off"},
    {"protection", "lockout_delay_after", K_UINT, F(lockout_delay_after), 1, 1000, "2",
     "failures of a (username, IP) pair before its progressive delay begins"},
    {"protection", "lockout_base", K_DUR_S, F(lockout_base_s), 1, 86400, "1m",
     "first lock; each further lock of the same key doubles it"},
    {"protection", "lockout_max", K_DUR_S, F(lockout_max_s), 1, 7 * 86400, "1h", "longest lock"},
    {"protection", "lockout_window", K_DUR_S, F(lockout_window_s), 1, 7 * 86400, "15m",
     "failures older than this are forgotten"},
    {"protection", "lockout_entries", K_UINT, F(lockout_entries), 1024, 1 << 24, "131072",
     "lockout table size (usernames, IPs and pairs together); 48 bytes each"},
    {"protection", "ratelimit_login_ip", K_RATE, F(rl_login_ip), 0, 0, "10/s:20",
     "password logins per client IP: COUNT/s|m|h[:BURST], or off; over it: 429"},
    {"protection", "ratelimit_register_ip", K_RATE, F(rl_register_ip), 0, 0, "2/s:10",
     "registrations per client IP"},
    {"protection", "ratelimit_token_ip", K_RATE, F(rl_token_ip), 0, 0, "200/s:400",
     "token endpoint requests per client IP"},
    {"protection", "ratelimit_refresh_ip", K_RATE, F(rl_refresh_ip), 0, 0, "100/s:200",
     "JSON refreshes per client IP"},
    {"protection", "ratelimit_verify_ip", K_RATE, F(rl_verify_ip), 0, 0, "off",
     "introspection and gateway verify calls per client IP"},
    {"protection", "ratelimit_revoke_ip", K_RATE, F(rl_revoke_ip), 0, 0, "50/s:100",
     "revocations (RFC 7009) and logouts per client IP"},
    {"protection", "ratelimit_revoke_client", K_RATE, F(rl_revoke_client), 0, 0, "200/s:400",
     "revocations per authenticated client_id"},
    {"protection", "ratelimit_login_user", K_RATE, F(rl_login_user), 0, 0, "off",
     "password logins per username (whatever the IP), e.g. 1/s:5"},
    {"protection", "ratelimit_token_client", K_RATE, F(rl_token_client), 0, 0, "off",
     "token endpoint requests per authenticated client_id"},
    {"protection", "ratelimit_login_global", K_RATE, F(rl_login_global), 0, 0, "off",
     "password logins in all, a circuit breaker"},
    {"protection", "ratelimit_register_global", K_RATE, F(rl_register_global), 0, 0, "off",
     "registrations in all"},
    {"protection", "ratelimit_token_global", K_RATE, F(rl_token_global), 0, 0, "off",
     "token endpoint requests in all"},
    {"protection", "inflight_login", K_UINT, F(inflight_login), 0, 1000000, "0",
     "password logins in flight at once (hashing or storing); more get 503; 0: only "
     "hash_deadline and worker_queue bound them"},
    {"protection", "inflight_register", K_UINT, F(inflight_register), 0, 1000000, "0",
     "registrations in flight at once; 0: no cap"},
    {"protection", "inflight_refresh", K_UINT, F(inflight_refresh), 0, 1000000, "8192",
     "refreshes waiting for the store at once; more get 503 + Retry-After; 0: no cap"},
    {"protection", "trusted_proxies", K_STR, F(trusted_proxies), 0, 0, "",
     "proxies whose X-Forwarded-For / Forwarded name the client (addresses or CIDR blocks, "
     "e.g. 127.0.0.1,10.0.0.0/8); empty: the TCP peer is the client"},
    {"protection", "client_ipv4_prefix", K_UINT, F(ipv4_prefix), 1, 32, "32",
     "per-IP rules (rate limits, lockout, the failing-address count) count IPv4 clients by "
     "this prefix length"},
    {"protection", "client_ipv6_prefix", K_UINT, F(ipv6_prefix), 1, 128, "64",
     "... and IPv6 clients by this one: a /64 is what one subscriber or host is usually given, "
     "so it cannot rotate addresses past every per-IP budget"},
    {"protection", "ratelimit_entries", K_UINT, F(rl_entries), 1024, 1 << 24, "131072",
     "rate-limit table size (keys of all rules together); about 24 bytes each"},
    {"protection", "ratelimit_split", K_BOOL, F(rl_split), 0, 1, "true",
     "with a shared store, the limits are totals for all instances: each of the N serving "
     "instances (counted in Redis every second) allows 1/N of every rate and burst (at least "
     "one), exact when the gateway spreads requests evenly; per-IP and per-user logins are "
     "counted in Redis instead. false: every instance allows the whole limit"},
    {"policy", "policy_wait_elevated", K_DUR, F(pol_wait_ms[1]), 1, 600000, "100ms",
     "expected wait of a new password hash that raises the mode to elevated"},
    {"policy", "policy_wait_surge", K_DUR, F(pol_wait_ms[2]), 1, 600000, "500ms", "... to surge"},
    {"policy", "policy_wait_shed", K_DUR, F(pol_wait_ms[3]), 1, 600000, "1500ms", "... to shed"},
    {"policy", "policy_load_elevated", K_UINT, F(pol_load_pct[1]), 1, 100000, "50",
     "login demand as a percentage of the measured hashing capacity that raises the mode "
     "to elevated"},
    {"policy", "policy_load_surge", K_UINT, F(pol_load_pct[2]), 1, 100000, "90", "... to surge"},
    {"policy", "policy_load_shed", K_UINT, F(pol_load_pct[3]), 1, 100000, "200", "... to shed"},
    {"policy", "policy_stuffing_failed", K_UINT, F(pol_stuffing_pct), 1, 100, "80",
     "percentage of failed logins that means credential stuffing when logins run at a quarter "
     "of capacity or more, or come from policy_stuffing_ips addresses"},
    {"policy", "policy_stuffing_ips", K_UINT, F(pol_stuffing_ips), 1, 1000000, "50",
     "... or failures from at least this many client addresses in one second: credential "
     "stuffing is suspected (at least elevated, and policy_stuffing_ip_divisor applies)"},
    {"policy", "policy_stuffing_ip_divisor", K_UINT, F(pol_stuffing_ip_div), 1, 1000, "4",
     "while credential stuffing is suspected, the per-IP login limit is divided by at least "
     "this"},
    {"policy", "policy_down_after", K_DUR_S, F(pol_down_after_s), 1, 3600, "10s",
     "calm needed before the mode falls one level (it rises at once)"},
    {"policy", "policy_ip_divisor_elevated", K_UINT, F(pol_ip_div[1]), 1, 1000, "1",
     "in elevated, per-IP login and registration limits (rate and burst) are divided by this"},
    {"policy", "policy_ip_divisor_surge", K_UINT, F(pol_ip_div[2]), 1, 1000, "2", "... in surge"},
    {"policy", "policy_ip_divisor_shed", K_UINT, F(pol_ip_div[3]), 1, 1000, "4", "... in shed"},
    {"policy", "policy_ttl_factor_elevated", K_UINT, F(pol_ttl_factor[1]), 1, 24, "1",
     "in elevated, access-token lifetimes are multiplied by this (fewer refreshes hit the "
     "store), up to policy_ttl_max"},
    {"policy", "policy_ttl_factor_surge", K_UINT, F(pol_ttl_factor[2]), 1, 24, "2", "... in surge"},
    {"policy", "policy_ttl_factor_shed", K_UINT, F(pol_ttl_factor[3]), 1, 24, "2", "... in shed"},
    {"policy", "policy_ttl_max", K_DUR_S, F(pol_ttl_max_s), 10, 86400, "1h",
     "longest access-token lifetime a factor may reach (a configured longer one is kept)"},
    {"policy", "policy_registration_pause", K_STR, F(pol_registration_pause), 0, 0, "shed",
     "from this mode on, open registration answers 503 + Retry-After (elevated, surge, shed "
     "or never)"},
    {"policy", "policy_event_lead", K_DUR_S, F(pol_event_lead_s), 0, 86400, "5m",
     "an announced event holds the mode up from this long before it starts"},
    {"events", "audit_log", K_STR, F(audit_log), 0, 0, "",
     "JSON-lines audit log of every auth event (docs/events.md): a file, reopened on SIGHUP, "
     "or - for stdout; empty: none"},
    {"events", "events_queue", K_UINT, F(ev_queue), 64, 1 << 20, "4096",
     "events each thread may queue for the dispatcher (rounded up to a power of two); when "
     "full, low-priority events are dropped first and counted"},
    {"events", "events_token_issued_sample", K_UINT, F(ev_token_issued_pct), 0, 100, "100",
     "percentage of token.issued events published (the highest-volume event)"},
    {"events", "events_user_ids", K_STR, F(ev_user_ids), 0, 0, "plain",
     "user ids in events: plain, hashed (keyed BLAKE2b pseudonym) or off"},
    {"events", "events_ips", K_STR, F(ev_ips), 0, 0, "plain",
     "client addresses in events: plain, hashed or off"},
    {"events", "events_source", K_STR, F(ev_source), 0, 0, "",
     "the instance every event names in its source field (several instances write to one "
     "log, webhook or stream); empty: HOSTNAME:PORT of the listener. Letters, digits and "
     ". _ : -, at most 48"},
    {"events", "webhook", K_STR, F(webhook), 0, 0, "",
     "URL that receives every event (filter: webhook_events) as a signed POST; more endpoints "
     "in [webhook.NAME] sections of the config file"},
    {"events", "webhook_secret", K_STR, F(webhook_secret), 0, 0, "",
     "HMAC-SHA256 key for the webhook's Floodgate-Signature header (16 characters or more)"},
    {"events", "webhook_events", K_STR, F(webhook_events), 0, 0, "*",
     "event types the webhook receives, comma-separated, or *"},
    {"events", "webhook_timeout", K_DUR, F(webhook_timeout_ms), 100, 600000, "5s",
     "one delivery attempt's time limit"},
    {"events", "webhook_retries", K_UINT, F(webhook_retries), 0, 100, "5",
     "retries after the first attempt, then the dead-letter file"},
    {"events", "webhook_backoff", K_DUR, F(webhook_backoff_ms), 10, 600000, "1s",
     "first retry delay, doubling per attempt, jittered by +-50 %, at most 10 minutes"},
    {"events", "webhook_inflight", K_UINT, F(webhook_inflight), 1, 10000, "16",
     "deliveries in flight per endpoint"},
    {"events", "webhook_queue", K_UINT, F(webhook_queue), 1, 10000000, "100000",
     "deliveries waiting per endpoint; past it they go straight to the dead-letter file"},
    {"events", "webhook_batch", K_UINT, F(webhook_batch), 1, 10000, "100",
     "most events per POST: each delivery is a JSON array of what an endpoint is due within "
     "20 ms"},
    {"events", "events_redis", K_STR, F(ev_redis), 0, 0, "",
     "Redis that receives every event in a stream (XADD): "
     "redis://[[user]:password@]host[:port][/db] "
     "or unix:///path/to/socket; empty: none"},
    {"events", "events_redis_stream", K_STR, F(ev_redis_stream), 0, 0, "floodgate:events",
     "the stream's key; each entry has one field, event, holding the event's JSON"},
    {"events", "events_redis_maxlen", K_UINT, F(ev_redis_maxlen), 100, 1000000000, "1000000",
     "XADD MAXLEN ~ this: the stream keeps about this many recent events"},
    {"events", "dead_letter", K_STR, F(dead_letter), 0, 0, "",
     "file for deliveries that failed every retry (JSON lines); empty: DATA_DIR/dead-letter.jsonl"},
    {"events", "autoscaler_webhook", K_STR, F(autoscaler_webhook), 0, 0, "",
     "reaction: URL told of policy.mode_changed and scale.recommendation (signed like webhook)"},
    {"events", "autoscaler_secret", K_STR, F(autoscaler_secret), 0, 0, "",
     "HMAC key for autoscaler_webhook"},
    {"events", "notify_webhook", K_STR, F(notify_webhook), 0, 0, "",
     "reaction: URL told of account.locked and token.reuse_detected"},
    {"events", "notify_secret", K_STR, F(notify_secret), 0, 0, "", "HMAC key for notify_webhook"},
    {"events", "reuse_revokes_all_sessions", K_BOOL, F(reuse_revokes_all), 0, 1, "false",
     "reaction: a reused refresh token revokes every session of its user, not only its family"},
    {"admin", "admin_listen", K_STR, F(admin_listen), 0, 0, "127.0.0.1:8081",
     "address of the admin API (/admin/...); loopback by default; port 0 picks one (logged)"},
    {"admin", "admin_token", K_STR, F(admin_token), 0, 0, "",
     "bearer token the admin API requires (at least 32 characters); empty: no admin API. "
     "Prefer FLOODGATE_ADMIN_TOKEN or the config file to a flag, which ps can show"},
    {"workers", "hash_deadline", K_DUR, F(hash_deadline_ms), 0, 600000, "2s",
     "admission control: when a new job's expected wait (queue depth x measured service "
     "time / workers) exceeds this, answer 503 + Retry-After at once instead of queueing, and a "
     "job "
     "that still waited longer is answered 503 when its turn comes, not run late; "
     "0s: only worker_queue bounds the queue"},
    {"log", "log_level", K_LEVEL, F(log_level), 0, 0, "info", "debug, info, warn, error or off"},
    {"log", "log_file", K_STR, F(log_file), 0, 0, "-",
     "JSON-lines log file, - for stderr; reopened on SIGHUP"},
    {"log", "access_log", K_STR, F(access_log), 0, 0, "",
     "JSON-lines access log (buffered), - for stdout, empty for none; reopened on SIGHUP"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

_Static_assert(NKEYS <= CFG_KEYS_MAX, "CFG_KEYS_MAX is below the table's size");

#define set_err cfg__set_err

void cfg__set_err(struct cfg_error *e, const char *where, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    size_t n = strlen(where);
    if (n >= sizeof(e->where))
        n = sizeof(e->where) - 1;
    memcpy(e->where, where, n);
    e->where[n] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof(e->what), fmt, ap);
    va_end(ap);
}

/* Parses a whole decimal number with an optional suffix from `units` (name, multiplier). */
static int parse_scaled(const char *s, const char *const *units, const long long *mult,
                        long long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return ERR_INVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return ERR_INVAL;
    long long m = 1;
    if (*end) {
        int found = 0;
        for (int i = 0; units[i]; i++) {
            if (strcmp(end, units[i]) == 0) {
                m = mult[i];
                found = 1;
                break;
            }
        }
        if (!found)
            return ERR_INVAL;
    } else if (units == NULL) {
        return ERR_INVAL;
    }
    if (v > (unsigned long long)(INT64_MAX / m))
        return ERR_INVAL;
    *out = (long long)v * m;
    return ERR_OK;
}

static const char *const size_units[] = {"",   "b",  "k", "K", "kb", "KB", "m", "M",
                                         "mb", "MB", "g", "G", "gb", "GB", NULL};
static const long long size_mult[] = {1,       1,       1024,    1024,    1024,
                                      1024,    1 << 20, 1 << 20, 1 << 20, 1 << 20,
                                      1 << 30, 1 << 30, 1 << 30, 1 << 30};
static const char *const dur_units[] = {"ms", "s", "m", "h", "d", NULL};
static const long long dur_mult[] = {1, 1000, 60000, 3600000, 86400000};

int cfg__apply(struct cfg *c, const struct key *k, const char *val, const char *where,
               struct cfg_error *e)
{
    char *dst = (char *)c + k->off;
    long long v = 0;
    int rc = ERR_OK;

    switch (k->kind) {
    case K_STR:
        if (strlen(val) >= CFG_STR_MAX) {
            set_err(e, where, "%s: value longer than %d bytes", k->name, CFG_STR_MAX - 1);
            return ERR_INVAL;
        }
        memcpy(dst, val, strlen(val) + 1);
        return ERR_OK;
    case K_LEVEL: {
        int l = log_level_parse(val);
        if (l < 0) {
            set_err(e, where, "%s: '%s' is not one of debug, info, warn, error, off", k->name, val);
            return ERR_INVAL;
        }
        *(int *)(void *)dst = l;
        return ERR_OK;
    }
    case K_UINT:
    case K_INT: {
        char *end;
        errno = 0;
        v = strtoll(val, &end, 10);
        if (errno || end == val || *end)
            rc = ERR_INVAL;
        break;
    }
    case K_SIZE:
    case K_SIZE64:
        rc = parse_scaled(val, size_units, size_mult, &v);
        break;
    case K_DUR:
    case K_DUR_S:
        /* A bare number is ambiguous for a duration; ask for the unit. */
        rc = parse_scaled(val, dur_units, dur_mult, &v);
        if (rc == ERR_OK && strspn(val, "0123456789") == strlen(val) && v != 0)
            rc = ERR_INVAL;
        if (rc == ERR_OK && k->kind == K_DUR_S)
            v /= 1000;
        break;
    case K_RATE: {
        /* COUNT/UNIT[:BURST], e.g. 10/s:20; "off" or "0" turns the rule off */
        struct cfg_rate *r = (struct cfg_rate *)(void *)dst;
        unsigned long cnt, burst;
        char unit, *end;
        if (!strcmp(val, "off") || !strcmp(val, "0")) {
            memset(r, 0, sizeof(*r));
            return ERR_OK;
        }
        errno = 0;
        cnt = strtoul(val, &end, 10);
        if (errno || end == val || end[0] != '/' || !end[1] || cnt == 0 || cnt > 1000000) {
            rc = ERR_INVAL;
            break;
        }
        unit = end[1];
        end += 2;
        burst = cnt;
        if (*end == ':') {
            char *e2;
            burst = strtoul(end + 1, &e2, 10);
            if (e2 == end + 1 || *e2 || burst == 0 || burst > 10000000)
                rc = ERR_INVAL;
        } else if (*end) {
            rc = ERR_INVAL;
        }
        if (rc == ERR_OK && unit != 's' && unit != 'm' && unit != 'h')
            rc = ERR_INVAL;
        if (rc)
            break;
        r->count = (unsigned)cnt;
        r->per_s = unit == 's' ? 1 : unit == 'm' ? 60 : 3600;
        r->burst = (unsigned)burst;
        return ERR_OK;
    }
    case K_BOOL: {
        int b = cfg_bool_word(val);
        if (b < 0)
            rc = ERR_INVAL;
        v = b;
        break;
    }
    }
    if (rc) {
        if (k->kind == K_SIZE || k->kind == K_SIZE64)
            set_err(e, where, "%s: '%s' is not a size (e.g. 16k, 1m, 512)", k->name, val);
        else if (k->kind == K_DUR || k->kind == K_DUR_S)
            set_err(e, where, "%s: '%s' is not a duration (e.g. 500ms, 10s, 2m, 7d)", k->name, val);
        else if (k->kind == K_BOOL)
            set_err(e, where, "%s: '%s' is not true or false", k->name, val);
        else if (k->kind == K_RATE)
            set_err(e, where, "%s: '%s' is not COUNT/s|m|h[:BURST] (e.g. 10/s:20) or off", k->name,
                    val);
        else
            set_err(e, where, "%s: '%s' is not a whole number", k->name, val);
        return ERR_INVAL;
    }
    if (v < k->min || v > k->max) {
        char range[64];
        snprintf(range, sizeof(range), "%lld..%lld", k->min, k->max);
        set_err(e, where, "%s: %s is out of range (%s)", k->name, val, range);
        return ERR_INVAL;
    }
    if (k->kind == K_INT || k->kind == K_BOOL)
        *(int *)(void *)dst = (int)v;
    else if (k->kind == K_SIZE64)
        *(size_t *)(void *)dst = (size_t)v;
    else
        *(unsigned *)(void *)dst = (unsigned)v;
    return ERR_OK;
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = cfg__apply(c, &keys[i], keys[i].def, "default", NULL);
        if (rc) {
            fprintf(stderr, "floodgate: bad built-in default for %s\n", keys[i].name);
            abort();
        }
    }
}

size_t cfg__key_index(const struct key *k)
{
    return (size_t)(k - keys);
}

const struct key *cfg__find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0 && (!section || strcmp(keys[i].section, section) == 0))
            return &keys[i];
    return NULL;
}

/* FLOODGATE_MAX_BODY_BYTES -> max_body_bytes */
static const struct key *key_for_env(const char *var, size_t len)
{
    char name[64];

    if (len >= sizeof(name))
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = var[i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch | 0x20) : ch;
    }
    name[len] = '\0';
    return cfg__find_key(NULL, name);
}

/* The FLOODGATE_* variables of envp into c: the first error into e (ERR_INVAL), or, with
 * each, every error to each() and their count. */
static int load_env(struct cfg *c, const char *const *envp, struct cfg_error *e, cfg_error_cb each,
                    void *arg)
{
    static const char prefix[] = "FLOODGATE_";
    int n = 0;

    for (; envp && *envp; envp++) {
        const char *s = *envp;
        if (strncmp(s, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *name = s + sizeof(prefix) - 1;
        const char *eq = strchr(name, '=');
        if (!eq)
            continue;
        char where[96];
        int wn = snprintf(where, sizeof(where), "%.*s", (int)(eq - s), s), rc = ERR_INVAL;
        const struct key *k = NULL;
        if (wn < 0 || (size_t)wn >= sizeof(where))
            set_err(e, "environment", "variable name too long");
        else if (strcmp(where, "FLOODGATE_CONFIG") == 0) /* (names the file: main reads it) */
            continue;
        else if (!(k = key_for_env(name, (size_t)(eq - name))))
            set_err(e, where, "unknown setting '%s' (see floodgate --help)", where);
        else
            rc = cfg__apply(c, k, eq + 1, where, e);
        if (rc && !each)
            return rc;
        if (rc) {
            each(e, arg);
            n++;
        }
    }
    return n;
}

int cfg_load_env(struct cfg *c, const char *const *envp, struct cfg_error *e)
{
    return load_env(c, envp, e, NULL, NULL);
}

int cfg_check_env(struct cfg *c, const char *const *envp, cfg_error_cb each, void *arg)
{
    struct cfg_error e = {0};
    return load_env(c, envp, &e, each, arg);
}

/* The key a flag names: --max-body-bytes is max_body_bytes. NULL if none. */
static const struct key *key_for_flag(const char *flag)
{
    char name[64];
    size_t n = strlen(flag);

    if (n < 3 || n - 2 >= sizeof(name) || flag[0] != '-' || flag[1] != '-')
        return NULL;
    for (size_t i = 2; i <= n; i++)
        name[i - 2] = flag[i] == '-' ? '_' : flag[i];
    return cfg__find_key(NULL, name);
}

int cfg_flag_is_bool(const char *flag)
{
    const struct key *k = key_for_flag(flag);
    return k && k->kind == K_BOOL;
}

int cfg_bool_word(const char *s)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0)
            return 1;
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

int cfg_set_flag(struct cfg *c, const char *flag, const char *value, struct cfg_error *e)
{
    const struct key *k = key_for_flag(flag);
    if (!k)
        return ERR_NOTFOUND;
    if (!value) {
        set_err(e, flag, "%s needs a value", flag);
        return ERR_INVAL;
    }
    return cfg__apply(c, k, value, flag, e);
}

int cfg_split_hostport(const char *s, char *host, size_t hostcap, unsigned *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return ERR_INVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return ERR_INVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostcap)
        return ERR_INVAL;
    const char *ps = colon + 1;
    if (!*ps || strspn(ps, "0123456789") != strlen(ps) || strlen(ps) > 5)
        return ERR_INVAL;
    unsigned long p = strtoul(ps, NULL, 10);
    if (p > 65535)
        return ERR_INVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)p;
    return ERR_OK;
}

bool cfg_is_loopback(const char *hostport)
{
    char host[256];
    unsigned port;
    struct in_addr a4;
    struct in6_addr a6;

    if (cfg_split_hostport(hostport, host, sizeof(host), &port))
        return false;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

int cfg_validate(const struct cfg *c, struct cfg_error *e)
{
    char host[256];
    unsigned port;

    if (cfg_split_hostport(c->listen, host, sizeof(host), &port)) {
        set_err(e, "listen", "'%s' is not HOST:PORT or [V6]:PORT", c->listen);
        return ERR_INVAL;
    }
    if (c->max_url_bytes > c->max_header_bytes) {
        set_err(e, "max_url_bytes", "must not exceed max_header_bytes");
        return ERR_INVAL;
    }
    if (c->redis_wait_replicas && !c->store[0]) {
        set_err(e, "redis_wait_replicas",
                "needs store = redis://... (the embedded store "
                "writes to its own disk, with no replicas)");
        return ERR_INVAL;
    }
    if (c->redis_wait_replicas && c->refresh_grace_ms == 0) {
        set_err(e, "redis_wait_replicas",
                "needs refresh_grace (e.g. 10s): a refresh answered 503 because a replica "
                "did not confirm it in time was applied on the primary, and the client's retry "
                "of the same token must get its successor, not revoke its family");
        return ERR_INVAL;
    }
    if (c->redis_wait_replicas && c->redis_wait_timeout_ms >= c->redis_timeout_ms) {
        set_err(e, "redis_wait_timeout", "must be below redis_timeout (%u ms)",
                c->redis_timeout_ms);
        return ERR_INVAL;
    }
    if (c->admin_token[0] && strlen(c->admin_token) < 32) {
        set_err(e, "admin_token", "must be at least 32 characters (use e.g. openssl rand -hex 32)");
        return ERR_INVAL;
    }
    if (c->admin_token[0] && cfg_split_hostport(c->admin_listen, host, sizeof(host), &port)) {
        set_err(e, "admin_listen", "'%s' is not HOST:PORT or [V6]:PORT", c->admin_listen);
        return ERR_INVAL;
    }
    if (strcmp(c->id_token_signing_alg, "EdDSA") && strcmp(c->id_token_signing_alg, "ES256") &&
        strcmp(c->id_token_signing_alg, "RS256")) {
        set_err(e, "id_token_signing_alg", "'%s' is not RS256, ES256 or EdDSA",
                c->id_token_signing_alg);
        return -1;
    }
    if (strcmp(c->signing_alg, "EdDSA") && strcmp(c->signing_alg, "ES256") &&
        strcmp(c->signing_alg, "RS256")) {
        set_err(e, "signing_alg", "'%s' is not EdDSA, ES256 or RS256", c->signing_alg);
        return ERR_INVAL;
    }
    if (!c->data_dir[0]) {
        set_err(e, "data_dir", "must not be empty");
        return ERR_INVAL;
    }
    for (int m = 2; m <= 3; m++) {
        if (c->pol_wait_ms[m] < c->pol_wait_ms[m - 1] ||
            c->pol_load_pct[m] < c->pol_load_pct[m - 1]) {
            set_err(e, m == 2 ? "policy_wait_surge" : "policy_wait_shed",
                    "thresholds must not fall from elevated to surge to shed (wait and load)");
            return ERR_INVAL;
        }
    }
    for (int i = 0; i < 2; i++) {
        const char *v = i ? c->ev_ips : c->ev_user_ids;
        if (strcmp(v, "plain") && strcmp(v, "hashed") && strcmp(v, "off")) {
            set_err(e, i ? "events_ips" : "events_user_ids", "'%s' is not plain, hashed or off", v);
            return ERR_INVAL;
        }
    }
    if (strlen(c->ev_source) > 48 ||
        strspn(c->ev_source,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
            strlen(c->ev_source)) {
        set_err(e, "events_source", "letters, digits and . _ : - only, at most 48");
        return ERR_INVAL;
    }
    struct {
        const char *key, *url, *secret;
    } hooks[3 + CFG_HOOKS_MAX] = {
        {"webhook", c->webhook, c->webhook_secret},
        {"autoscaler_webhook", c->autoscaler_webhook, c->autoscaler_secret},
        {"notify_webhook", c->notify_webhook, c->notify_secret}};
    for (unsigned i = 0; i < c->nhooks; i++) {
        hooks[3 + i].key = c->hooks[i].name;
        hooks[3 + i].url = c->hooks[i].url;
        hooks[3 + i].secret = c->hooks[i].secret;
    }
    for (unsigned i = 0; i < 3 + c->nhooks; i++) {
        if (!hooks[i].url[0] && i < 3)
            continue;
        if (strncmp(hooks[i].url, "http://", 7) != 0 && strncmp(hooks[i].url, "https://", 8) != 0) {
            set_err(e, hooks[i].key, "'%s' is not an http:// or https:// URL", hooks[i].url);
            return ERR_INVAL;
        }
        if (strlen(hooks[i].secret) < 16 || strlen(hooks[i].secret) > 255) {
            set_err(e, hooks[i].key, "needs a secret of 16..255 characters to sign deliveries");
            return ERR_INVAL;
        }
    }
    static const char *const pause[] = {"elevated", "surge", "shed", "never"};
    int ok = 0;
    for (size_t i = 0; i < sizeof(pause) / sizeof(pause[0]); i++)
        ok |= strcmp(c->pol_registration_pause, pause[i]) == 0;
    if (!ok) {
        set_err(e, "policy_registration_pause", "'%s' is not elevated, surge, shed or never",
                c->pol_registration_pause);
        return ERR_INVAL;
    }
    return ERR_OK;
}

static void flag_name(const struct key *k, char *dst, size_t cap)
{
    snprintf(dst, cap, "--%s", k->name);
    for (char *p = dst + 2; *p; p++)
        if (*p == '_')
            *p = '-';
}

static void env_name(const struct key *k, char *dst, size_t cap)
{
    snprintf(dst, cap, "FLOODGATE_%s", k->name);
    for (char *p = dst; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
}

void cfg_print_help(FILE *f)
{
    char flag[80];
    const char *section = "";

    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "\n  [%s]\n", section);
        }
        flag_name(k, flag, sizeof(flag));
        fprintf(f, "  %-22s %s (default: %s)\n", flag, k->help, *k->def ? k->def : "none");
    }
}

void cfg_print_markdown(FILE *f)
{
    char flag[80], env[80];

    fprintf(f, "| INI `[section] key` | flag | environment | default | meaning |\n");
    fprintf(f, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        flag_name(k, flag, sizeof(flag));
        env_name(k, env, sizeof(env));
        fprintf(f, "| `[%s] %s` | `%s` | `%s` | `%s` | %s |\n", k->section, k->name, flag, env,
                k->def, k->help);
    }
    fprintf(f,
            "\nMore webhook endpoints, up to %d, each in a section of its own in the INI file "
            "(no flag or environment variable; NAME: 1..40 characters; docs/events.md):\n\n"
            "| INI `[webhook.NAME] key` | default | meaning |\n|---|---|---|\n"
            "| `[webhook.NAME] url` | | the endpoint, http:// or https:// (required) |\n"
            "| `[webhook.NAME] secret` | | HMAC-SHA256 key that signs each delivery, 16..255 "
            "characters (required) |\n"
            "| `[webhook.NAME] events` | `*` | the event types it receives, comma-separated; "
            "`*` for all |\n",
            CFG_HOOKS_MAX);
}
