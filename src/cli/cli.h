/* SPDX-License-Identifier: MIT */
/*
 * The command line's admin commands (`floodgate [flags] client|key|user|event ...`), working
 * directly on the store, and the one way both they and the server open it. Main thread.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cfg;
struct store;

/* floodgate --help. */
void cli_usage(FILE *f);
/* Fills c from the defaults, the file, the environment and the flags of argv (up to the
 * command word, whose index goes to *cmd, 0 if none) and validates it. 0, or the exit code
 * (2) after saying why on stderr. */
int cli_config(struct cfg *c, int argc, char **argv, int *cmd);
/* floodgate check-config FILE: 0 if the file is valid (says OK), 1 if not (says why). */
int cli_check_config(struct cfg *c, const char *path);

/* Whether argv word `word` starts an admin command. */
int cli_is_command(const char *word);
/* Runs the admin command in argv[0..argc). Returns the exit code. */
int cli_main(const struct cfg *c, int argc, char **argv);

/* Opens the store the configuration names (LMDB in data_dir, or Redis) and loads the server
 * key into key (CR_HASH_KEY_LEN bytes). With Redis, every instance must hold the same key:
 * its fingerprint is pinned in Redis and a different one refuses to start. On an error, err
 * says why and nothing stays open. */
int cli_store_open(const struct cfg *c, struct store **st, uint8_t *key, char *err, size_t cap);

/* tok_keys_ensure, waiting out a store that cannot answer yet (a Redis Cluster whose slots
 * are not all served) for the same 10 s as cli_store_open's: ERR_OK, ERR_DENIED (a key in
 * the clear), or the last error. */
int cli_keys_ensure(struct store *st);

#endif
