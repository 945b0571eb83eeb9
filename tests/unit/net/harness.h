/* Test harness: a net server running on its own thread and loop, so that a
 * test can drive blocking clients (net_call, raw sockets, raw OpenSSL) from
 * the main thread. Every socket is on 127.0.0.1 or in a temporary directory. */
#ifndef SWARMPKI_TEST_NET_HARNESS_H
#define SWARMPKI_TEST_NET_HARNESS_H

#include <net/net.h>
#include <openssl/ssl.h>

/* Events the echo server saw. Read the counters with fixture_wait or
 * fixture_count while the server runs. */
typedef struct fixture {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_mutex_t lock;
    net_server *server;
    char addr[128];
    int port;
    int accepts;
    int rejects;
    int closes;
    int msgs;
    int done;
    int last_close_status;
    char last_close_reason[NET_ERRMSG_SIZE];
    char last_reject[NET_ERRMSG_SIZE];
    net_peer last_peer;
} fixture;

/* Starts an echo server on addr ("127.0.0.1:0" or a socket path) in a new
 * thread. handshake_ms 0 keeps the default timeout. Returns 0 or a NET_E*
 * code with errmsg set. */
int fixture_start(fixture *f, const char *addr, net_tls *tls, uint32_t handshake_ms,
                  char *errmsg);

/* Stops the server, joins the thread and closes the loop. Returns the
 * result of uv_loop_close (0 when every handle was closed). */
int fixture_stop(fixture *f);

/* Waits up to timeout_ms for *counter to reach value. Returns its value. */
int fixture_wait(fixture *f, const int *counter, int value, int timeout_ms);

/* Reads *counter under the fixture's lock. */
int fixture_count(fixture *f, const int *counter);

/* Sends the echo server's response to req and clears req. Exposed for
 * tests that run their own server loop. */
void echo_answer(net_conn *c, net_msg *req);

/* A blocking TCP socket connected to 127.0.0.1:port with a 5 s receive
 * timeout and Nagle's algorithm off, or -1. */
int raw_connect(int port);

/* A blocking Unix socket connected to path, or -1. */
int raw_connect_unix(const char *path);

/* Waits up to 5 s for the peer to close fd (read returns 0 or an error).
 * Returns 1 when it did. */
int raw_wait_closed(int fd);

/* Runs a blocking TLS client handshake on fd with no verification and an
 * optional client certificate. Returns NULL on failure. */
SSL *raw_tls(int fd, const char *cert_pem, const char *key_pem, SSL_CTX **ctx_out);

/* Reads one frame and decodes it. Returns 0 or -1. ssl NULL reads from fd. */
int raw_read_msg(SSL *ssl, int fd, net_msg *m);

/* Writes all of data. Returns 0 or -1. ssl NULL writes to fd. */
int raw_write(SSL *ssl, int fd, const void *data, size_t len);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int free_port(void);

/* Milliseconds on a monotonic clock. */
uint64_t now_ms(void);

#endif
