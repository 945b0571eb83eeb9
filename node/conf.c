#include "node/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/util.h"

#define CONF_FILE "node.conf"
#define CONF_MAX_SIZE 16384

int conf_path(char *out, size_t size, const char *data_dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", data_dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

const char *conf_role_name(enum node_role role)
{
    return role == NODE_ROLE_MANAGER ? "manager" : "worker";
}

static int copy_value(char *dst, size_t size, const char *value)
{
    if (strlen(value) >= size) {
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

static int parse_number(const char *text, int base, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*text == '\0' || *text == '-') {
        return -1;
    }
    errno = 0;
    v = strtoull(text, &end, base);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Applies one "key=value" line; returns -1 for an unknown key or bad value. */
static int parse_line(node_conf *conf, const char *key, const char *value, int *version)
{
    if (strcmp(key, "version") == 0) {
        *version = atoi(value);
        return 0;
    }
    if (strcmp(key, "role") == 0) {
        if (strcmp(value, "manager") == 0) {
            conf->role = NODE_ROLE_MANAGER;
        } else if (strcmp(value, "worker") == 0) {
            conf->role = NODE_ROLE_WORKER;
        } else {
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "node_id") == 0) {
        return copy_value(conf->node_id, sizeof(conf->node_id), value);
    }
    if (strcmp(key, "cluster_id") == 0) {
        return copy_value(conf->cluster_id, sizeof(conf->cluster_id), value);
    }
    if (strcmp(key, "listen_addr") == 0) {
        return copy_value(conf->listen_addr, sizeof(conf->listen_addr), value);
    }
    if (strcmp(key, "advertise_addr") == 0) {
        return copy_value(conf->advertise_addr, sizeof(conf->advertise_addr), value);
    }
    if (strcmp(key, "raft_id") == 0) {
        return parse_number(value, 16, UINT64_MAX, &conf->raft_id);
    }
    if (strcmp(key, "raft_tick_ms") == 0) {
        uint64_t v;
        int rv = parse_number(value, 10, 60000, &v);
        conf->raft_tick_ms = (uint32_t)v;
        return rv;
    }
    if (strcmp(key, "raft_election_ticks") == 0) {
        uint64_t v;
        int rv = parse_number(value, 10, 1000, &v);
        conf->raft_election_ticks = (uint32_t)v;
        return rv;
    }
    if (strcmp(key, "manager") == 0) {
        if (conf->manager_count >= CONF_MAX_MANAGERS) {
            return -1;
        }
        return copy_value(conf->managers[conf->manager_count++], CONF_ADDR_SIZE, value);
    }
    return -1;
}

int conf_load(const char *data_dir, node_conf *out, char *errmsg)
{
    char path[4096];
    char *text;
    size_t len;
    int version = 0;
    int line_no = 0;
    int bad_line = 0;
    int rv;

    memset(out, 0, sizeof(*out));
    if (conf_path(path, sizeof(path), data_dir, CONF_FILE) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "data directory path %s is too long", data_dir);
        return -1;
    }
    rv = util_file_read(path, CONF_MAX_SIZE, &text, &len, errmsg);
    if (rv != 0) {
        return rv;
    }

    /* Blank lines are skipped but counted, so that line numbers in
     * messages match what an editor shows. */
    for (char *line = text, *next; line != NULL && bad_line == 0; line = next) {
        char *eq;

        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        line_no++;
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        eq = strchr(line, '=');
        if (eq == NULL) {
            bad_line = line_no;
            continue;
        }
        *eq = '\0';
        if (parse_line(out, line, eq + 1, &version) != 0) {
            bad_line = line_no;
        }
    }
    free(text);

    /* A file of another version may hold settings that this one does not
     * know, so a version line read before the bad line decides the
     * message. */
    if (version != CONF_VERSION && (version != 0 || bad_line == 0)) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE,
                 "%s has format version %d but this swarmpki reads version %d; use the "
                 "swarmpki release that created this data directory",
                 path, version, CONF_VERSION);
        return -1;
    }
    if (bad_line != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE,
                 "%s line %d is invalid; the file is damaged or from another version",
                 path, bad_line);
        return -1;
    }
    if (out->role == 0 || out->node_id[0] == '\0' || out->cluster_id[0] == '\0') {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "%s lacks role, node_id or cluster_id", path);
        return -1;
    }
    return 0;
}

int conf_save(const char *data_dir, const node_conf *conf, char *errmsg)
{
    char path[4096];
    util_sbuf b = {0};
    int rv = 0;

    if (conf_path(path, sizeof(path), data_dir, CONF_FILE) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "data directory path %s is too long", data_dir);
        return -1;
    }
    rv |= util_sbuf_printf(&b, "# swarmpki node settings; written by swarmpki, not by hand\n");
    rv |= util_sbuf_printf(&b, "version=%d\nrole=%s\nnode_id=%s\ncluster_id=%s\n",
                           CONF_VERSION, conf_role_name(conf->role), conf->node_id,
                           conf->cluster_id);
    if (conf->listen_addr[0] != '\0') {
        rv |= util_sbuf_printf(&b, "listen_addr=%s\n", conf->listen_addr);
    }
    if (conf->advertise_addr[0] != '\0') {
        rv |= util_sbuf_printf(&b, "advertise_addr=%s\n", conf->advertise_addr);
    }
    if (conf->raft_id != 0) {
        rv |= util_sbuf_printf(&b, "raft_id=%llx\n", (unsigned long long)conf->raft_id);
    }
    if (conf->raft_tick_ms != 0) {
        rv |= util_sbuf_printf(&b, "raft_tick_ms=%u\n", conf->raft_tick_ms);
    }
    if (conf->raft_election_ticks != 0) {
        rv |= util_sbuf_printf(&b, "raft_election_ticks=%u\n", conf->raft_election_ticks);
    }
    for (int i = 0; i < conf->manager_count; i++) {
        rv |= util_sbuf_printf(&b, "manager=%s\n", conf->managers[i]);
    }
    if (rv != 0) {
        util_sbuf_free(&b);
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "write %s: out of memory", path);
        return -1;
    }
    rv = util_file_write(path, b.data, b.len, 0600, errmsg);
    util_sbuf_free(&b);
    return rv;
}
