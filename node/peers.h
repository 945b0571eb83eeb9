/* A manager's connections to the other managers: one outbound mutual-TLS
 * connection per member, carrying Raft messages and forwarded requests.
 * Connections open on demand and are retried at most every
 * PEERS_RETRY_MS. Runs on the loop thread. */
#ifndef SWARMPKI_NODE_PEERS_H
#define SWARMPKI_NODE_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "store/store.h"

#define PEERS_RETRY_MS 500

struct node_daemon;
struct peer;
typedef struct peers peers;

/* A response to a forwarded request; m is NULL when the connection failed
 * first (errmsg gives the reason). The callee owns *m. */
typedef void (*peers_response_cb)(void *arg, net_msg *m, const char *errmsg);

/* Called once with 0 when addr completed a TLS handshake as node_id, else -1
 * and a reason. */
typedef void (*peers_probe_cb)(void *arg, int status, const char *errmsg);

int peers_create(struct node_daemon *d, net_tls *tls, peers **out);

/* Replaces the member table with the manager records (raft_id, node id and
 * advertised address), opening and closing links as needed. */
void peers_update(peers *p, const store_node *managers, size_t count);

/* Sends an encoded Raft message to member to, connecting first if needed;
 * a message that cannot go out now is dropped, as Raft resends. */
void peers_send_raft(peers *p, uint64_t to, const unsigned char *data, size_t len);

/* Remembers that member from sent Raft traffic over the inbound connection
 * of p, so replies can use it while this manager does not know the
 * member's address yet (a new manager before it caught up). */
void peers_note_inbound(peers *p, uint64_t from, struct peer *inbound);

/* Sends req to member to and calls cb once with its response. Returns -1
 * without calling cb when the member is unknown. */
int peers_forward(peers *p, uint64_t to, net_msg *req, peers_response_cb cb, void *arg);

/* Opens a one-off connection to addr and checks the certificate names
 * node_id. */
int peers_probe(peers *p, const char *addr, const char *node_id, peers_probe_cb cb, void *arg);

/* Opens a one-off connection to addr that verifies nothing and checks that
 * the certificate served there carries the public key with SHA-256
 * key_hash (of its DER SubjectPublicKeyInfo). */
int peers_probe_key(peers *p, const char *addr, const unsigned char key_hash[32],
                    peers_probe_cb cb, void *arg);

/* Returns 1 while the link to member id is connected. */
int peers_reachable(const peers *p, uint64_t id);

/* Reconnects links that are down, so reachability stays current between
 * managers that have nothing to send each other. */
void peers_tick(peers *p);

/* Returns the advertised address and node id of member id, or NULL. */
const char *peers_addr(const peers *p, uint64_t id);
const char *peers_node_id(const peers *p, uint64_t id);

/* Returns the raft id of the member with this node id, or 0. */
uint64_t peers_find_node(const peers *p, const char *node_id);

/* Fills out with up to max manager addresses; returns how many. */
size_t peers_addresses(const peers *p, const char **out, size_t max);

/* Closes every connection and calls done once they are gone. */
void peers_stop(peers *p, void (*done)(void *arg), void *arg);

#endif
