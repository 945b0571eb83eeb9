/* Creating a node's data directory: `swarmpki init` for the first manager
 * of a new cluster and `swarmpki join` for a node that joins one. Both run
 * in the command-line process before the daemon starts, and both leave the
 * data directory as it was when they fail. */
#ifndef SWARMPKI_NODE_SETUP_H
#define SWARMPKI_NODE_SETUP_H

#include <stdint.h>

#define SETUP_ERRMSG_SIZE 512

typedef struct setup_init_opts {
    const char *data_dir;
    const char *listen_addr;
    const char *advertise_addr; /* NULL: the listen address */
    int64_t cert_expiry;        /* seconds */
} setup_init_opts;

/* What init created, for the operator. */
typedef struct setup_init_result {
    char cluster_id[26];
    char node_id[26];
    char worker_token[86];
    char manager_token[86];
    char advertise_addr[128];
} setup_init_result;

/* Creates the cluster: root CA, tokens, this manager's certificate, the
 * store with the cluster's first log entry, and node.conf. */
int setup_init(const setup_init_opts *opts, setup_init_result *out, char *errmsg);

typedef struct setup_join_result {
    char cluster_id[26];
    char node_id[26];
    char role[16];
} setup_join_result;

/* Joins through the manager at manager_addr with token: pins the root CA by
 * the token's digest, sends a CSR and writes the certificate, key, trust
 * bundle and node.conf. A manager token needs listen_addr; advertise_addr
 * defaults to it. Returns 0, or -1 with one sentence in errmsg. */
int setup_join(const char *data_dir, const char *token, const char *manager_addr,
               const char *listen_addr, const char *advertise_addr, setup_join_result *out,
               char *errmsg);

/* Turns the stopped manager in data_dir into the only member of its
 * cluster, keeping all applied state (cluster id, root CA, tokens, nodes):
 * the other managers are removed and unapplied log entries dropped. */
int setup_force_new_cluster(const char *data_dir, char *errmsg);

/* Returns 1 while a swarmpki process runs from data_dir. */
int setup_node_running(const char *data_dir);

/* Returns 1 if data_dir already contains a node (node.conf exists). */
int setup_has_node(const char *data_dir);

#endif
