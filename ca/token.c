/* Join tokens: "SWMTKN-1-" + 50-digit base36 SHA-256 of the trust bundle +
 * "-" + 25-digit base36 random 128-bit secret. */
#include <ca/ca.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define TOKEN_PREFIX     "SWMTKN-1-"
#define TOKEN_PREFIX_LEN (sizeof TOKEN_PREFIX - 1)
#define DIGEST_OFFSET    TOKEN_PREFIX_LEN
#define SEPARATOR_OFFSET (DIGEST_OFFSET + CA_DIGEST_LEN)
#define SECRET_OFFSET    (SEPARATOR_OFFSET + 1)
#define DIGEST_BYTES     32
#define SECRET_BYTES     16

_Static_assert(SECRET_OFFSET + CA_SECRET_LEN == CA_TOKEN_LEN,
               "token layout must add up to CA_TOKEN_LEN");

int ca_token_generate(const char *bundle_pem, size_t bundle_len,
                      char token[CA_TOKEN_LEN + 1], char *errmsg)
{
    unsigned char secret_bytes[SECRET_BYTES];
    char digest[CA_DIGEST_LEN + 1];
    char secret[CA_SECRET_LEN + 1];

    if (bundle_pem == NULL || bundle_len == 0) {
        return ca_fail(errmsg, CA_EINVALID,
                       "trust bundle is empty; a join token must pin at least one root");
    }

    ca_digest_base36(bundle_pem, bundle_len, digest);
    if (digest[0] == '\0') {
        return ca_fail(errmsg, CA_ECRYPTO,
                       "computing the SHA-256 of the trust bundle failed");
    }

    if (RAND_bytes(secret_bytes, sizeof secret_bytes) != 1) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "generating the token secret failed");
    }
    ca_base36_encode(secret_bytes, sizeof secret_bytes, secret, CA_SECRET_LEN);
    OPENSSL_cleanse(secret_bytes, sizeof secret_bytes);

    snprintf(token, CA_TOKEN_LEN + 1, "%s%s-%s", TOKEN_PREFIX, digest, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

/* Returns the offset of the first character outside 0-9a-z, or len. */
static size_t find_bad_digit(const char *text, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) {
            break;
        }
    }
    return i;
}

static int check_shape(const char *token, char *errmsg)
{
    size_t len;
    size_t bad;

    if (strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token does not start with " TOKEN_PREFIX
                       "; pass the whole token as the manager printed it");
    }

    len = strnlen(token, CA_TOKEN_LEN + 1);
    if (len > CA_TOKEN_LEN) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token is longer than %d characters; check for extra text "
                       "or whitespace around it",
                       CA_TOKEN_LEN);
    }
    if (len < CA_TOKEN_LEN) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token has %zu characters but must have %d; it was cut short",
                       len, CA_TOKEN_LEN);
    }

    if (token[SEPARATOR_OFFSET] != '-') {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token has no '-' between digest and secret at character %zu",
                       SEPARATOR_OFFSET + 1);
    }

    bad = find_bad_digit(token + DIGEST_OFFSET, CA_DIGEST_LEN);
    if (bad < CA_DIGEST_LEN) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token digest has a character outside 0-9 and a-z at "
                       "character %zu of the token",
                       DIGEST_OFFSET + bad + 1);
    }

    /* The message gives the position only: the secret stays out of it. */
    bad = find_bad_digit(token + SECRET_OFFSET, CA_SECRET_LEN);
    if (bad < CA_SECRET_LEN) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token secret has a character outside 0-9 and a-z at "
                       "character %zu of the token",
                       SECRET_OFFSET + bad + 1);
    }
    return 0;
}

/* 36^50 exceeds 2^256 and 36^25 exceeds 2^128, so a string of valid digits
 * can still name a value that no digest or secret has. */
static int check_ranges(const char *token, char *errmsg)
{
    unsigned char digest_bytes[DIGEST_BYTES];
    unsigned char secret_bytes[SECRET_BYTES];
    int rv;

    if (ca_base36_decode(token + DIGEST_OFFSET, CA_DIGEST_LEN, digest_bytes,
                         sizeof digest_bytes) != 0) {
        return ca_fail(errmsg, CA_ETOKEN,
                       "join token digest %.*s is larger than 256 bits, so it cannot "
                       "be a SHA-256 digest",
                       CA_DIGEST_LEN, token + DIGEST_OFFSET);
    }

    rv = ca_base36_decode(token + SECRET_OFFSET, CA_SECRET_LEN, secret_bytes,
                          sizeof secret_bytes);
    OPENSSL_cleanse(secret_bytes, sizeof secret_bytes);
    if (rv != 0) {
        return ca_fail(
            errmsg, CA_ETOKEN,
            "join token secret is larger than 128 bits; the token was altered");
    }
    return 0;
}

int ca_token_parse(const char *token, char digest[CA_DIGEST_LEN + 1],
                   char secret[CA_SECRET_LEN + 1], char *errmsg)
{
    int rv;

    if (token == NULL) {
        return ca_fail(errmsg, CA_ETOKEN, "join token is missing");
    }

    rv = check_shape(token, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = check_ranges(token, errmsg);
    if (rv != 0) {
        return rv;
    }

    if (digest != NULL) {
        memcpy(digest, token + DIGEST_OFFSET, CA_DIGEST_LEN);
        digest[CA_DIGEST_LEN] = '\0';
    }
    if (secret != NULL) {
        memcpy(secret, token + SECRET_OFFSET, CA_SECRET_LEN);
        secret[CA_SECRET_LEN] = '\0';
    }
    return 0;
}

int ca_token_equal(const char *a, const char *b)
{
    size_t len;

    if (a == NULL || b == NULL) {
        return 0;
    }

    /* Token lengths are public, so only the contents are compared in
     * constant time. */
    len = strlen(a);
    if (strlen(b) != len) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, len) == 0;
}
