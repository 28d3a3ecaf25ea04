/* SPDX-License-Identifier: MIT */
/*
 * Configuration: built-in defaults, then an INI file, then FLOODGATE_* environment variables,
 * then command-line flags, each overriding the last. Every key is described once, in the
 * table in config.c, which also produces `floodgate --help` and docs/configuration.md, so
 * the three cannot drift apart. Unknown keys are errors. The struct is filled on the main
 * thread before any loop starts and is read-only afterwards (a snapshot).
 */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CFG_STR_MAX   1024
#define CFG_HOOKS_MAX 8

/* A [webhook.NAME] section of the INI file: one more endpoint with its own filter. */
struct cfg_hook {
    char name[64];
    char url[CFG_STR_MAX];
    char secret[256];
    char events[CFG_STR_MAX];
};

/* A rate limit: `count` requests per `per_s` seconds, bursts up to `burst`; count 0 = off. */
struct cfg_rate {
    unsigned count;
    unsigned per_s;
    unsigned burst;
};

struct cfg {
    /* [server] */
    char listen[CFG_STR_MAX];
    char data_dir[CFG_STR_MAX];
    unsigned threads; /* 0: one per core */
    unsigned max_connections;
    unsigned drain_timeout_ms;
    char secret_key_file[CFG_STR_MAX];
    size_t store_map_size;
    unsigned store_fold_at;
    char store[CFG_STR_MAX]; /* "" = LMDB in data_dir; redis://... or unix://... = Redis */
    char redis_prefix[CFG_STR_MAX];
    unsigned redis_timeout_ms;
    unsigned redis_stale_ms;
    unsigned redis_wait_replicas, redis_wait_timeout_ms;
    int listen_shared;         /* bool: join another process's listener (SO_REUSEPORT) */
    int init_store;            /* bool: an emptied data directory may start anew */
    int redis_stale_unchecked; /* bool: signature-only answers during an outage */
    /* [limits] */
    unsigned max_header_bytes;
    unsigned max_headers;
    unsigned max_url_bytes;
    unsigned max_body_bytes;
    unsigned header_timeout_ms;
    unsigned body_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned write_timeout_ms;
    /* [workers] */
    unsigned workers; /* 0: one per core */
    unsigned worker_queue;
    int worker_nice;
    unsigned hash_deadline_ms; /* 0: only the queue bound */
    /* [tokens] */
    char issuer[CFG_STR_MAX];
    char default_audience[CFG_STR_MAX];
    unsigned access_ttl_ms;
    unsigned access_ttl_jitter_ms;
    unsigned leeway_ms;
    unsigned verify_cache;
    unsigned key_publish_ahead_ms;
    unsigned refresh_ttl_s;
    unsigned refresh_idle_ttl_s;
    unsigned refresh_grace_ms;
    unsigned key_rotation_s; /* 0: only by hand */
    char signing_alg[CFG_STR_MAX];
    char id_token_signing_alg[CFG_STR_MAX];
    unsigned purge_interval_s;
    /* [auth] */
    int registration;   /* bool: POST /v1/users open to anyone */
    int password_grant; /* bool: grant_type=password at /oauth2/token */
    unsigned argon2_memory_kib;
    unsigned argon2_passes;
    unsigned argon2_lanes;
    char password_denylist[CFG_STR_MAX];
    char first_party_client[CFG_STR_MAX];
    char product_name[CFG_STR_MAX];
    char cors_origins[CFG_STR_MAX];
    char logo_file[CFG_STR_MAX];
    unsigned session_idle_s, session_ttl_s;
    char templates_dir[CFG_STR_MAX];
    /* [protection] */
    unsigned lockout_user_attempts;
    unsigned lockout_ip_attempts;
    unsigned lockout_pair_attempts;
    unsigned lockout_delay_s;
    unsigned lockout_delay_after;
    unsigned lockout_base_s;
    unsigned lockout_max_s;
    unsigned lockout_window_s;
    unsigned lockout_entries;
    struct cfg_rate rl_login_ip;
    struct cfg_rate rl_register_ip;
    struct cfg_rate rl_token_ip;
    struct cfg_rate rl_refresh_ip;
    struct cfg_rate rl_revoke_ip, rl_revoke_client;
    struct cfg_rate rl_verify_ip;
    struct cfg_rate rl_login_user;
    struct cfg_rate rl_token_client;
    struct cfg_rate rl_login_global;
    struct cfg_rate rl_register_global;
    struct cfg_rate rl_token_global;
    unsigned rl_entries;
    int rl_split; /* bool: limits are totals divided among the instances */
    unsigned inflight_login;
    unsigned inflight_register;
    unsigned inflight_refresh;
    char trusted_proxies[CFG_STR_MAX];
    unsigned ipv4_prefix, ipv6_prefix; /* per-IP rules key clients by these prefixes */
    /* [policy]: the adaptive policy's thresholds and effects, by mode (index 1 elevated,
     * 2 surge, 3 shed; index 0, normal, is fixed) */
    unsigned pol_wait_ms[4];      /* expected hash wait that raises the mode to this level */
    unsigned pol_load_pct[4];     /* login demand / capacity, percent, likewise */
    unsigned pol_stuffing_pct;    /* failed share of logins that means credential stuffing */
    unsigned pol_stuffing_ips;    /* ... from at least this many addresses in a second */
    unsigned pol_stuffing_ip_div; /* per-IP login limit divisor while stuffing is suspected */
    unsigned pol_down_after_s;    /* calm needed before falling one level */
    unsigned pol_ip_div[4];       /* per-IP login and registration limits divided by this */
    unsigned pol_ttl_factor[4];   /* access-token lifetimes multiplied by this */
    unsigned pol_ttl_max_s;       /* ... up to this */
    char pol_registration_pause[CFG_STR_MAX]; /* lowest mode that pauses registration */
    unsigned pol_event_lead_s; /* an announced event raises the mode this long before */
    /* [events] */
    char audit_log[CFG_STR_MAX];
    unsigned ev_queue;
    unsigned ev_token_issued_pct;
    char ev_user_ids[CFG_STR_MAX]; /* plain, hashed or off */
    char ev_ips[CFG_STR_MAX];
    char ev_source[CFG_STR_MAX]; /* the source field of events; "" = HOSTNAME:PORT */
    char webhook[CFG_STR_MAX];
    char webhook_secret[CFG_STR_MAX];
    char webhook_events[CFG_STR_MAX];
    unsigned webhook_timeout_ms;
    unsigned webhook_retries;
    unsigned webhook_backoff_ms;
    unsigned webhook_inflight;
    unsigned webhook_queue;
    unsigned webhook_batch;
    char ev_redis[CFG_STR_MAX];
    char ev_redis_stream[CFG_STR_MAX];
    unsigned ev_redis_maxlen;
    char dead_letter[CFG_STR_MAX];
    char autoscaler_webhook[CFG_STR_MAX];
    char autoscaler_secret[CFG_STR_MAX];
    char notify_webhook[CFG_STR_MAX];
    char notify_secret[CFG_STR_MAX];
    int reuse_revokes_all; /* bool: token reuse revokes every session of the user */
    unsigned nhooks;       /* [webhook.NAME] sections */
    struct cfg_hook hooks[CFG_HOOKS_MAX];
    /* [admin] */
    char admin_listen[CFG_STR_MAX];
    char admin_token[CFG_STR_MAX];
    /* [log] */
    int log_level;
    char log_file[CFG_STR_MAX];
    char access_log[CFG_STR_MAX];
};

/* Error detail for the user: where and what. */
struct cfg_error {
    char where[CFG_STR_MAX + 32]; /* "file.ini:12", "FLOODGATE_LISTEN" or "--listen" */
    char what[512];
};

/* Fills `c` with the defaults. */
void cfg_defaults(struct cfg *c);

/* Applies an INI file. ERR_INVAL (with `e` set, line number included) or ERR_IO. */
int cfg_load_file(struct cfg *c, const char *path, struct cfg_error *e);
/* Applies FLOODGATE_* variables from `envp` (NULL-terminated "K=V" list). */
int cfg_load_env(struct cfg *c, const char *const *envp, struct cfg_error *e);
/* For check-config: as cfg_load_file and cfg_load_env, but reading on past an error; each
 * one goes to `each`, a file's in file order, each naming its line ("file.ini:12") or its
 * variable. Return how many there were (0: all applied). */
typedef void (*cfg_error_cb)(const struct cfg_error *e, void *arg);
int cfg_check_file(struct cfg *c, const char *path, cfg_error_cb each, void *arg);
int cfg_check_env(struct cfg *c, const char *const *envp, cfg_error_cb each, void *arg);
/* Applies one command-line flag `--name` with `value`. ERR_NOTFOUND if no key has that flag
 * (so the caller can try its own flags), ERR_INVAL if the value is bad. */
int cfg_set_flag(struct cfg *c, const char *flag, const char *value, struct cfg_error *e);
/* 1 if `flag` (--name) names a boolean setting: given alone, it means true. */
int cfg_flag_is_bool(const char *flag);
/* What a boolean setting's value says: 1 (true yes on 1), 0 (false no off 0), -1 neither. */
int cfg_bool_word(const char *s);
/* Checks cross-key constraints after all sources are applied. */
int cfg_validate(const struct cfg *c, struct cfg_error *e);

/* Prints the flags with defaults and help (for --help), or a Markdown table (docs). */
void cfg_print_help(FILE *f);
void cfg_print_markdown(FILE *f);

/* Whether "host:port" names a loopback address (127.0.0.0/8, ::1, localhost): an admin
 * listener anywhere else is reachable from the network. */
bool cfg_is_loopback(const char *hostport);

/* Splits "host:port" or "[v6]:port". ERR_INVAL on a bad form. host gets at most hostcap-1. */
int cfg_split_hostport(const char *s, char *host, size_t hostcap, unsigned *port);

#endif
