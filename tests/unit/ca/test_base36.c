/* Base36 encoding and decoding, ids, digests and error strings. */
#include "helpers.h"

#include <ca/internal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/sha.h>

static const char base36_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* An encoder independent of ca_base36_encode: BN_div_word on a BIGNUM. */
static void bn_base36(const unsigned char *bytes, size_t n, char *out, size_t width)
{
    BIGNUM *value = BN_bin2bn(bytes, (int)n, NULL);
    size_t pos = width;

    assert_non_null(value);
    out[width] = '\0';
    while (pos > 0) {
        BN_ULONG digit = BN_div_word(value, 36);
        assert_true(digit < 36);
        out[--pos] = base36_digits[digit];
    }
    assert_true(BN_is_zero(value));
    BN_free(value);
}

static int all_base36(const char *text)
{
    return strspn(text, base36_digits) == strlen(text);
}

static void base36_all_zero(void **state)
{
    unsigned char bytes[32] = {0};
    char out[CA_DIGEST_LEN + 1];

    ca_base36_encode(bytes, 16, out, CA_ID_LEN);
    assert_string_equal(out, "0000000000000000000000000");
    ca_base36_encode(bytes, 32, out, CA_DIGEST_LEN);
    assert_string_equal(out, "00000000000000000000000000000000000000000000000000");
}

/* Expected values computed with Python: the base36 digits of 2^128 - 1 and
 * 2^256 - 1. */
static void base36_all_ones(void **state)
{
    unsigned char bytes[32];
    char out[CA_DIGEST_LEN + 1];

    memset(bytes, 0xff, sizeof bytes);
    ca_base36_encode(bytes, 16, out, CA_ID_LEN);
    assert_string_equal(out, "f5lxx1zz5pnorynqglhzmsp33");
    ca_base36_encode(bytes, 32, out, CA_DIGEST_LEN);
    assert_string_equal(out, "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof");
}

static void base36_small_values_padded(void **state)
{
    unsigned char bytes[16] = {0};
    char out[CA_ID_LEN + 1];

    bytes[15] = 1;
    ca_base36_encode(bytes, sizeof bytes, out, CA_ID_LEN);
    assert_string_equal(out, "0000000000000000000000001");

    bytes[15] = 35;
    ca_base36_encode(bytes, sizeof bytes, out, CA_ID_LEN);
    assert_string_equal(out, "000000000000000000000000z");

    bytes[15] = 36;
    ca_base36_encode(bytes, sizeof bytes, out, CA_ID_LEN);
    assert_string_equal(out, "0000000000000000000000010");

    bytes[14] = 1;
    bytes[15] = 0;
    ca_base36_encode(bytes, sizeof bytes, out, CA_ID_LEN);
    assert_string_equal(out, "0000000000000000000000074");
}

static unsigned long long next_random(unsigned long long *state)
{
    /* xorshift64: reproducible from the printed seed. */
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void base36_matches_bignum(void **state)
{
    const char *seed_text = getenv("CA_TEST_SEED");
    unsigned long long seed =
        seed_text ? strtoull(seed_text, NULL, 10) : (unsigned long long)time(NULL);
    unsigned long long random_state = seed | 1;
    unsigned char bytes[32];
    char expected[CA_DIGEST_LEN + 1];
    char actual[CA_DIGEST_LEN + 1];
    unsigned char decoded[32];
    int round;
    size_t i;

    print_message("base36 seed %llu (set CA_TEST_SEED to replay)\n", seed);
    for (round = 0; round < 500; round++) {
        for (i = 0; i < sizeof bytes; i++) {
            bytes[i] = (unsigned char)next_random(&random_state);
        }
        /* Leading zero bytes exercise the padding. */
        memset(bytes, 0, (size_t)(round % 5));

        bn_base36(bytes, sizeof bytes, expected, CA_DIGEST_LEN);
        ca_base36_encode(bytes, sizeof bytes, actual, CA_DIGEST_LEN);
        assert_string_equal(actual, expected);

        assert_int_equal(ca_base36_decode(actual, CA_DIGEST_LEN, decoded, sizeof decoded),
                         0);
        assert_memory_equal(decoded, bytes, sizeof bytes);
    }
}

static void base36_decode_rejects(void **state)
{
    unsigned char bytes[32];

    /* 2^256 and 2^128, one past the largest value of each width. */
    assert_int_equal(
        ca_base36_decode("6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtog", 50, bytes,
                         32),
        -1);
    assert_int_equal(ca_base36_decode("f5lxx1zz5pnorynqglhzmsp34", 25, bytes, 16), -1);
    assert_int_equal(ca_base36_decode("f5lxx1zz5pnorynqglhzmsp33", 25, bytes, 16), 0);
    assert_int_equal(ca_base36_decode("00A", 3, bytes, 16), -1);
    assert_int_equal(ca_base36_decode("0-0", 3, bytes, 16), -1);
}

static void random_id_shape(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char first[CA_ID_LEN + 1];
    char second[CA_ID_LEN + 1];

    assert_int_equal(ca_random_id(first, errmsg), 0);
    assert_int_equal(ca_random_id(second, errmsg), 0);
    assert_int_equal(strlen(first), CA_ID_LEN);
    assert_true(all_base36(first));
    assert_string_not_equal(first, second);
}

/* SHA-256("abc") is ba7816bf...f20015ad. Its base36 form was computed with
 * Python's hashlib and int(), and is checked again through BIGNUM here. */
static void digest_known_input(void **state)
{
    static const char abc_base36[] = "4nb7oofka9ml8nasnokxxc1unhmtpr1wxsuwhpd9km3vt5as31";
    unsigned char hash[SHA256_DIGEST_LENGTH];
    BIGNUM *value = NULL;
    char via_bignum[CA_DIGEST_LEN + 1];
    char digest[CA_DIGEST_LEN + 1];

    ca_digest_base36("abc", 3, digest);
    assert_string_equal(digest, abc_base36);

    assert_true(BN_hex2bn(&value, "ba7816bf8f01cfea414140de5dae2223"
                                  "b00361a396177a9cb410ff61f20015ad") > 0);
    assert_int_equal(BN_bn2binpad(value, hash, sizeof hash), (int)sizeof hash);
    BN_free(value);
    bn_base36(hash, sizeof hash, via_bignum, CA_DIGEST_LEN);
    assert_string_equal(digest, via_bignum);
}

static void digest_empty_input(void **state)
{
    char digest[CA_DIGEST_LEN + 1];

    ca_digest_base36("", 0, digest);
    assert_string_equal(digest, "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p");
}

static void strerror_names_codes(void **state)
{
    const int codes[] = {CA_ENOMEM, CA_ECRYPTO, CA_EINVALID,
                         CA_ETOKEN, CA_EVERIFY, CA_EKEYTYPE};
    size_t i;
    size_t j;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_not_equal(ca_strerror(codes[i]), ca_strerror(-100));
        for (j = 0; j < i; j++) {
            assert_string_not_equal(ca_strerror(codes[i]), ca_strerror(codes[j]));
        }
    }
}

int run_base36_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base36_all_zero),
        cmocka_unit_test(base36_all_ones),
        cmocka_unit_test(base36_small_values_padded),
        cmocka_unit_test(base36_matches_bignum),
        cmocka_unit_test(base36_decode_rejects),
        cmocka_unit_test(random_id_shape),
        cmocka_unit_test(digest_known_input),
        cmocka_unit_test(digest_empty_input),
        cmocka_unit_test(strerror_names_codes),
    };
    return cmocka_run_group_tests_name("ca_base36", tests, NULL, NULL);
}
