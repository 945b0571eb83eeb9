/* net: connections between nodes and to the control socket, on libuv and
 * OpenSSL's libssl.
 *
 * A connection carries frames: a 4-byte big-endian length, then one msgpack
 * value that decodes into a net_msg. TCP connections run TLS (1.2 minimum,
 * 1.3 preferred, TLS 1.2 only with ECDHE AEAD suites); the control socket is
 * a Unix domain socket without TLS.
 *
 * Threading: everything except net_call and net_caller runs on the thread
 * of the loop it was started on. net never logs; it reports what went wrong
 * through return values, close callbacks and the server's event callback,
 * and node/ logs.
 *
 * Signals: a process that uses net must ignore SIGPIPE. On Linux libuv
 * writes to sockets with write(2), so a write to a peer that has gone away
 * raises SIGPIPE, which would otherwise end the process.
 *
 * Errors: 0 or a negative NET_E* code; errmsg (NET_ERRMSG_SIZE bytes) gets
 * one sentence naming the address or value at fault. */
#ifndef SWARMPKI_NET_H
#define SWARMPKI_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define NET_ERRMSG_SIZE 256

/* Frames above this size close the connection. */
#define NET_MAX_FRAME (4u * 1024 * 1024)
/* A TLS handshake that has not finished in this time closes the connection. */
#define NET_HANDSHAKE_TIMEOUT_MS 10000

enum {
    NET_ENOMEM = -1,
    NET_EADDR = -2,      /* a HOST:PORT that does not parse or resolve */
    NET_ECONNECT = -3,   /* connection refused or unreachable */
    NET_ETIMEOUT = -4,   /* no answer in time */
    NET_ETLS = -5,       /* TLS failed: handshake, verification, bad record */
    NET_EPROTO = -6,     /* a frame or message that does not decode */
    NET_ECLOSED = -7,    /* the peer closed the connection */
    NET_EINVALID = -8,   /* bad PEM material or parameter */
    NET_EIO = -9,        /* a system call failed */
    NET_ETOOBIG = -10,   /* a frame over NET_MAX_FRAME */
};

const char *net_strerror(int code);

/* ---- Messages ---- */

enum net_msg_type {
    NET_MSG_ERROR = 1,        /* code, text */
    NET_MSG_BUNDLE_REQ = 2,   /* (nothing) */
    NET_MSG_BUNDLE_RESP = 3,  /* bundle_pem */
    NET_MSG_JOIN_REQ = 4,     /* token, csr_pem, hostname, addr (managers) */
    NET_MSG_JOIN_RESP = 5,    /* node_id, role, cluster_id, cert_pem, bundle_pem */
    NET_MSG_HEARTBEAT_REQ = 6,  /* hostname */
    NET_MSG_HEARTBEAT_RESP = 7, /* period_ms, list (manager addresses) */
    NET_MSG_RENEW_REQ = 8,      /* csr_pem */
    NET_MSG_RENEW_RESP = 9,     /* cert_pem, bundle_pem */
    NET_MSG_CONTROL_REQ = 10,   /* list: the command's arguments */
    NET_MSG_CONTROL_RESP = 11,  /* code: exit status or NET_CONTROL_PART, text: output */
    NET_MSG_RAFT = 12,          /* bin: one Raft message (net_raft_encode); no response */
    NET_MSG_MEMBER_REQ = 13,    /* raft_id, addr: a new manager requests Raft membership */
    NET_MSG_OK = 14,            /* (nothing): a request succeeded */
    NET_MSG_TYPE_MAX = 14,
};

/* The code of a CONTROL_RESP that carries one part of a long output. More
 * responses to the same request follow, and the last one has the exit
 * status. */
#define NET_CONTROL_PART (-1)

/* Any request may also carry origin_cn, origin_ou, origin_org and
 * origin_addr: the identity of the node a manager forwards the request for.
 * A receiver honors them only from a peer with a manager certificate.
 * JOIN_RESP carries raft_id for a new manager, and index, the log index of
 * its entry, so that a follower that relays it can wait until it applied
 * that entry itself. */

/* Error codes a NET_MSG_ERROR carries, so a client can tell causes apart. */
enum net_status {
    NET_STATUS_INTERNAL = 1,
    NET_STATUS_BAD_REQUEST = 2,
    NET_STATUS_TOKEN_INVALID = 3,  /* token does not match any current token */
    NET_STATUS_DENIED = 4,         /* certificate not allowed for the request */
    NET_STATUS_UNSUPPORTED = 5,
    NET_STATUS_UNAVAILABLE = 6,    /* no leader, shutting down */
    NET_STATUS_BAD_CSR = 7,
};

/* Bounds the decoder enforces, in bytes or items. */
#define NET_MAX_PEM 65536
#define NET_MAX_SHORT 256
#define NET_MAX_TEXT (1024 * 1024)
#define NET_MAX_LIST 64
/* A binary field: the largest frame less room for the other fields. */
#define NET_MAX_BIN (NET_MAX_FRAME - 64 * 1024)

/* One message. Which fields a type uses is listed in enum net_msg_type;
 * unused pointers are NULL and unused numbers 0. Strings are
 * NUL-terminated and owned by the message. */
typedef struct net_msg {
    uint32_t type;
    uint64_t id; /* request id; a response repeats the request's */
    int32_t code;
    uint32_t period_ms;
    char *text;
    char *token;
    char *csr_pem;
    char *cert_pem;
    char *bundle_pem;
    char *node_id;
    char *role;
    char *cluster_id;
    char *hostname;
    char *addr;
    char **list;
    uint32_t list_len;
    uint64_t raft_id;
    unsigned char *bin;
    size_t bin_len;
    char *origin_cn;
    char *origin_ou;
    char *origin_org;
    char *origin_addr;
    uint64_t index; /* JOIN_RESP: the log index of the entry that issued the certificate */
} net_msg;

/* Frees every field and zeroes the message; the struct itself is the
 * caller's. Wipes token before freeing it. */
void net_msg_clear(net_msg *m);

/* Encodes m as a frame: 4-byte length, then msgpack. *out is malloc'ed. */
int net_msg_encode(const net_msg *m, unsigned char **out, size_t *len, char *errmsg);

/* Decodes the msgpack body of one frame (without the length prefix). Checks
 * every field's type and bound and that the type's required fields are set;
 * bad input gives NET_EPROTO and leaves *out cleared. */
int net_msg_decode(const unsigned char *data, size_t len, net_msg *out, char *errmsg);

/* Sets m to a NET_MSG_ERROR in response to request id. text is copied. */
int net_msg_error(net_msg *m, uint64_t id, int32_t code, const char *text);

/* ---- Raft messages ---- */

struct raft_message;

/* Encodes a Raft message (with its entries, configuration or snapshot chunk)
 * into a new malloc'ed buffer for a NET_MSG_RAFT bin field. */
int net_raft_encode(const struct raft_message *m, unsigned char **out, size_t *len,
                    char *errmsg);

/* Decodes a NET_MSG_RAFT bin field into *out, which owns its entries, entry
 * data, configuration arrays and chunk data afterwards (release with
 * net_raft_free). Every count, length and enum is checked: bad input gives
 * NET_EPROTO and leaves *out zeroed. */
int net_raft_decode(const unsigned char *data, size_t len, struct raft_message *out,
                    char *errmsg);

/* Frees what net_raft_decode allocated and zeroes *m. */
void net_raft_free(struct raft_message *m);

/* ---- TLS material ---- */

typedef struct net_tls net_tls;

/* Builds TLS settings from PEM text. chain_pem (leaf, then intermediates)
 * and key_pem may both be NULL for a client without a certificate.
 * bundle_pem may be NULL only for a client that verifies nothing during the
 * handshake (a joiner before it trusts the manager); such a client must
 * check the peer chain itself, with net_conn_peer_x509 and ca_verify_x509
 * or with net_conn_peer_chain. A client with a bundle requires the
 * server's leaf to carry the DNS SAN swarm-manager.
 * A server asks for a client certificate, verifies it against the bundle
 * when one is sent, and accepts a connection without one. */
int net_tls_new(int is_server, const char *chain_pem, const char *key_pem,
                const char *bundle_pem, net_tls **out, char *errmsg);
void net_tls_free(net_tls *tls);

/* ---- Connections ---- */

typedef struct net_conn net_conn;

/* Identity of the peer's verified certificate. has_cert is 0 for a peer
 * that sent none (or for any peer of a Unix socket). */
typedef struct net_peer {
    int has_cert;
    char common_name[64];
    char org_unit[64];
    char org[64];
    char addr[64]; /* remote IP:port, "unix" for the control socket */
} net_peer;

typedef struct net_conn_cb {
    /* Client only: the handshake finished (status 0) or the connection
     * failed before it did (status < 0, text in errmsg); after a failure
     * on_close follows. */
    void (*on_connect)(net_conn *c, int status, const char *errmsg, void *data);
    /* A decoded message. The callee owns *m and clears it. */
    void (*on_msg)(net_conn *c, net_msg *m, void *data);
    /* Called exactly once when the connection is gone; status 0 for a close
     * asked for by net_conn_close, else the reason. The connection's memory
     * is released right after this returns. */
    void (*on_close)(net_conn *c, int status, const char *reason, void *data);
} net_conn_cb;

/* Opens a connection to HOST:PORT. With tls NULL, addr is a Unix socket
 * path and no TLS is used. The connect, TCP and TLS handshake together time
 * out after timeout_ms. On success the callbacks are called later; on a
 * failure returned here none is called. */
int net_connect(uv_loop_t *loop, const char *addr, net_tls *tls, uint32_t timeout_ms,
                const net_conn_cb *cb, void *data, net_conn **out, char *errmsg);

/* Queues m for sending. Fails with NET_ECLOSED after close started. */
int net_conn_send(net_conn *c, const net_msg *m, char *errmsg);

/* Starts closing; on_close follows once, with status 0. */
void net_conn_close(net_conn *c);

void net_conn_peer(const net_conn *c, net_peer *out);

/* Copies the certificate chain the peer presented, as PEM, or NULL if it
 * sent none. The caller frees the result with free(). */
char *net_conn_peer_chain(const net_conn *c);

/* Returns the peer's certificate (an OpenSSL X509 *) and the chain it sent
 * (a STACK_OF(X509) *, which on a client connection starts with that
 * certificate), for ca_verify_x509, or NULL for both when it sent none.
 * The connection owns them until on_close returns. They are typed void so
 * that callers need no OpenSSL header. */
void net_conn_peer_x509(const net_conn *c, const void **leaf, const void **chain);

void net_conn_set_data(net_conn *c, void *data);
void *net_conn_data(const net_conn *c);

/* ---- Servers ---- */

typedef struct net_server net_server;

typedef struct net_server_cb {
    /* A new connection passed its handshake. Return the per-connection
     * callbacks' data pointer. */
    void *(*on_accept)(net_server *s, net_conn *c, void *data);
    void (*on_msg)(net_conn *c, net_msg *m, void *conn_data);
    void (*on_close)(net_conn *c, int status, const char *reason, void *conn_data);
    /* Something the server rejected before a connection was accepted
     * (failed handshake, handshake timeout, oversized frame, bad TLS
     * record): peer address and reason, for node/ to log. */
    void (*on_reject)(net_server *s, const char *peer_addr, const char *reason, void *data);
} net_server_cb;

/* Listens on HOST:PORT with TLS (port 0 picks a free port), or with tls
 * NULL on the Unix socket path addr (created with mode 0600, replacing a
 * stale socket file). The server keeps its own reference to tls. */
int net_server_start(uv_loop_t *loop, const char *addr, net_tls *tls,
                     const net_server_cb *cb, void *data, net_server **out, char *errmsg);

/* Returns the TCP port the server listens on, or 0 for a Unix socket. */
int net_server_port(const net_server *s);

/* Sets the handshake time limit, in milliseconds, for connections accepted
 * from now on; 0 restores NET_HANDSHAKE_TIMEOUT_MS. */
void net_server_set_handshake_timeout(net_server *s, uint32_t timeout_ms);

/* Replaces the TLS material used for connections accepted from now on. */
void net_server_set_tls(net_server *s, net_tls *tls);

/* Stops listening and closes every connection; done is called once all
 * handles are closed, after which the server's memory is gone. */
void net_server_stop(net_server *s, void (*done)(void *data), void *data);

/* ---- Blocking calls, for the command line only ---- */

/* Connects (tls NULL: Unix socket path), sends req, waits for one message
 * and stores it in *resp, all within timeout_ms, on a private loop. When
 * peer_chain is not NULL it receives the peer's PEM chain (free()). Never
 * call this on an event-loop thread. */
int net_call(const char *addr, net_tls *tls, const net_msg *req, uint32_t timeout_ms,
             net_msg *resp, char **peer_chain, char *errmsg);

/* A connection for several blocking requests in turn, on its own private
 * loop; for the command line only. */
typedef struct net_caller net_caller;

/* Connects and completes the handshake within timeout_ms. When peer_chain
 * is not NULL it receives the peer's PEM chain (free()). */
int net_caller_open(const char *addr, net_tls *tls, uint32_t timeout_ms, net_caller **out,
                    char **peer_chain, char *errmsg);

/* Sends req and waits up to timeout_ms for the next message, stored in
 * *resp. A timeout or failure closes the connection, so every later call
 * fails at once. */
int net_caller_call(net_caller *cl, const net_msg *req, uint32_t timeout_ms, net_msg *resp,
                    char *errmsg);

/* Returns the peer's certificate and chain as net_conn_peer_x509 does. They
 * stay valid until net_caller_close. */
void net_caller_peer_x509(const net_caller *cl, const void **leaf, const void **chain);

/* Waits up to timeout_ms for the next message without sending anything, for
 * a response in several parts; fails as net_caller_call does. */
int net_caller_receive(net_caller *cl, uint32_t timeout_ms, net_msg *resp, char *errmsg);

/* Closes the connection and frees cl. cl may be NULL. */
void net_caller_close(net_caller *cl);

/* Checks the form of HOST:PORT (port 1 to 65535, an IPv6 address in
 * brackets) without resolving the host. */
int net_addr_check(const char *addr, char *errmsg);

/* Returns 1 when addr is a valid HOST:PORT whose host is 0.0.0.0 or [::],
 * which a server may listen on but no peer can connect to. */
int net_addr_is_unspecified(const char *addr);

/* Parses HOST:PORT (IPv4, [IPv6] or a host name resolved with
 * getaddrinfo) into out. */
int net_addr_parse(const char *addr, struct sockaddr_storage *out, char *errmsg);

#endif
