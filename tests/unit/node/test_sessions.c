/* The hash table of worker sessions, keyed by node id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "node/daemon.h"

#define MANY 10000

/* A 25-character id that differs from its neighbours only near the end,
 * as base36 ids with a common prefix do. */
static void make_id(char id[26], int i)
{
    snprintf(id, 26, "0000000000000000000%06d", i);
}

static void sessions_empty_find(void **state)
{
    session_table t = {0};

    assert_null(sessions_find(&t, "0000000000000000000000001"));
    sessions_free(&t);
}

static void sessions_insert_one(void **state)
{
    session_table t = {0};
    session *s = sessions_upsert(&t, "0000000000000000000000001");

    assert_non_null(s);
    assert_string_equal(s->node_id, "0000000000000000000000001");
    assert_int_equal(s->ready, 0);
    assert_int_equal(s->last_seen_ms, 0);
    assert_string_equal(s->hostname, "");
    assert_int_equal(t.count, 1);
    assert_ptr_equal(sessions_find(&t, "0000000000000000000000001"), s);
    sessions_free(&t);
}

static void sessions_insert_many(void **state)
{
    session_table t = {0};
    char id[26];

    for (int i = 0; i < MANY; i++) {
        session *s;

        make_id(id, i);
        s = sessions_upsert(&t, id);
        assert_non_null(s);
        snprintf(s->hostname, sizeof(s->hostname), "host-%d", i);
        s->last_seen_ms = (uint64_t)i + 1;
    }
    assert_int_equal(t.count, MANY);

    /* Every entry survived the growth of the table with its fields. */
    for (int i = 0; i < MANY; i++) {
        char host[32];
        session *s;

        make_id(id, i);
        snprintf(host, sizeof(host), "host-%d", i);
        s = sessions_find(&t, id);
        if (s == NULL) {
            print_error("id %s not found after %d inserts\n", id, MANY);
        }
        assert_non_null(s);
        assert_string_equal(s->node_id, id);
        assert_string_equal(s->hostname, host);
        assert_int_equal(s->last_seen_ms, (uint64_t)i + 1);
    }
    sessions_free(&t);
}

static void sessions_find_absent(void **state)
{
    session_table t = {0};
    char id[26];

    for (int i = 0; i < MANY; i++) {
        make_id(id, i);
        assert_non_null(sessions_upsert(&t, id));
    }
    for (int i = MANY; i < 2 * MANY; i++) {
        make_id(id, i);
        assert_null(sessions_find(&t, id));
    }
    assert_null(sessions_find(&t, "zzzzzzzzzzzzzzzzzzzzzzzzz"));
    sessions_free(&t);
}

static void sessions_upsert_existing(void **state)
{
    session_table t = {0};
    char id[26];
    session *first;
    session *again;

    for (int i = 0; i < 100; i++) {
        make_id(id, i);
        assert_non_null(sessions_upsert(&t, id));
    }
    make_id(id, 42);
    first = sessions_find(&t, id);
    assert_non_null(first);
    first->ready = 1;
    first->last_seen_ms = 777;

    again = sessions_upsert(&t, id);
    assert_ptr_equal(again, first);
    assert_int_equal(t.count, 100);

    /* An upsert of a known id leaves its fields alone. */
    assert_int_equal(again->ready, 1);
    assert_int_equal(again->last_seen_ms, 777);
    sessions_free(&t);
}

static void sessions_load_factor(void **state)
{
    session_table t = {0};
    char id[26];

    /* The table stays at most half full, so a probe always ends at an
     * empty slot, and its capacity stays a power of two. */
    for (int i = 0; i < MANY; i++) {
        make_id(id, i);
        assert_non_null(sessions_upsert(&t, id));
        assert_true(t.count * 2 <= t.cap);
    }
    assert_int_equal(t.cap & (t.cap - 1), 0);
    sessions_free(&t);
}

static void sessions_free_resets(void **state)
{
    session_table t = {0};

    assert_non_null(sessions_upsert(&t, "0000000000000000000000001"));
    sessions_free(&t);
    assert_null(t.slots);
    assert_int_equal(t.cap, 0);
    assert_int_equal(t.count, 0);
    assert_null(sessions_find(&t, "0000000000000000000000001"));
}

int run_sessions_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sessions_empty_find),
        cmocka_unit_test(sessions_insert_one),
        cmocka_unit_test(sessions_insert_many),
        cmocka_unit_test(sessions_find_absent),
        cmocka_unit_test(sessions_upsert_existing),
        cmocka_unit_test(sessions_load_factor),
        cmocka_unit_test(sessions_free_resets),
    };

    return cmocka_run_group_tests_name("sessions", tests, NULL, NULL);
}
