/* Base36 text for ids, digests and token secrets: a big-endian number in
 * the digits 0-9a-z, left-padded with '0' to a fixed width. */
#include <ca/ca.h>

#include "internal.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define BASE36_MAX_BYTES 64
#define ID_BYTES         16

static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

void ca_base36_encode(const unsigned char *bytes, size_t n, char *out, size_t width)
{
    unsigned char work[BASE36_MAX_BYTES];
    size_t pos;
    size_t i;

    assert(n <= BASE36_MAX_BYTES);
    memcpy(work, bytes, n);

    /* Each pass divides the whole number by 36 in place, most significant
     * byte first, and the remainder is the next digit from the right. */
    for (pos = width; pos > 0; pos--) {
        unsigned remainder = 0;
        for (i = 0; i < n; i++) {
            unsigned current = remainder * 256 + work[i];
            work[i] = (unsigned char)(current / 36);
            remainder = current % 36;
        }
        out[pos - 1] = digits[remainder];
    }
    out[width] = '\0';

    /* A non-zero quotient left over means width is too small for n bytes,
     * which is a bug in the caller. */
    for (i = 0; i < n; i++) {
        assert(work[i] == 0);
    }
    OPENSSL_cleanse(work, sizeof work);
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 10;
    }
    return -1;
}

int ca_base36_decode(const char *text, size_t len, unsigned char *bytes, size_t n)
{
    size_t i;
    size_t j;

    memset(bytes, 0, n);
    for (i = 0; i < len; i++) {
        int value = digit_value(text[i]);
        unsigned carry;
        if (value < 0) {
            return -1;
        }

        /* bytes = bytes * 36 + value, least significant byte first. */
        carry = (unsigned)value;
        for (j = n; j > 0; j--) {
            unsigned current = bytes[j - 1] * 36u + carry;
            bytes[j - 1] = (unsigned char)(current & 0xff);
            carry = current >> 8;
        }
        if (carry != 0) {
            return -1;
        }
    }
    return 0;
}

int ca_random_id(char id[CA_ID_LEN + 1], char *errmsg)
{
    unsigned char bytes[ID_BYTES];

    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "generating a random id failed");
    }
    ca_base36_encode(bytes, sizeof bytes, id, CA_ID_LEN);
    return 0;
}

void ca_digest_base36(const void *data, size_t len, char out[CA_DIGEST_LEN + 1])
{
    unsigned char hash[SHA256_DIGEST_LENGTH];

    /* SHA256() can fail when OpenSSL cannot fetch the algorithm or allocate
     * memory. The empty string written then matches no token digest, so a
     * comparison against it fails closed. */
    if (SHA256(data, len, hash) == NULL) {
        ERR_clear_error();
        out[0] = '\0';
        return;
    }
    ca_base36_encode(hash, sizeof hash, out, CA_DIGEST_LEN);
}
