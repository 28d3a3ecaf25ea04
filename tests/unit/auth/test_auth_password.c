/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "auth/auth_password.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"

/* Small parameters keep the test fast; the format and logic are what is tested here. */
static const struct auth_pw_params small = {256, 1, 1};
static const struct auth_pw_params other = {512, 1, 1};

TEST(argon2id_roundtrip_and_rehash)
{
    char phc[AUTH_PHC_MAX];
    bool ok, rehash;
    cr_init();
    ASSERT_EQ_INT(auth_pw_hash(&small, "correct horse", 13, phc, sizeof(phc)), 0);
    ASSERT_TRUE(strncmp(phc, "$argon2id$v=19$m=256,t=1,p=1$", 29) == 0);
    ASSERT_EQ_INT(auth_pw_verify(phc, "correct horse", 13, &small, &ok, &rehash), 0);
    ASSERT_TRUE(ok && !rehash);
    ASSERT_EQ_INT(auth_pw_verify(phc, "correct horsE", 13, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok);
    ASSERT_EQ_INT(auth_pw_verify(phc, "correct horse", 13, &other, &ok, &rehash), 0);
    ASSERT_TRUE(ok && rehash); /* parameters changed: rehash at this login */
    char phc2[AUTH_PHC_MAX];
    ASSERT_EQ_INT(auth_pw_hash(&small, "correct horse", 13, phc2, sizeof(phc2)), 0);
    ASSERT_TRUE(strcmp(phc, phc2) != 0); /* fresh salt */
}

TEST(argon2id_reference_vector)
{
    /* Made by the reference implementation's CLI (Debian package argon2):
     * echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e */
    bool ok, rehash;
    const char *ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ"
                      "$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo";
    ASSERT_EQ_INT(auth_pw_verify(ref, "password", 8, &small, &ok, &rehash), 0);
    ASSERT_TRUE(ok && rehash);
    ASSERT_EQ_INT(auth_pw_verify(ref, "passwore", 8, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok);
}

TEST(imported_bcrypt_and_pbkdf2)
{
    bool ok, rehash;
    /* bcrypt test vector (OpenBSD / John the Ripper): "U*U" */
    const char *bc = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    ASSERT_EQ_INT(auth_pw_verify(bc, "U*U", 3, &small, &ok, &rehash), 0);
    ASSERT_TRUE(ok && rehash);
    ASSERT_EQ_INT(auth_pw_verify(bc, "U*V", 3, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok);
    ASSERT_EQ_INT(auth_pw_verify(bc, "U*U\0x", 5, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok); /* a NUL would truncate for bcrypt: refused */
    /* Django and passlib forms, made with Python's hashlib.pbkdf2_hmac */
    const char *dj = "pbkdf2_sha256$1000$saltsalt$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=";
    ASSERT_EQ_INT(auth_pw_verify(dj, "correct horse", 13, &small, &ok, &rehash), 0);
    ASSERT_TRUE(ok && rehash);
    ASSERT_EQ_INT(auth_pw_verify(dj, "correct horsf", 13, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok);
    const char *pl = "$pbkdf2-sha256$1500$MDEyMzQ1Njc4OWFiY2RlZg"
                     "$neInF6a4kbLLgkBvVDNyRSZST2RgSKR6f1YfEJHnd/U";
    ASSERT_EQ_INT(auth_pw_verify(pl, "correct horse", 13, &small, &ok, &rehash), 0);
    ASSERT_TRUE(ok && rehash); /* passlib's alphabet: '.' for '+', '/' as is */
    ASSERT_EQ_INT(auth_pw_verify(pl, "correct horse ", 14, &small, &ok, &rehash), 0);
    ASSERT_TRUE(!ok);
}

TEST(phc_parser_is_strict_and_bounded)
{
    struct auth_phc h;
    const char *good =
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    ASSERT_EQ_INT(auth_phc_parse(good, &h), 0);
    ASSERT_EQ_INT(h.salt_len, 8);
    ASSERT_EQ_INT(h.hash_len, 32);
    const char *bad[] = {
        "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=16$m=256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=0256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=9999999999,t=1,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1000,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1$$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$CTFh",
        "$argon2id$v=19$t=1,m=256,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,x=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,q=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1x$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=64$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$x",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPP!",
        "$argon2id$v=19$m=256,t=1,p=1",
        "$argon2id$v=19",
        "$argon2id$",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth_phc_parse(bad[i], &h) == 0)
            harness_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
    bool ok, rehash;
    ASSERT_EQ_INT(auth_pw_verify("plaintext", "plaintext", 9, &small, &ok, &rehash), ERR_INVAL);
    ASSERT_TRUE(!ok);
    ASSERT_EQ_INT(auth_pw_verify(good, "x", AUTH_PASSWORD_MAX + 1, &small, &ok, &rehash),
                  ERR_INVAL);
}

/* Imported hashes that are malformed are refused (never "no password"), before any work. */
TEST(imported_hashes_malformed)
{
    static char long_one[AUTH_PHC_MAX + 8];
    memset(long_one, 'a', sizeof(long_one) - 1);
    memcpy(long_one, "pbkdf2_sha256$1000$", 19);
    const char *bad[] = {
        "pbkdf2_sha256$999$saltsalt$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=",
        "pbkdf2_sha256$99999999$saltsalt$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=",
        "pbkdf2_sha256$x1000$saltsalt$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=",
        "pbkdf2_sha256$1000$saltsalt",
        "pbkdf2_sha256$1000$$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=",
        "pbkdf2_sha256$1000$saltsalt$qQDPSZa3Ormyy9oK1Pu0ZLLwP2Svzmx3yu8OvDdq/J0=!",
        "pbkdf2_sha256$1000$saltsalt$qQDPSZa3Ormyy9o=",
        "$pbkdf2-sha256$1500$MDEyMzQ1Njc4OWFiY2RlZg$neInF6a4",
        "$pbkdf2-sha256$1500$MDEyMzQ1Njc4OWFiY2RlZg",
        "$pbkdf2-sha256$1500$!!!$neInF6a4kbLLgkBvVDNyRSZST2RgSKR6f1YfEJHnd/U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
        long_one,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool ok = true, rehash;
        if (auth_pw_verify(bad[i], "correct horse", 13, &small, &ok, &rehash) == 0 || ok)
            harness_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
    }
}
