/* Go-style durations: parsing, rejection messages and formatting. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "node/util.h"

static int64_t parse_ok(const char *text)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int64_t seconds = -1;
    int rv = util_duration_parse(text, &seconds, errmsg);

    if (rv != 0) {
        print_error("util_duration_parse(\"%s\"): %s\n", text, errmsg);
    }
    assert_int_equal(rv, 0);
    return seconds;
}

/* Checks that text is rejected, that the output is left alone and that
 * the message quotes the text. */
static void expect_rejected(const char *text)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char quoted[64];
    int64_t seconds = 12345;

    assert_int_equal(util_duration_parse(text, &seconds, errmsg), -1);
    assert_int_equal(seconds, 12345);
    snprintf(quoted, sizeof(quoted), "\"%s\"", text);
    if (strstr(errmsg, quoted) == NULL) {
        print_error("message for \"%s\" does not quote it: %s\n", text, errmsg);
    }
    assert_non_null(strstr(errmsg, quoted));
}

static void duration_minutes(void **state)
{
    assert_int_equal(parse_ok("90m"), 5400);
}

static void duration_hours(void **state)
{
    assert_int_equal(parse_ok("2h"), 7200);
    assert_int_equal(parse_ok("2160h"), 7776000);
}

static void duration_compound(void **state)
{
    assert_int_equal(parse_ok("1h30m"), 5400);
    assert_int_equal(parse_ok("1h30m10s"), 5410);
    assert_int_equal(parse_ok("45s"), 45);
}

static void duration_zero(void **state)
{
    assert_int_equal(parse_ok("0s"), 0);
}

static void duration_empty(void **state)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int64_t seconds = 12345;

    assert_int_equal(util_duration_parse("", &seconds, errmsg), -1);
    assert_int_equal(seconds, 12345);
    assert_non_null(strstr(errmsg, "empty"));
}

static void duration_unit_alone(void **state)
{
    expect_rejected("h");
}

static void duration_unknown_unit(void **state)
{
    expect_rejected("5x");
    expect_rejected("5d");
}

static void duration_negative(void **state)
{
    expect_rejected("-1h");
}

static void duration_fraction(void **state)
{
    expect_rejected("1.5h");
}

static void duration_no_unit(void **state)
{
    expect_rejected("10");
    expect_rejected("1h30");
}

static void duration_space(void **state)
{
    expect_rejected(" 1h");
    expect_rejected("1h ");
}

static void duration_overflow(void **state)
{
    /* The number alone does not fit in 64 bits. */
    expect_rejected("99999999999999999999h");

    /* The number fits but not once it is multiplied by 3600. */
    expect_rejected("2562047788015216h");

    /* Each part fits but their sum does not. */
    expect_rejected("2562047788015215h3600s");
}

static void duration_largest(void **state)
{
    /* The maximum number of hours whose seconds fit in 64 bits. */
    assert_int_equal(parse_ok("2562047788015215h"), INT64_C(2562047788015215) * 3600);
}

static void duration_format_values(void **state)
{
    char out[64];

    util_duration_format(7776000, out, sizeof(out));
    assert_string_equal(out, "2160h0m0s");
    util_duration_format(5410, out, sizeof(out));
    assert_string_equal(out, "1h30m10s");
    util_duration_format(3600, out, sizeof(out));
    assert_string_equal(out, "1h0m0s");
}

static void duration_format_round_trip(void **state)
{
    static const int64_t values[] = {0, 1, 59, 60, 61, 3599, 3600, 5400, 5410, 86400,
                                     7776000, 631152000};
    char out[64];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        util_duration_format(values[i], out, sizeof(out));
        if (parse_ok(out) != values[i]) {
            print_error("%lld formats as \"%s\"\n", (long long)values[i], out);
        }
        assert_int_equal(parse_ok(out), values[i]);
    }
}

int run_duration_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duration_minutes),
        cmocka_unit_test(duration_hours),
        cmocka_unit_test(duration_compound),
        cmocka_unit_test(duration_zero),
        cmocka_unit_test(duration_empty),
        cmocka_unit_test(duration_unit_alone),
        cmocka_unit_test(duration_unknown_unit),
        cmocka_unit_test(duration_negative),
        cmocka_unit_test(duration_fraction),
        cmocka_unit_test(duration_no_unit),
        cmocka_unit_test(duration_space),
        cmocka_unit_test(duration_overflow),
        cmocka_unit_test(duration_largest),
        cmocka_unit_test(duration_format_values),
        cmocka_unit_test(duration_format_round_trip),
    };

    return cmocka_run_group_tests_name("duration", tests, NULL, NULL);
}
