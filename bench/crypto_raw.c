/* SPDX-License-Identifier: MIT */
/*
 * The cryptography floor of the token benchmarks: what one Ed25519 signature and one
 * verification cost on this core with libsodium alone (no HTTP, no claims, no encoding),
 * for a message of a JWT's signing input's length. Each is run for SECONDS and timed by
 * the thread's CPU clock, so the figure is CPU-µs per operation as the servers' are.
 *
 * Usage: crypto_raw SECONDS [MSG_BYTES]     (pin it: taskset -c 0 ...)
 * Prints: "ed25519 sign: X us/op (N ops)" and "ed25519 verify: Y us/op (N ops)".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[crypto_sign_BYTES], msg[4096];

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: crypto_raw SECONDS [MSG_BYTES]\n");
        return 2;
    }
    double seconds = atof(argv[1]) / 2;
    size_t len = argc == 3 ? (size_t)atoi(argv[2]) : 220;
    if (sodium_init() < 0 || len > sizeof(msg) || !(seconds > 0))
        return 2;
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, len);

    unsigned long n = 0;
    double t0 = cpu_s(), t;
    do {
        for (int i = 0; i < 64; i++, n++) {
            msg[n % len] ^= (unsigned char)n; /* (a different message each time) */
            crypto_sign_ed25519_detached(sig, NULL, msg, len, sk);
        }
    } while ((t = cpu_s() - t0) < seconds);
    printf("ed25519 sign: %.2f us/op (%lu ops)\n", t * 1e6 / (double)n, n);

    crypto_sign_ed25519_detached(sig, NULL, msg, len, sk);
    unsigned long m = 0, bad = 0;
    t0 = cpu_s();
    do {
        for (int i = 0; i < 64; i++, m++)
            bad += crypto_sign_ed25519_verify_detached(sig, msg, len, pk) != 0;
    } while ((t = cpu_s() - t0) < seconds);
    printf("ed25519 verify: %.2f us/op (%lu ops)\n", t * 1e6 / (double)m, m);
    return bad ? 1 : 0;
}
