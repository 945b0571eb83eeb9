/* Join tokens: generation, parsing and constant-time comparison. */
#include "helpers.h"

#include <string.h>

static const char bundle[] = "-----BEGIN CERTIFICATE-----\nnot parsed here\n"
                             "-----END CERTIFICATE-----\n";

/* A well-formed token with the given digest and secret parts. */
static void make_token(const char *digest, const char *secret, char *out)
{
    assert_int_equal(strlen(digest), CA_DIGEST_LEN);
    assert_int_equal(strlen(secret), CA_SECRET_LEN);
    strcpy(out, "SWMTKN-1-");
    strcat(out, digest);
    strcat(out, "-");
    strcat(out, secret);
}

static void token_round_trip(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char token[CA_TOKEN_LEN + 1];
    char expected_digest[CA_DIGEST_LEN + 1];
    char digest[CA_DIGEST_LEN + 1];
    char secret[CA_SECRET_LEN + 1];

    assert_int_equal(ca_token_generate(bundle, strlen(bundle), token, errmsg), 0);
    assert_int_equal(strlen(token), CA_TOKEN_LEN);
    assert_memory_equal(token, "SWMTKN-1-", 9);

    assert_int_equal(ca_token_parse(token, digest, secret, errmsg), 0);
    ca_digest_base36(bundle, strlen(bundle), expected_digest);
    assert_string_equal(digest, expected_digest);
    assert_memory_equal(token + 60, secret, CA_SECRET_LEN);
    assert_int_equal(strlen(secret), CA_SECRET_LEN);
}

static void token_fresh_secret(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char first[CA_TOKEN_LEN + 1];
    char second[CA_TOKEN_LEN + 1];

    assert_int_equal(ca_token_generate(bundle, strlen(bundle), first, errmsg), 0);
    assert_int_equal(ca_token_generate(bundle, strlen(bundle), second, errmsg), 0);
    assert_memory_equal(first, second, 59);
    assert_string_not_equal(first, second);
}

static void token_generate_empty_bundle(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char token[CA_TOKEN_LEN + 1];

    assert_int_equal(ca_token_generate(bundle, 0, token, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "trust bundle is empty"));
}

/* The largest digest (2^256 - 1) and secret (2^128 - 1) still parse. */
static void token_parse_max_values(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char token[CA_TOKEN_LEN + 1];

    make_token("6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof",
               "f5lxx1zz5pnorynqglhzmsp33", token);
    assert_int_equal(ca_token_parse(token, NULL, NULL, errmsg), 0);
}

struct reject_case {
    const char *name;
    int offset; /* character to overwrite, or -1 */
    char value; /* its new value */
    int length; /* length to cut or extend to, or -1 */
    const char *message;
};

static void token_parse_rejects(void **state)
{
    static const struct reject_case cases[] = {
        {"wrong prefix", 7, '2', -1, "does not start with SWMTKN-1-"},
        {"lowercase prefix", 0, 's', -1, "does not start with SWMTKN-1-"},
        {"short", -1, 0, CA_TOKEN_LEN - 1, "has 84 characters"},
        {"only prefix", -1, 0, 9, "has 9 characters"},
        {"long", -1, 0, CA_TOKEN_LEN + 1, "longer than 85"},
        {"missing dash", 59, 'a', -1, "no '-' between digest and secret"},
        {"bad char in digest", 20, '!', -1, "digest has a character outside"},
        {"uppercase in digest", 9, 'A', -1, "digest has a character outside"},
        {"uppercase in secret", 84, 'Z', -1, "secret has a character outside"},
        {"dash in secret", 70, '-', -1, "secret has a character outside"},
    };
    char errmsg[CA_ERRMSG_SIZE];
    char good[CA_TOKEN_LEN + 1];
    char token[CA_TOKEN_LEN + 2];
    size_t i;

    assert_int_equal(ca_token_generate(bundle, strlen(bundle), good, errmsg), 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct reject_case *c = &cases[i];
        print_message("case: %s\n", c->name);
        strcpy(token, good);
        if (c->offset >= 0) {
            token[c->offset] = c->value;
        }
        if (c->length > CA_TOKEN_LEN) {
            strcat(token, "0");
        } else if (c->length >= 0) {
            token[c->length] = '\0';
        }

        errmsg[0] = '\0';
        assert_int_equal(ca_token_parse(token, NULL, NULL, errmsg), CA_ETOKEN);
        assert_non_null(strstr(errmsg, c->message));
        /* No message may repeat the secret. */
        assert_null(strstr(errmsg, good + 60));
    }
}

static void token_parse_null(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";

    assert_int_equal(ca_token_parse(NULL, NULL, NULL, errmsg), CA_ETOKEN);
    assert_non_null(strstr(errmsg, "missing"));
}

/* 2^256 fits in 50 base36 digits and 2^128 in 25, but neither is a
 * SHA-256 digest or a 128-bit secret. */
static void token_parse_over_range(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char token[CA_TOKEN_LEN + 1];

    make_token("6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtog",
               "0000000000000000000000001", token);
    assert_int_equal(ca_token_parse(token, NULL, NULL, errmsg), CA_ETOKEN);
    assert_non_null(strstr(errmsg, "digest"));
    assert_non_null(strstr(errmsg, "256 bits"));

    make_token("00000000000000000000000000000000000000000000000001",
               "f5lxx1zz5pnorynqglhzmsp34", token);
    assert_int_equal(ca_token_parse(token, NULL, NULL, errmsg), CA_ETOKEN);
    assert_non_null(strstr(errmsg, "128 bits"));
    assert_null(strstr(errmsg, "f5lxx1zz5pnorynqglhzmsp34"));

    make_token("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
               "0000000000000000000000001", token);
    assert_int_equal(ca_token_parse(token, NULL, NULL, errmsg), CA_ETOKEN);
}

static void token_equal_cases(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char token[CA_TOKEN_LEN + 1];
    char other[CA_TOKEN_LEN + 1];

    assert_int_equal(ca_token_generate(bundle, strlen(bundle), token, errmsg), 0);
    strcpy(other, token);
    assert_int_equal(ca_token_equal(token, other), 1);

    other[CA_TOKEN_LEN - 1] = other[CA_TOKEN_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(ca_token_equal(token, other), 0);

    other[0] = 'X';
    other[CA_TOKEN_LEN - 1] = token[CA_TOKEN_LEN - 1];
    assert_int_equal(ca_token_equal(token, other), 0);

    strcpy(other, token);
    other[CA_TOKEN_LEN - 1] = '\0';
    assert_int_equal(ca_token_equal(token, other), 0);
    assert_int_equal(ca_token_equal(other, token), 0);

    assert_int_equal(ca_token_equal(token, NULL), 0);
    assert_int_equal(ca_token_equal(NULL, token), 0);
    assert_int_equal(ca_token_equal(NULL, NULL), 0);
    assert_int_equal(ca_token_equal("", ""), 1);
}

int run_token_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_round_trip),
        cmocka_unit_test(token_fresh_secret),
        cmocka_unit_test(token_generate_empty_bundle),
        cmocka_unit_test(token_parse_max_values),
        cmocka_unit_test(token_parse_rejects),
        cmocka_unit_test(token_parse_null),
        cmocka_unit_test(token_parse_over_range),
        cmocka_unit_test(token_equal_cases),
    };
    return cmocka_run_group_tests_name("ca_token", tests, NULL, NULL);
}
