/* Private to net/: the structures and helpers that the module's files share.
 * Functions named net__* are internal, and only net/net.h is public. */
#ifndef SWARMPKI_NET_INTERNAL_H
#define SWARMPKI_NET_INTERNAL_H

#include <net/net.h>

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_PRINTF(fmt_index, first_arg)                                                 \
    __attribute__((format(printf, fmt_index, first_arg)))

/* Bytes handed to libuv for one read, and the largest plaintext chunk that
 * SSL_read returns at once (one TLS record carries at most 16 KiB). */
#define NET_READ_CHUNK 16384

/* Time a graceful close may spend flushing queued writes before the
 * connection is closed without them, in milliseconds. */
#define NET_CLOSE_TIMEOUT_MS 5000

/* Writes one sentence into errmsg (NULL is allowed) and returns code. */
int net__fail(char *errmsg, int code, const char *fmt, ...) NET_PRINTF(3, 4);

/* Formats a duration in milliseconds as seconds ("10", "0.4") for messages. */
void net__format_seconds(uint32_t ms, char *buf, size_t size);

/* Wipes and frees an encoder's buffer, which may hold a token or key
 * material. */
struct msgpack_sbuffer;
void net__sbuffer_wipe(struct msgpack_sbuffer *sbuf);

/* ---- Message fields, shared by the encoder and the decoder ---- */

enum net_field_kind {
    NET_FIELD_UINT,
    NET_FIELD_INT32,
    NET_FIELD_STR,
    NET_FIELD_LIST,
    NET_FIELD_BIN,
};

enum net_field_index {
    NET_F_TYPE,
    NET_F_ID,
    NET_F_CODE,
    NET_F_PERIOD,
    NET_F_TEXT,
    NET_F_TOKEN,
    NET_F_CSR,
    NET_F_CERT,
    NET_F_BUNDLE,
    NET_F_NODE,
    NET_F_ROLE,
    NET_F_CLUSTER,
    NET_F_HOST,
    NET_F_ADDR,
    NET_F_LIST,
    NET_F_RAFT_ID,
    NET_F_BIN,
    NET_F_ORIGIN_CN,
    NET_F_ORIGIN_OU,
    NET_F_ORIGIN_ORG,
    NET_F_ORIGIN_ADDR,
    NET_F_INDEX,
    NET_F_COUNT,
};

/* One key of the wire map. The meaning of max depends on the kind. For
 * NET_FIELD_UINT it is the largest value, and for strings and binary values
 * the largest length in bytes. For the list it is the largest item count,
 * and each item is at most NET_MAX_SHORT bytes. */
typedef struct net_field {
    const char *key;
    enum net_field_kind kind;
    size_t offset; /* of the member in net_msg */
    uint64_t max;
} net_field;

extern const net_field net__fields[NET_F_COUNT];

/* Returns the bit set (1 << net_field_index) of fields that a message of the
 * given type must carry, or 0 for a type outside 1..NET_MSG_TYPE_MAX. */
uint32_t net__required_fields(uint32_t type);

/* ---- A bounded msgpack reader (unpack.c) ---- */

/* The input not yet read. */
typedef struct net_unpacker {
    const unsigned char *p;
    size_t left;
} net_unpacker;

/* NET_HEAD_OPAQUE covers ext and float values, which no decoder uses. */
enum net_head_kind {
    NET_HEAD_UINT,
    NET_HEAD_NEGATIVE,
    NET_HEAD_STR,
    NET_HEAD_BIN,
    NET_HEAD_OPAQUE,
    NET_HEAD_ARRAY,
    NET_HEAD_MAP,
    NET_HEAD_NIL,
    NET_HEAD_BOOL,
};

/* The header of one value. u is the value of a non-negative integer (also
 * one in a signed format), or 1 or 0 for a boolean. i is a negative integer.
 * For strings, binary and opaque values, size is the number of payload bytes
 * that follow, not yet read. For arrays and maps, it is the number of
 * elements or pairs that the input claims. */
typedef struct net_head {
    enum net_head_kind kind;
    uint64_t u;
    int64_t i;
    uint64_t size;
} net_head;

/* Each returns 0, or -1 when the input ends too early or contains the unused
 * format byte 0xc1. None of them allocates. */

/* Points *out at the next n bytes and moves past them. */
int net__unpack_take(net_unpacker *u, size_t n, const unsigned char **out);

/* Reads the header of the next value, leaving any payload or elements. */
int net__unpack_head(net_unpacker *u, net_head *h);

/* Moves past one whole value of any shape and nesting depth. */
int net__unpack_skip(net_unpacker *u);

/* ---- Raft message bounds (raft_codec.c) ---- */

/* Largest number of entries in one AppendEntries message. */
#define NET_RAFT_MAX_ENTRIES 100000
/* Largest number of servers, and of removed ids, in a snapshot chunk's
 * configuration. It is far above any real cluster and keeps the arrays a
 * decoder allocates to 1 MiB or less.
 * NOTE: the core's removed list only grows, so a cluster with more removals
 * than this could no longer send snapshots. */
#define NET_RAFT_MAX_IDS 65536

/* ---- Addresses ---- */

/* Splits "HOST:PORT" or "[IPv6]:PORT" into host (brackets removed) and
 * port. Port 0 passes only when allow_zero is set, for listeners. */
int net__addr_split(const char *addr, bool allow_zero, char *host, size_t host_size,
                    uint16_t *port, char *errmsg);

/* Fills out and returns 0 when host is an IPv4 or IPv6 literal. Returns
 * NET_EADDR for a name, which the caller resolves. */
int net__addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *out);

/* Parses and, for a name, resolves addr with a blocking getaddrinfo. */
int net__addr_resolve(const char *addr, bool allow_zero, struct sockaddr_storage *out,
                      char *errmsg);

/* Writes "IP:PORT" or "[IPv6]:PORT", or "unknown" for other families. */
void net__addr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Checks that path fits in sockaddr_un.sun_path with its NUL. */
int net__unix_path_check(const char *path, char *errmsg);

/* ---- TLS ---- */

struct net_tls {
    SSL_CTX *ctx;
    bool is_server;
    bool has_bundle;
};

/* One TLS connection driven through memory BIOs, so that libuv owns the
 * socket: the peer's bytes go into rbio, bytes for the peer come out of wbio.
 * Reason buffers receive OpenSSL's short description of a failure. */
typedef struct net_session {
    SSL *ssl;
    BIO *rbio;
    BIO *wbio;
} net_session;

int net__session_init(net_session *s, SSL_CTX *ctx, bool is_server, char *errmsg);
void net__session_free(net_session *s);

/* Appends ciphertext received from the peer. */
int net__session_feed(net_session *s, const void *data, size_t len);

/* Advances the handshake: 1 once it is complete, 0 while it needs more
 * input, NET_ETLS with a reason when it failed. */
int net__session_handshake(net_session *s, char *reason, size_t size);

/* Decrypts: the number of plaintext bytes, 0 when more input is needed,
 * NET_ECLOSED after the peer's close_notify, NET_ETLS on a bad record. */
int net__session_read(net_session *s, void *buf, size_t cap, char *reason, size_t size);

/* Encrypts all of data into the outgoing buffer. */
int net__session_write(net_session *s, const void *data, size_t len, char *reason,
                       size_t size);

/* Queues a close_notify alert for the peer. */
void net__session_shutdown(net_session *s);

/* Moves the pending ciphertext for the peer into a malloc'ed buffer, or
 * sets *out to NULL when there is none. */
int net__session_take_output(net_session *s, unsigned char **out, size_t *len);

/* True when the peer presented a certificate that verified against the
 * trust bundle during the handshake. */
bool net__session_peer_verified(const net_session *s);

/* ---- Frame reassembly ---- */

/* Bytes received but not yet returned as frames. The buffer grows only with
 * bytes actually received, so it never exceeds one frame plus one chunk. */
typedef struct net_frame_reader {
    unsigned char *buf;
    size_t start; /* offset of the first byte not yet returned */
    size_t len;   /* bytes in use, from offset 0 */
    size_t cap;
} net_frame_reader;

int net__frame_append(net_frame_reader *r, const void *data, size_t len, char *errmsg);

/* Returns 1 and points body at the next complete frame (valid until the
 * next append), 0 when more bytes are needed, NET_EPROTO for a zero length
 * and NET_ETOOBIG for a length over NET_MAX_FRAME. */
int net__frame_next(net_frame_reader *r, const unsigned char **body, size_t *len,
                    char *errmsg);

void net__frame_free(net_frame_reader *r);

/* ---- Connections ---- */

enum net_conn_state {
    NET_CONN_NEW,        /* not connected, nothing pending */
    NET_CONN_RESOLVING,  /* client: waiting for getaddrinfo */
    NET_CONN_CONNECTING, /* client: waiting for connect */
    NET_CONN_HANDSHAKE,  /* TLS handshake running */
    NET_CONN_OPEN,       /* frames flow */
    NET_CONN_CLOSING,    /* handles closing; no callback but on_close follows */
};

struct net_conn {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    /* Connect or handshake deadline, then the graceful close deadline. */
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uv_getaddrinfo_t resolve_req;
    /* Open handles plus a pending getaddrinfo. The memory is freed when the
     * count reaches zero. */
    int refs;
    enum net_conn_state state;
    bool use_tls;
    bool is_client;
    bool verified;
    bool accepted; /* server side: on_accept was called */
    bool silent;   /* a start that failed: close without any callback */
    net_session tls;
    net_frame_reader reader;
    /* Plaintext frames sent before the connection opened. */
    unsigned char *pending;
    size_t pending_len;
    net_server *server;
    net_conn *prev;
    net_conn *next;
    net_conn_cb cb;
    void *data;
    int close_status;
    char close_reason[NET_ERRMSG_SIZE];
    /* Client: the address as the caller wrote it. Server: peer IP:port. */
    char name[NET_MAX_SHORT + 1];
    char peer_addr[64];
    uint32_t timeout_ms;
    unsigned char read_buf[NET_READ_CHUNK];
};

/* Allocates a connection with its stream (TCP, or a pipe when is_pipe) and
 * timer initialized. refs counts both handles. */
int net__conn_new(uv_loop_t *loop, bool is_pipe, net_conn **out, char *errmsg);

/* Starts reading on a connected stream, then the TLS handshake or, without
 * TLS, opens the connection at once. */
void net__conn_start(net_conn *c);

/* Closes c with a failure status and a reason (status 0 for a requested
 * close). graceful flushes queued bytes first. A client that had not opened
 * yet gets on_connect with the failure. Does nothing once closing. */
void net__conn_fail(net_conn *c, int status, bool graceful, const char *fmt, ...)
    NET_PRINTF(4, 5);

/* Starts the connect or handshake deadline of timeout_ms milliseconds. */
void net__conn_arm_timer(net_conn *c, uint32_t timeout_ms);

/* Closes c at once with status 0, also when a graceful close is already
 * waiting for queued writes. */
void net__conn_abort(net_conn *c, const char *reason);

/* Closes a connection whose start failed, without calling any callback. */
void net__conn_discard(net_conn *c);

/* Drops one reference. The last one reports the close and frees c. */
void net__conn_release(net_conn *c);

/* ---- Servers, called by the connection code ---- */

struct net_server {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    SSL_CTX *ctx; /* own reference; NULL for a Unix socket */
    net_server_cb cb;
    void *data;
    net_conn *conns;
    uint32_t handshake_timeout_ms;
    int port;
    char *unix_path;
    bool listener_open;
    bool stopping;
    void (*done)(void *data);
    void *done_data;
};

/* Hands a connection that passed its handshake to the server's on_accept. */
void net__server_accept(net_conn *c);

/* Reports a closed server-side connection (on_close if it was accepted,
 * else on_reject, and nothing for a discarded one) and unlinks it from its
 * server. */
void net__server_conn_closed(net_conn *c);

/* Frees a stopping server once its listener and connections are gone. */
void net__server_maybe_done(net_server *s);

#endif
