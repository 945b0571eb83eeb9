/* The growing string buffer and its JSON string literals. */
#include <string.h>

#include "helpers.h"
#include "node/util.h"

/* Returns the JSON literal of s in a buffer that the caller frees. */
static util_sbuf json_of(const char *s)
{
    util_sbuf b = {0};

    assert_int_equal(util_sbuf_json_string(&b, s), 0);
    assert_non_null(b.data);
    assert_int_equal(strlen(b.data), b.len);
    return b;
}

static void expect_json(const char *s, const char *expected)
{
    util_sbuf b = json_of(s);

    assert_string_equal(b.data, expected);
    util_sbuf_free(&b);
}

static void sbuf_json_plain(void **state)
{
    expect_json("swarm-worker", "\"swarm-worker\"");
}

static void sbuf_json_empty(void **state)
{
    expect_json("", "\"\"");
}

static void sbuf_json_null(void **state)
{
    expect_json(NULL, "\"\"");
}

static void sbuf_json_quote(void **state)
{
    expect_json("say \"hi\"", "\"say \\\"hi\\\"\"");
}

static void sbuf_json_backslash(void **state)
{
    expect_json("C:\\dir\\", "\"C:\\\\dir\\\\\"");
}

static void sbuf_json_control(void **state)
{
    expect_json("a\nb", "\"a\\u000ab\"");
    expect_json("\t\r", "\"\\u0009\\u000d\"");
    expect_json("\x01\x1f", "\"\\u0001\\u001f\"");
}

static void sbuf_json_delete_kept(void **state)
{
    /* JSON escapes only code points below U+0020, so DEL passes. */
    expect_json("\x7f", "\"\x7f\"");
}

static void sbuf_json_utf8(void **state)
{
    /* Two, three and four byte UTF-8 sequences pass unchanged. */
    const char *text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3";
    util_sbuf b = json_of(text);

    assert_int_equal(b.len, strlen(text) + 2);
    assert_int_equal(b.data[0], '"');
    assert_memory_equal(b.data + 1, text, strlen(text));
    assert_int_equal(b.data[b.len - 1], '"');
    util_sbuf_free(&b);
}

static void sbuf_json_appends(void **state)
{
    util_sbuf b = {0};

    assert_int_equal(util_sbuf_printf(&b, "{\"id\":"), 0);
    assert_int_equal(util_sbuf_json_string(&b, "n\"1"), 0);
    assert_int_equal(util_sbuf_printf(&b, ",\"n\":%d}", 3), 0);
    assert_string_equal(b.data, "{\"id\":\"n\\\"1\",\"n\":3}");
    assert_int_equal(b.len, strlen(b.data));
    util_sbuf_free(&b);
}

static void sbuf_printf_grows(void **state)
{
    util_sbuf b = {0};
    char chunk[101];

    /* 100 appends of 100 bytes cross several doublings of the buffer. */
    memset(chunk, 'x', 100);
    chunk[100] = '\0';
    for (int i = 0; i < 100; i++) {
        chunk[0] = (char)('a' + i % 26);
        assert_int_equal(util_sbuf_printf(&b, "%s", chunk), 0);
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen(b.data), 10000);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(b.data[i * 100], 'a' + i % 26);
        assert_int_equal(b.data[i * 100 + 99], 'x');
    }
    util_sbuf_free(&b);
}

static void sbuf_free_resets(void **state)
{
    util_sbuf b = {0};

    assert_int_equal(util_sbuf_printf(&b, "text"), 0);
    util_sbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* A freed buffer is empty and can be used again. */
    assert_int_equal(util_sbuf_printf(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    util_sbuf_free(&b);
}

int run_sbuf_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sbuf_json_plain),
        cmocka_unit_test(sbuf_json_empty),
        cmocka_unit_test(sbuf_json_null),
        cmocka_unit_test(sbuf_json_quote),
        cmocka_unit_test(sbuf_json_backslash),
        cmocka_unit_test(sbuf_json_control),
        cmocka_unit_test(sbuf_json_delete_kept),
        cmocka_unit_test(sbuf_json_utf8),
        cmocka_unit_test(sbuf_json_appends),
        cmocka_unit_test(sbuf_printf_grows),
        cmocka_unit_test(sbuf_free_resets),
    };

    return cmocka_run_group_tests_name("sbuf", tests, NULL, NULL);
}
