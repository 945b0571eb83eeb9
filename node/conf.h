/* The node's own settings file, <data-dir>/node.conf: which node this is,
 * its role, its cluster and where its managers are. It is written last when
 * a node is created, so its presence marks a complete data directory. */
#ifndef SWARMPKI_NODE_CONF_H
#define SWARMPKI_NODE_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_VERSION 1
#define CONF_MAX_MANAGERS 16
#define CONF_ADDR_SIZE 128

enum node_role { NODE_ROLE_WORKER = 1, NODE_ROLE_MANAGER = 2 };

typedef struct node_conf {
    enum node_role role;
    char node_id[26];
    char cluster_id[26];
    char listen_addr[CONF_ADDR_SIZE];    /* managers only */
    char advertise_addr[CONF_ADDR_SIZE]; /* managers only */
    char managers[CONF_MAX_MANAGERS][CONF_ADDR_SIZE];
    int manager_count;
    uint64_t raft_id;          /* managers only: this node's Raft member id */
    uint32_t raft_tick_ms;     /* 0: the default */
    uint32_t raft_election_ticks; /* 0: the default; the timeout is 1-2x this */
} node_conf;

/* Builds "<data_dir>/<name>" into out; returns -1 if it does not fit. */
int conf_path(char *out, size_t size, const char *data_dir, const char *name);

/* Reads node.conf. Returns 0, -2 if the file does not exist, or -1 with a
 * message naming the file for a file of another version or a bad line. */
int conf_load(const char *data_dir, node_conf *out, char *errmsg);

/* Writes node.conf atomically (mode 0600). */
int conf_save(const char *data_dir, const node_conf *conf, char *errmsg);

const char *conf_role_name(enum node_role role);

#endif
