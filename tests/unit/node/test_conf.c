/* node.conf: save and load, and the messages for files it must reject. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "node/conf.h"
#include "node/util.h"

#define NODE_ID "0abcdefghijklmnopqrstuvwx"
#define CLUSTER_ID "1zyxwvutsrqponmlkjihgfedc"

struct conf_fixture {
    char dir[TEMP_DIR_SIZE];
    char path[TEMP_DIR_SIZE + 16]; /* dir/node.conf */
};

static int conf_setup(void **state)
{
    struct conf_fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    make_temp_dir(f->dir);
    snprintf(f->path, sizeof(f->path), "%s/node.conf", f->dir);
    *state = f;
    return 0;
}

static int conf_teardown(void **state)
{
    struct conf_fixture *f = *state;

    remove_tree(f->dir);
    free(f);
    return 0;
}

static void fill_manager(node_conf *c, int managers)
{
    memset(c, 0, sizeof(*c));
    c->role = NODE_ROLE_MANAGER;
    snprintf(c->node_id, sizeof(c->node_id), "%s", NODE_ID);
    snprintf(c->cluster_id, sizeof(c->cluster_id), "%s", CLUSTER_ID);
    snprintf(c->listen_addr, sizeof(c->listen_addr), "0.0.0.0:4242");
    snprintf(c->advertise_addr, sizeof(c->advertise_addr), "127.0.0.1:4242");
    for (int i = 0; i < managers; i++) {
        snprintf(c->managers[i], CONF_ADDR_SIZE, "127.0.0.%d:%d", i + 1, 4242 + i);
    }
    c->manager_count = managers;
}

static void save_ok(const char *dir, const node_conf *c)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int rv = conf_save(dir, c, errmsg);

    if (rv != 0) {
        print_error("conf_save: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

static void load_ok(const char *dir, node_conf *c)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int rv = conf_load(dir, c, errmsg);

    if (rv != 0) {
        print_error("conf_load: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

/* Writes text as node.conf, checks that loading it fails and that the
 * message names the file and contains want. */
static void expect_rejected(struct conf_fixture *f, const char *text, const char *want)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    node_conf c;

    write_text(f->path, text);
    assert_int_equal(conf_load(f->dir, &c, errmsg), -1);
    if (strstr(errmsg, want) == NULL) {
        print_error("message lacks \"%s\": %s\n", want, errmsg);
    }
    assert_non_null(strstr(errmsg, want));
    assert_non_null(strstr(errmsg, f->path));
}

static void conf_round_trip(void **state)
{
    struct conf_fixture *f = *state;
    node_conf saved, loaded;

    fill_manager(&saved, 3);
    save_ok(f->dir, &saved);
    load_ok(f->dir, &loaded);
    assert_int_equal(loaded.role, NODE_ROLE_MANAGER);
    assert_string_equal(loaded.node_id, NODE_ID);
    assert_string_equal(loaded.cluster_id, CLUSTER_ID);
    assert_string_equal(loaded.listen_addr, "0.0.0.0:4242");
    assert_string_equal(loaded.advertise_addr, "127.0.0.1:4242");
    assert_int_equal(loaded.manager_count, 3);
    assert_string_equal(loaded.managers[0], "127.0.0.1:4242");
    assert_string_equal(loaded.managers[1], "127.0.0.2:4243");
    assert_string_equal(loaded.managers[2], "127.0.0.3:4244");
}

static void conf_round_trip_worker(void **state)
{
    struct conf_fixture *f = *state;
    node_conf saved, loaded;

    fill_manager(&saved, 1);
    saved.role = NODE_ROLE_WORKER;
    saved.listen_addr[0] = '\0';
    saved.advertise_addr[0] = '\0';
    save_ok(f->dir, &saved);
    load_ok(f->dir, &loaded);
    assert_int_equal(loaded.role, NODE_ROLE_WORKER);
    assert_string_equal(loaded.listen_addr, "");
    assert_string_equal(loaded.advertise_addr, "");
    assert_int_equal(loaded.manager_count, 1);
    assert_string_equal(loaded.managers[0], "127.0.0.1:4242");
}

static void conf_round_trip_full(void **state)
{
    struct conf_fixture *f = *state;
    node_conf saved, loaded;

    fill_manager(&saved, CONF_MAX_MANAGERS);
    save_ok(f->dir, &saved);
    load_ok(f->dir, &loaded);
    assert_int_equal(loaded.manager_count, CONF_MAX_MANAGERS);
    for (int i = 0; i < CONF_MAX_MANAGERS; i++) {
        assert_string_equal(loaded.managers[i], saved.managers[i]);
    }
}

static void conf_save_mode(void **state)
{
    struct conf_fixture *f = *state;
    node_conf c;
    struct stat st;

    fill_manager(&c, 1);
    save_ok(f->dir, &c);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void conf_save_replaces(void **state)
{
    struct conf_fixture *f = *state;
    node_conf c, loaded;

    fill_manager(&c, 3);
    save_ok(f->dir, &c);
    c.manager_count = 1;
    save_ok(f->dir, &c);
    load_ok(f->dir, &loaded);
    assert_int_equal(loaded.manager_count, 1);
    assert_int_equal(count_entries(f->dir), 1);
}

static void conf_missing(void **state)
{
    struct conf_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    node_conf c;

    assert_int_equal(conf_load(f->dir, &c, errmsg), -2);
}

static void conf_other_version(void **state)
{
    struct conf_fixture *f = *state;
    const char *text = "version=2\nrole=worker\nnode_id=" NODE_ID "\ncluster_id=" CLUSTER_ID
                       "\n";

    expect_rejected(f, text, "version 2");
    expect_rejected(f, text, "version 1");
}

static void conf_other_version_new_key(void **state)
{
    struct conf_fixture *f = *state;

    /* A newer release may add settings. The message must name the
     * version, not the unknown setting, because the version is the fix. */
    const char *text = "version=2\nrole=worker\nnode_id=" NODE_ID "\ncluster_id=" CLUSTER_ID
                       "\nnew_setting=on\n";

    expect_rejected(f, text, "version 2");
    expect_rejected(f, text, "version 1");
}

static void conf_no_version(void **state)
{
    struct conf_fixture *f = *state;
    const char *text = "role=worker\nnode_id=" NODE_ID "\ncluster_id=" CLUSTER_ID "\n";

    expect_rejected(f, text, "version 0");
}

static void conf_garbage_line(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "version=1\nrole=worker\nnot a setting\nnode_id=" NODE_ID "\n",
                    "line 3");
}

static void conf_garbage_after_comment(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "# comment\nversion=1\nrole=worker\nnot a setting\n", "line 4");
}

static void conf_garbage_after_blank(void **state)
{
    struct conf_fixture *f = *state;

    /* Blank lines count, so the number matches what an editor shows. */
    expect_rejected(f, "version=1\n\nrole=worker\n\nnot a setting\n", "line 5");
}

static void conf_blank_lines(void **state)
{
    struct conf_fixture *f = *state;
    node_conf c;

    write_text(f->path, "\nversion=1\n\nrole=worker\nnode_id=" NODE_ID
                        "\n\ncluster_id=" CLUSTER_ID "\n\n");
    load_ok(f->dir, &c);
    assert_int_equal(c.role, NODE_ROLE_WORKER);
}

static void conf_unknown_key(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "version=1\nrole=worker\ncolour=blue\n", "line 3");
}

static void conf_unknown_role(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "version=1\nnode_id=" NODE_ID "\nrole=admin\n", "line 3");
}

static void conf_long_node_id(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "version=1\nrole=worker\nnode_id=" NODE_ID "z\n", "line 3");
}

static void conf_too_many_managers(void **state)
{
    struct conf_fixture *f = *state;
    char text[2048];
    char want[32];
    int n;

    n = snprintf(text, sizeof(text),
                 "version=1\nrole=worker\nnode_id=" NODE_ID "\ncluster_id=" CLUSTER_ID "\n");
    for (int i = 0; i <= CONF_MAX_MANAGERS; i++) {
        n += snprintf(text + n, sizeof(text) - (size_t)n, "manager=127.0.0.1:%d\n", 5000 + i);
    }
    assert_true(n < (int)sizeof(text));

    /* Four lines of settings come first, so the manager one past the
     * limit is on line 4 + CONF_MAX_MANAGERS + 1. */
    snprintf(want, sizeof(want), "line %d", 4 + CONF_MAX_MANAGERS + 1);
    expect_rejected(f, text, want);
}

static void conf_missing_node_id(void **state)
{
    struct conf_fixture *f = *state;

    expect_rejected(f, "version=1\nrole=worker\ncluster_id=" CLUSTER_ID "\n", "node_id");
}

int run_conf_tests(void)
{
#define CONF_TEST(name) cmocka_unit_test_setup_teardown(name, conf_setup, conf_teardown)
    const struct CMUnitTest tests[] = {
        CONF_TEST(conf_round_trip),
        CONF_TEST(conf_round_trip_worker),
        CONF_TEST(conf_round_trip_full),
        CONF_TEST(conf_save_mode),
        CONF_TEST(conf_save_replaces),
        CONF_TEST(conf_missing),
        CONF_TEST(conf_other_version),
        CONF_TEST(conf_other_version_new_key),
        CONF_TEST(conf_no_version),
        CONF_TEST(conf_garbage_line),
        CONF_TEST(conf_garbage_after_comment),
        CONF_TEST(conf_garbage_after_blank),
        CONF_TEST(conf_blank_lines),
        CONF_TEST(conf_unknown_key),
        CONF_TEST(conf_unknown_role),
        CONF_TEST(conf_long_node_id),
        CONF_TEST(conf_too_many_managers),
        CONF_TEST(conf_missing_node_id),
    };
#undef CONF_TEST

    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
