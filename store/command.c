/* Commands, the payload of normal log entries: a msgpack map with the
 * command type and the fields that type uses. */
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

#define RECORD_FIELD(key, member, layout)                                                \
    STORE_FIELD_SUB(store_command, key, member, layout)

#define ID_MAX (sizeof(((store_command *)0)->status_ids[0]) - 1)

/* ---- NODE_STATUS: "statuses" is an array of [node id, status] pairs ---- */

static int status_check(const void *rec, const char *where, char *errmsg)
{
    const store_command *cmd = rec;

    if (cmd->status_count > STORE_MAX_STATUS) {
        return store_error(errmsg, STORE_EINVALID,
                           "invalid %s: %u node statuses, max %d; split them into "
                           "several commands",
                           where, (unsigned)cmd->status_count, STORE_MAX_STATUS);
    }
    if (cmd->status_count > 0 && (cmd->status_ids == NULL || cmd->statuses == NULL)) {
        return store_error(errmsg, STORE_EINVALID,
                           "invalid %s: status_count is %u but an array is NULL", where,
                           (unsigned)cmd->status_count);
    }
    for (uint32_t i = 0; i < cmd->status_count; i++) {
        size_t len = strnlen(cmd->status_ids[i], ID_MAX + 1);
        int status = cmd->statuses[i];

        if (len == 0 || len > ID_MAX) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: status_ids[%u] is not a NUL-terminated node "
                               "id of 1 to %zu bytes",
                               where, (unsigned)i, ID_MAX);
        }
        if (status != STORE_STATUS_READY && status != STORE_STATUS_DOWN) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: statuses[%u] is %d; use STORE_STATUS_READY "
                               "or STORE_STATUS_DOWN",
                               where, (unsigned)i, status);
        }
    }
    return 0;
}

static int status_pack(msgpack_packer *pk, const void *rec)
{
    const store_command *cmd = rec;

    if (msgpack_pack_array(pk, cmd->status_count) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < cmd->status_count; i++) {
        const char *id = cmd->status_ids[i];
        size_t len = strlen(id);

        if (msgpack_pack_array(pk, 2) != 0 || msgpack_pack_str(pk, len) != 0 ||
            msgpack_pack_str_body(pk, id, len) != 0 ||
            msgpack_pack_uint64(pk, (uint64_t)cmd->statuses[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Decodes pair i of the array into the arrays of cmd. */
static int unpack_status_pair(const msgpack_object *o, store_command *cmd, uint32_t i,
                              const char *where, char *errmsg)
{
    const msgpack_object *pair = o->via.array.ptr;
    const msgpack_object_str *id;
    uint64_t status;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
        pair[0].type != MSGPACK_OBJECT_STR ||
        pair[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"statuses\" item %u is not a pair of "
                           "node id and status",
                           where, (unsigned)i);
    }
    id = &pair[0].via.str;
    status = pair[1].via.u64;
    if (id->size == 0 || id->size > ID_MAX || memchr(id->ptr, '\0', id->size) != NULL) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"statuses\" item %u has a node id that is "
                           "not 1 to %zu bytes without NUL",
                           where, (unsigned)i, ID_MAX);
    }
    if (status != STORE_STATUS_READY && status != STORE_STATUS_DOWN) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"statuses\" item %u has status %llu, "
                           "expected %d (ready) or %d (down)",
                           where, (unsigned)i, (unsigned long long)status,
                           STORE_STATUS_READY, STORE_STATUS_DOWN);
    }
    memcpy(cmd->status_ids[i], id->ptr, id->size);
    cmd->status_ids[i][id->size] = '\0';
    cmd->statuses[i] = (int)status;
    return 0;
}

static int status_unpack(const msgpack_object *o, void *rec, const char *where,
                         char *errmsg)
{
    store_command *cmd = rec;
    uint32_t count;

    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"statuses\" is not an array", where);
    }
    count = o->via.array.size;
    if (count > STORE_MAX_STATUS) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"statuses\" has %u items, max %d", where,
                           (unsigned)count, STORE_MAX_STATUS);
    }
    if (count == 0) {
        return 0;
    }

    /* status_release frees these if a later pair fails. */
    cmd->status_ids = calloc(count, sizeof(*cmd->status_ids));
    cmd->statuses = calloc(count, sizeof(*cmd->statuses));
    if (cmd->status_ids == NULL || cmd->statuses == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory decoding %s", where);
    }
    for (uint32_t i = 0; i < count; i++) {
        int rv = unpack_status_pair(&o->via.array.ptr[i], cmd, i, where, errmsg);

        if (rv != 0) {
            return rv;
        }
    }
    cmd->status_count = count;
    return 0;
}

static void status_release(void *rec)
{
    store_command *cmd = rec;

    free(cmd->status_ids);
    free(cmd->statuses);
    cmd->status_ids = NULL;
    cmd->statuses = NULL;
    cmd->status_count = 0;
}

static const struct store_custom status_codec = {status_check, status_pack, status_unpack,
                                                 status_release};

/* ---- layouts: the map keys below are the on-disk format ---- */

static const struct store_field cluster_init_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("cluster", cluster, &store_layout_cluster),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
};

static const struct store_field issue_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
    STORE_FIELD(store_command, "token", token, STORE_FIELD_STR),
};

static const struct store_field set_expiry_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    STORE_FIELD(store_command, "cert_expiry", cert_expiry, STORE_FIELD_I64),
};

static const struct store_field node_status_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    STORE_FIELD_CODEC("statuses", &status_codec),
    STORE_FIELD(store_command, "updated", updated, STORE_FIELD_I64),
};

static const struct store_field remove_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    STORE_FIELD(store_command, "node_id", node.id, STORE_FIELD_ID),
    STORE_FIELD(store_command, "prune_after", prune_after, STORE_FIELD_I64),
};

/* Every field of every type, for freeing a command of any type. */
static const struct store_field all_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("cluster", cluster, &store_layout_cluster),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
    STORE_FIELD(store_command, "token", token, STORE_FIELD_STR),
    STORE_FIELD(store_command, "cert_expiry", cert_expiry, STORE_FIELD_I64),
    STORE_FIELD_CODEC("statuses", &status_codec),
    STORE_FIELD(store_command, "updated", updated, STORE_FIELD_I64),
    STORE_FIELD(store_command, "prune_after", prune_after, STORE_FIELD_I64),
};

static const struct store_layout cluster_init_layout =
    STORE_LAYOUT(store_command, cluster_init_fields);
static const struct store_layout issue_layout = STORE_LAYOUT(store_command, issue_fields);
static const struct store_layout set_expiry_layout =
    STORE_LAYOUT(store_command, set_expiry_fields);
static const struct store_layout node_status_layout =
    STORE_LAYOUT(store_command, node_status_fields);
static const struct store_layout remove_layout =
    STORE_LAYOUT(store_command, remove_fields);
static const struct store_layout all_layout = STORE_LAYOUT(store_command, all_fields);

static const struct store_layout *layout_for(uint64_t type)
{
    switch (type) {
    case STORE_CMD_CLUSTER_INIT:
        return &cluster_init_layout;
    case STORE_CMD_ISSUE:
        return &issue_layout;
    case STORE_CMD_SET_EXPIRY:
        return &set_expiry_layout;
    case STORE_CMD_NODE_STATUS:
        return &node_status_layout;
    case STORE_CMD_REMOVE:
        return &remove_layout;
    }
    return NULL;
}

void store_command_free(store_command *cmd)
{
    if (cmd != NULL) {
        store_record_free(&all_layout, cmd);
    }
}

int store_command_encode(const store_command *cmd, unsigned char **out, size_t *len,
                         char *errmsg)
{
    const struct store_layout *l = layout_for(cmd->type);
    struct store_buf buf;
    int rv;

    *out = NULL;
    *len = 0;
    if (l == NULL) {
        return store_error(errmsg, STORE_EINVALID, "invalid command: unknown type %u",
                           (unsigned)cmd->type);
    }
    rv = store_record_encode(l, cmd, "command", &buf, errmsg);
    if (rv != 0) {
        return rv;
    }
    *out = buf.data;
    *len = buf.len;
    return 0;
}

/* Finds the type, which selects the fields to decode. */
static int find_type(const msgpack_object *o, uint64_t *type, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return store_error(errmsg, STORE_ECORRUPT, "corrupt command: not a msgpack map");
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *key = &o->via.map.ptr[i].key;
        const msgpack_object *val = &o->via.map.ptr[i].val;

        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == 4 &&
            memcmp(key->via.str.ptr, "type", 4) == 0) {
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                break;
            }
            *type = val->via.u64;
            return 0;
        }
    }
    return store_error(errmsg, STORE_ECORRUPT,
                       "corrupt command: field \"type\" is missing or not an unsigned "
                       "integer");
}

int store_command_decode(const unsigned char *data, size_t len, store_command *out,
                         char *errmsg)
{
    const struct store_layout *l;
    msgpack_unpacked u;
    uint64_t type = 0;
    int rv;

    memset(out, 0, sizeof(*out));
    rv = store_msgpack_parse(data, len, &u);
    if (rv == STORE_ENOMEM) {
        return store_error(errmsg, rv, "out of memory decoding a command");
    }
    if (rv != 0) {
        return store_error(errmsg, rv, "corrupt command: not one complete msgpack value");
    }

    rv = find_type(&u.data, &type, errmsg);
    if (rv == 0) {
        l = layout_for(type);
        if (l == NULL) {
            rv = store_error(errmsg, STORE_ECORRUPT, "corrupt command: unknown type %llu",
                             (unsigned long long)type);
        } else {
            rv = store_record_unpack(&u.data, l, out, "command", errmsg);
        }
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}
