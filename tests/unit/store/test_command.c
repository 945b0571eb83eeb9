/* Command encoding and decoding, including hostile input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static void make_cluster_init(store_command *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_CLUSTER_INIT;
    fill_cluster(&cmd->cluster);
    fill_node(&cmd->node, "node-first", STORE_ROLE_MANAGER);
    fill_cert(&cmd->cert, "0a0b", "node-first", 0x77);
    cmd->cert.role = STORE_ROLE_MANAGER;
}

static void make_issue(store_command *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_ISSUE;
    fill_node(&cmd->node, "node-second", STORE_ROLE_WORKER);
    fill_cert(&cmd->cert, "0c0d", "node-second", 0x78);
    snprintf(cmd->token, sizeof(cmd->token), "SWMTKN-1-%050d-%025d", 3, 4);
}

static void make_set_expiry(store_command *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_SET_EXPIRY;
    cmd->cert_expiry = 3600;
}

/* Three status transitions in heap arrays that store_command_free frees. */
static void make_node_status(store_command *cmd)
{
    static const char *ids[] = {"node-a", "abcdefghijklmnopqrstuvwxy", "node-c"};

    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_NODE_STATUS;
    cmd->status_count = 3;
    cmd->status_ids = calloc(3, sizeof(*cmd->status_ids));
    cmd->statuses = calloc(3, sizeof(*cmd->statuses));
    assert_non_null(cmd->status_ids);
    assert_non_null(cmd->statuses);
    for (size_t i = 0; i < 3; i++) {
        snprintf(cmd->status_ids[i], sizeof(cmd->status_ids[i]), "%s", ids[i]);
        cmd->statuses[i] = i == 1 ? STORE_STATUS_DOWN : STORE_STATUS_READY;
    }
    cmd->updated = 1700000123;
}

static void make_remove(store_command *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_REMOVE;
    snprintf(cmd->node.id, sizeof(cmd->node.id), "%s", "node-gone");
    cmd->prune_after = 1900000000;
}

static void encode(const store_command *cmd, unsigned char **data, size_t *len)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    int rv = store_command_encode(cmd, data, len, errmsg);

    if (rv != 0) {
        print_error("store_command_encode: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

static void expect_same_cert(const store_cert *a, const store_cert *b)
{
    assert_string_equal(a->serial, b->serial);
    assert_string_equal(a->node_id, b->node_id);
    assert_int_equal(a->role, b->role);
    assert_int_equal(a->not_before, b->not_before);
    assert_int_equal(a->not_after, b->not_after);
    assert_memory_equal(a->key_hash, b->key_hash, 32);
    assert_string_equal(a->cert_pem, b->cert_pem);
}

static void command_cluster_init(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    make_cluster_init(&in);
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.type, STORE_CMD_CLUSTER_INIT);
    assert_string_equal(out.cluster.id, in.cluster.id);
    assert_string_equal(out.cluster.bundle_pem, in.cluster.bundle_pem);
    assert_string_equal(out.cluster.signer_cert_pem, in.cluster.signer_cert_pem);
    assert_string_equal(out.cluster.signer_key_pem, in.cluster.signer_key_pem);
    assert_string_equal(out.cluster.worker_token, in.cluster.worker_token);
    assert_string_equal(out.cluster.manager_token, in.cluster.manager_token);
    assert_int_equal(out.cluster.cert_expiry, in.cluster.cert_expiry);
    assert_int_equal(out.cluster.created, in.cluster.created);
    assert_memory_equal(&out.node, &in.node, sizeof(in.node));
    expect_same_cert(&out.cert, &in.cert);
    assert_int_equal(out.token[0], 0);
    assert_int_equal(out.cert_expiry, 0);
    store_command_free(&out);
    store_command_free(&in);
    free(data);
}

static void command_issue(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    make_issue(&in);
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.type, STORE_CMD_ISSUE);
    assert_memory_equal(&out.node, &in.node, sizeof(in.node));
    expect_same_cert(&out.cert, &in.cert);
    assert_string_equal(out.token, in.token);
    assert_null(out.cluster.bundle_pem);
    store_command_free(&out);
    store_command_free(&in);
    free(data);
}

static void command_set_expiry(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    make_set_expiry(&in);
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.type, STORE_CMD_SET_EXPIRY);
    assert_int_equal(out.cert_expiry, 3600);
    assert_int_equal(out.node.id[0], 0);
    store_command_free(&out);
    free(data);
}

static void command_node_status(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    make_node_status(&in);
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.type, STORE_CMD_NODE_STATUS);
    assert_int_equal(out.status_count, 3);
    assert_non_null(out.status_ids);
    assert_non_null(out.statuses);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(out.status_ids[i], in.status_ids[i]);
        assert_int_equal(out.statuses[i], in.statuses[i]);
    }
    assert_int_equal(out.updated, 1700000123);
    assert_int_equal(out.node.id[0], 0);
    store_command_free(&out);
    assert_null(out.status_ids);
    assert_null(out.statuses);
    assert_int_equal(out.status_count, 0);
    store_command_free(&in);
    free(data);
}

static void command_node_status_empty(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    memset(&in, 0, sizeof(in));
    in.type = STORE_CMD_NODE_STATUS;
    in.updated = -1;
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.status_count, 0);
    assert_null(out.status_ids);
    assert_null(out.statuses);
    assert_int_equal(out.updated, -1);
    store_command_free(&out);
    free(data);
}

/* STORE_MAX_STATUS items encode and decode; one more does not encode. */
static void command_node_status_max(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    memset(&in, 0, sizeof(in));
    in.type = STORE_CMD_NODE_STATUS;
    in.status_ids = calloc(STORE_MAX_STATUS + 1, sizeof(*in.status_ids));
    in.statuses = calloc(STORE_MAX_STATUS + 1, sizeof(*in.statuses));
    assert_non_null(in.status_ids);
    assert_non_null(in.statuses);
    for (size_t i = 0; i <= STORE_MAX_STATUS; i++) {
        snprintf(in.status_ids[i], sizeof(in.status_ids[i]), "n%024zu", i);
        in.statuses[i] = STORE_STATUS_DOWN;
    }

    in.status_count = STORE_MAX_STATUS;
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.status_count, STORE_MAX_STATUS);
    assert_string_equal(out.status_ids[STORE_MAX_STATUS - 1],
                        in.status_ids[STORE_MAX_STATUS - 1]);
    store_command_free(&out);
    free(data);

    in.status_count = STORE_MAX_STATUS + 1;
    assert_int_equal(store_command_encode(&in, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "max 4096"));
    store_command_free(&in);
}

static void command_remove(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command in, out;
    unsigned char *data;
    size_t len;
    (void)state;

    make_remove(&in);
    encode(&in, &data, &len);
    assert_int_equal(store_command_decode(data, len, &out, errmsg), 0);
    assert_int_equal(out.type, STORE_CMD_REMOVE);
    assert_string_equal(out.node.id, "node-gone");
    assert_int_equal(out.prune_after, 1900000000);
    assert_int_equal(out.node.role, 0);
    assert_int_equal(out.status_count, 0);
    store_command_free(&out);
    free(data);
}

static void command_free_wipes(void **state)
{
    store_command cmd;
    (void)state;

    make_issue(&cmd);
    store_command_free(&cmd);
    assert_int_equal(cmd.token[0], 0);
    assert_int_equal(cmd.token[20], 0);
    assert_null(cmd.cert.cert_pem);
    assert_int_equal(cmd.type, 0);

    make_cluster_init(&cmd);
    store_command_free(&cmd);
    assert_null(cmd.cluster.signer_key_pem);
    assert_int_equal(cmd.cluster.worker_token[0], 0);
}

static void command_encode_invalid(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd;
    unsigned char *data = (unsigned char *)"x";
    size_t len = 1;
    (void)state;

    make_set_expiry(&cmd);
    cmd.type = 99;
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_null(data);
    assert_int_equal(len, 0);

    make_issue(&cmd);
    cmd.cert.role = 0;
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "\"role\""));
    store_command_free(&cmd);

    make_issue(&cmd);
    memset(cmd.token, 'T', sizeof(cmd.token));
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "\"token\""));
    assert_null(strstr(errmsg, "TTTT"));
    store_command_free(&cmd);
}

static void command_encode_bad_status(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd;
    unsigned char *data = NULL;
    size_t len = 0;
    (void)state;

    make_node_status(&cmd);
    cmd.statuses[2] = STORE_STATUS_UNKNOWN;
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "statuses[2]"));
    cmd.statuses[2] = 3;
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    cmd.statuses[2] = STORE_STATUS_READY;

    cmd.status_ids[1][0] = '\0';
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "status_ids[1]"));
    memset(cmd.status_ids[1], 'x', sizeof(cmd.status_ids[1]));
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "status_ids[1]"));
    store_command_free(&cmd);

    /* A count without arrays. */
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = STORE_CMD_NODE_STATUS;
    cmd.status_count = 1;
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "NULL"));
    assert_null(data);
}

static void command_encode_bad_remove(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd;
    unsigned char *data = NULL;
    size_t len = 0;
    (void)state;

    make_remove(&cmd);
    cmd.node.id[0] = '\0';
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_non_null(strstr(errmsg, "\"node_id\""));

    make_remove(&cmd);
    memset(cmd.node.id, 'r', sizeof(cmd.node.id));
    assert_int_equal(store_command_encode(&cmd, &data, &len, errmsg), STORE_EINVALID);
    assert_null(data);
}

/* Decodes data and expects STORE_ECORRUPT and an empty command back. */
static void expect_corrupt(const void *data, size_t len)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command out;

    assert_int_equal(store_command_decode(data, len, &out, errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "corrupt command"));
    assert_int_equal(out.type, 0);
    assert_null(out.cluster.signer_key_pem);
    assert_null(out.cert.cert_pem);
    assert_null(out.status_ids);
    assert_null(out.statuses);
}

static void command_truncated_prefixes(void **state)
{
    void (*makers[])(store_command *) = {make_cluster_init, make_issue, make_set_expiry,
                                         make_node_status, make_remove};
    (void)state;

    for (size_t m = 0; m < sizeof(makers) / sizeof(makers[0]); m++) {
        store_command cmd;
        unsigned char *data;
        size_t len;

        makers[m](&cmd);
        encode(&cmd, &data, &len);
        for (size_t cut = 0; cut < len; cut++) {
            unsigned char *prefix = malloc(cut > 0 ? cut : 1);

            /* A copy of exactly cut bytes, so ASan reports any read past it. */
            assert_non_null(prefix);
            memcpy(prefix, data, cut);
            expect_corrupt(prefix, cut);
            free(prefix);
        }
        store_command_free(&cmd);
        free(data);
    }
}

static void command_random_bytes(void **state)
{
    uint64_t rng = test_seed("command_random_bytes");
    unsigned char data[300];
    (void)state;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(next_random(&rng) % sizeof(data));

        for (size_t i = 0; i < len; i++) {
            data[i] = (unsigned char)next_random(&rng);
        }

        /* Half the rounds start as a small map, which gets further. */
        if (len > 0 && round % 2 == 0) {
            data[0] = 0x80 | (data[0] & 0x07);
        }
        expect_corrupt(data, len);
    }
}

/* Flips bytes of valid encodings: the result may decode or not, but must
 * never crash, leak or read out of bounds. */
static void command_mutations(void **state)
{
    uint64_t rng = test_seed("command_mutations");
    void (*makers[])(store_command *) = {make_cluster_init, make_issue, make_set_expiry,
                                         make_node_status, make_remove};
    size_t n_makers = sizeof(makers) / sizeof(makers[0]);
    int decoded = 0;
    (void)state;

    for (size_t m = 0; m < n_makers; m++) {
        store_command cmd;
        unsigned char *data;
        size_t len;

        makers[m](&cmd);
        encode(&cmd, &data, &len);
        for (int round = 0; round < 3000; round++) {
            unsigned char *copy = malloc(len);
            char errmsg[STORE_ERRMSG_SIZE] = "";
            store_command out;
            int rv;

            assert_non_null(copy);
            memcpy(copy, data, len);
            for (int flips = 1 + (int)(next_random(&rng) % 3); flips > 0; flips--) {
                copy[next_random(&rng) % len] = (unsigned char)next_random(&rng);
            }
            rv = store_command_decode(copy, len, &out, errmsg);
            assert_true(rv == 0 || rv == STORE_ECORRUPT);
            decoded += rv == 0;
            store_command_free(&out);
            free(copy);
        }
        store_command_free(&cmd);
        free(data);
    }
    print_message("  %d of %zu mutations still decoded\n", decoded, 3000 * n_makers);
}

static void command_huge_headers(void **state)
{
    static const unsigned char cases[][6] = {
        {0xdf, 0xff, 0xff, 0xff, 0xff, 0x00}, /* map of 4 G pairs */
        {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00}, /* array of 4 G elements */
        {0xdb, 0xff, 0xff, 0xff, 0xff, 0x00}, /* string of 4 GiB */
        {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}, /* bin of 4 GiB */
        {0xc9, 0xff, 0xff, 0xff, 0xff, 0x00}, /* ext of 4 GiB */
        {0x81, 0xdd, 0xff, 0xff, 0xff, 0xff}, /* nested array of 4 G elements */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_corrupt(cases[i], sizeof(cases[i]));
    }
}

static void command_deep_nesting(void **state)
{
    unsigned char data[1001];
    (void)state;

    /* 1000 nested one-element arrays around a 0. */
    memset(data, 0x91, 1000);
    data[1000] = 0x00;
    expect_corrupt(data, sizeof(data));
}

static void command_trailing_bytes(void **state)
{
    store_command cmd;
    unsigned char *data;
    unsigned char *longer;
    size_t len;
    (void)state;

    make_set_expiry(&cmd);
    encode(&cmd, &data, &len);
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, data, len);
    longer[len] = 0xc0;
    expect_corrupt(longer, len + 1);
    free(longer);
    free(data);
}

/* Packs a command map from fields. */
static void craft_command(msgpack_sbuffer *sbuf, const struct craft *fields, size_t n)
{
    msgpack_sbuffer_init(sbuf);
    craft_pack(sbuf, fields, n);
}

static void command_unknown_type(void **state)
{
    const struct craft unknown[] = {{"type", CRAFT_UINT, NULL, 0, 99}};
    const struct craft negative[] = {{"type", CRAFT_INT, NULL, 0, -2}};
    const struct craft missing[] = {{"cert_expiry", CRAFT_INT, NULL, 0, 60}};
    char errmsg[STORE_ERRMSG_SIZE] = "";
    msgpack_sbuffer sbuf;
    store_command out;
    (void)state;

    craft_command(&sbuf, unknown, 1);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "unknown type 99"));
    msgpack_sbuffer_destroy(&sbuf);

    craft_command(&sbuf, negative, 1);
    expect_corrupt(sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);

    craft_command(&sbuf, missing, 1);
    expect_corrupt(sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
}

static void command_missing_field(void **state)
{
    const struct craft no_expiry[] = {{"type", CRAFT_UINT, NULL, 0, STORE_CMD_SET_EXPIRY},
                                      {"token", CRAFT_STR, "x", 1, 0}};
    const struct craft issue_no_node[] = {{"type", CRAFT_UINT, NULL, 0, STORE_CMD_ISSUE},
                                          {"token", CRAFT_STR, "x", 1, 0}};
    char errmsg[STORE_ERRMSG_SIZE] = "";
    msgpack_sbuffer sbuf;
    store_command out;
    (void)state;

    craft_command(&sbuf, no_expiry, 2);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "\"cert_expiry\" is missing"));
    msgpack_sbuffer_destroy(&sbuf);

    craft_command(&sbuf, issue_no_node, 2);
    expect_corrupt(sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
}

/* Packs a valid ISSUE command whose token is token_len bytes of 'S'. The
 * node and cert come from a valid encoding. */
static void pack_issue_with_token(msgpack_sbuffer *sbuf, size_t token_len)
{
    char token[128];
    store_command cmd;
    unsigned char *data;
    size_t len;
    size_t off = 0;
    msgpack_unpacked u;
    msgpack_packer pk;

    assert_true(token_len <= sizeof(token));
    memset(token, 'S', sizeof(token));
    make_issue(&cmd);
    encode(&cmd, &data, &len);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)data, len, &off),
                     MSGPACK_UNPACK_SUCCESS);

    msgpack_sbuffer_init(sbuf);
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "token", 5);
    msgpack_pack_str_with_body(&pk, token, token_len);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[i];

        if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "token", 5) == 0) {
            continue;
        }
        msgpack_pack_object(&pk, kv->key);
        msgpack_pack_object(&pk, kv->val);
    }
    msgpack_unpacked_destroy(&u);
    store_command_free(&cmd);
    free(data);
}

/* An overlong token is rejected, and the message shows none of it. */
static void command_overlong_token(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    msgpack_sbuffer sbuf;
    store_command out;
    (void)state;

    pack_issue_with_token(&sbuf, 86);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "\"token\""));
    assert_null(strstr(errmsg, "SSSS"));
    msgpack_sbuffer_destroy(&sbuf);

    /* 85 bytes, the length of a join token, fits. */
    pack_issue_with_token(&sbuf, 85);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg), 0);
    assert_int_equal(strlen(out.token), 85);
    store_command_free(&out);
    msgpack_sbuffer_destroy(&sbuf);
}

static unsigned char *find_bytes(unsigned char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return data + i;
        }
    }
    return NULL;
}

/* A signer key of the wrong type or size is rejected without showing it. */
static void command_bad_signer_key(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd, out;
    unsigned char *data;
    size_t len;
    unsigned char *hit;
    (void)state;

    make_cluster_init(&cmd);
    encode(&cmd, &data, &len);

    /* The 64-byte key PEM is packed as a str8. Turning its header into a
     * bin8 header of the same length gives the field the wrong type. */
    hit = find_bytes(data, len, "-----BEGIN PRIVATE KEY");
    assert_non_null(hit);
    assert_int_equal(hit[-2], 0xd9); /* str8 */
    hit[-2] = 0xc4;                  /* bin8 */
    assert_int_equal(store_command_decode(data, len, &out, errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "\"signer_key\""));
    assert_null(strstr(errmsg, "SECRETKEY"));
    assert_null(strstr(errmsg, "PRIVATE"));

    store_command_free(&cmd);
    free(data);
}

/* Packs a NODE_STATUS command whose "statuses" value is packed by items. */
static void pack_status_command(msgpack_sbuffer *sbuf,
                                void (*items)(msgpack_packer *pk, void *arg), void *arg)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sbuf);
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_uint64(&pk, STORE_CMD_NODE_STATUS);
    msgpack_pack_str_with_body(&pk, "updated", 7);
    msgpack_pack_int64(&pk, 5);
    msgpack_pack_str_with_body(&pk, "statuses", 8);
    items(&pk, arg);
}

/* One hand-made "statuses" item: id bytes and a status, or a raw shape. */
struct status_case {
    const char *label;
    const char *id;
    size_t id_len;
    int64_t status;
    int shape; /* 0 a pair, 1 a triple, 2 a map, 3 the pair reversed */
};

static void pack_status_case(msgpack_packer *pk, void *arg)
{
    const struct status_case *c = arg;

    msgpack_pack_array(pk, 2);

    /* A valid first item, so the bad one is not at index 0. */
    msgpack_pack_array(pk, 2);
    msgpack_pack_str_with_body(pk, "node-ok", 7);
    msgpack_pack_uint64(pk, STORE_STATUS_READY);

    if (c->shape == 2) {
        msgpack_pack_map(pk, 0);
        return;
    }
    msgpack_pack_array(pk, c->shape == 1 ? 3 : 2);
    if (c->shape == 3) {
        msgpack_pack_int64(pk, c->status);
        msgpack_pack_str_with_body(pk, c->id, c->id_len);
        return;
    }
    msgpack_pack_str_with_body(pk, c->id, c->id_len);
    msgpack_pack_int64(pk, c->status);
    if (c->shape == 1) {
        msgpack_pack_nil(pk);
    }
}

static void command_bad_status_items(void **state)
{
    static const char long_id[] = "abcdefghijklmnopqrstuvwxyz"; /* 26 bytes */
    const struct status_case cases[] = {
        {"status 0", "node-b", 6, STORE_STATUS_UNKNOWN, 0},
        {"status 3", "node-b", 6, 3, 0},
        {"negative status", "node-b", 6, -1, 0},
        {"empty id", "", 0, STORE_STATUS_READY, 0},
        {"26-byte id", long_id, 26, STORE_STATUS_READY, 0},
        {"NUL in id", "node\0b", 6, STORE_STATUS_READY, 0},
        {"triple", "node-b", 6, STORE_STATUS_READY, 1},
        {"map", "node-b", 6, STORE_STATUS_READY, 2},
        {"reversed", "node-b", 6, STORE_STATUS_READY, 3},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char errmsg[STORE_ERRMSG_SIZE] = "";
        msgpack_sbuffer sbuf;
        store_command out;

        print_message("  case %s\n", cases[i].label);
        pack_status_command(&sbuf, pack_status_case, (void *)&cases[i]);
        assert_int_equal(
            store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
            STORE_ECORRUPT);
        assert_non_null(strstr(errmsg, "item 1"));
        assert_null(out.status_ids);
        assert_null(out.statuses);
        msgpack_sbuffer_destroy(&sbuf);
    }
}

static void pack_too_many(msgpack_packer *pk, void *arg)
{
    (void)arg;
    msgpack_pack_array(pk, STORE_MAX_STATUS + 1);
    for (int i = 0; i <= STORE_MAX_STATUS; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_str_with_body(pk, "n", 1);
        msgpack_pack_uint64(pk, STORE_STATUS_DOWN);
    }
}

static void pack_not_array(msgpack_packer *pk, void *arg)
{
    (void)arg;
    msgpack_pack_str_with_body(pk, "ready", 5);
}

static void command_bad_status_list(void **state)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    msgpack_sbuffer sbuf;
    store_command out;
    /* A map whose "statuses" array header claims 65535 items in 3 bytes. */
    unsigned char lying[64];
    size_t n;
    (void)state;

    pack_status_command(&sbuf, pack_too_many, NULL);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "max 4096"));
    msgpack_sbuffer_destroy(&sbuf);

    pack_status_command(&sbuf, pack_not_array, NULL);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "not an array"));
    msgpack_sbuffer_destroy(&sbuf);

    pack_status_command(&sbuf, pack_not_array, NULL);
    n = sbuf.size - 6; /* the bytes before the "ready" string */
    assert_true(n + 3 <= sizeof(lying));
    memcpy(lying, sbuf.data, n);
    lying[n] = 0xdc; /* array 16 */
    lying[n + 1] = 0xff;
    lying[n + 2] = 0xff;
    expect_corrupt(lying, n + 3);
    msgpack_sbuffer_destroy(&sbuf);
}

static void command_remove_missing(void **state)
{
    const struct craft no_prune[] = {{"type", CRAFT_UINT, NULL, 0, STORE_CMD_REMOVE},
                                     {"node_id", CRAFT_STR, "node-a", 6, 0}};
    const struct craft empty_id[] = {{"type", CRAFT_UINT, NULL, 0, STORE_CMD_REMOVE},
                                     {"node_id", CRAFT_STR, "", 0, 0},
                                     {"prune_after", CRAFT_INT, NULL, 0, 1}};
    char errmsg[STORE_ERRMSG_SIZE] = "";
    msgpack_sbuffer sbuf;
    store_command out;
    (void)state;

    craft_command(&sbuf, no_prune, 2);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "\"prune_after\" is missing"));
    msgpack_sbuffer_destroy(&sbuf);

    craft_command(&sbuf, empty_id, 3);
    assert_int_equal(
        store_command_decode((unsigned char *)sbuf.data, sbuf.size, &out, errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(errmsg, "\"node_id\" is empty"));
    msgpack_sbuffer_destroy(&sbuf);
}

int run_command_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(command_cluster_init),
        cmocka_unit_test(command_issue),
        cmocka_unit_test(command_set_expiry),
        cmocka_unit_test(command_node_status),
        cmocka_unit_test(command_node_status_empty),
        cmocka_unit_test(command_node_status_max),
        cmocka_unit_test(command_remove),
        cmocka_unit_test(command_free_wipes),
        cmocka_unit_test(command_encode_invalid),
        cmocka_unit_test(command_encode_bad_status),
        cmocka_unit_test(command_encode_bad_remove),
        cmocka_unit_test(command_truncated_prefixes),
        cmocka_unit_test(command_random_bytes),
        cmocka_unit_test(command_mutations),
        cmocka_unit_test(command_huge_headers),
        cmocka_unit_test(command_deep_nesting),
        cmocka_unit_test(command_trailing_bytes),
        cmocka_unit_test(command_unknown_type),
        cmocka_unit_test(command_missing_field),
        cmocka_unit_test(command_overlong_token),
        cmocka_unit_test(command_bad_signer_key),
        cmocka_unit_test(command_bad_status_items),
        cmocka_unit_test(command_bad_status_list),
        cmocka_unit_test(command_remove_missing),
    };

    return cmocka_run_group_tests_name("store commands", tests, NULL, NULL);
}
