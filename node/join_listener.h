/* The listener a joining manager runs during its join request. */
#ifndef SWARMPKI_NODE_JOIN_LISTENER_H
#define SWARMPKI_NODE_JOIN_LISTENER_H

#include <stddef.h>

#define JOIN_LISTENER_ERRMSG_SIZE 512

typedef struct join_listener join_listener;

/* Listens on listen_addr with TLS and a self-signed certificate for key_pem,
 * on a thread of its own, because the join request blocks the calling
 * thread. The leader connects to the advertised address and checks that
 * this key is served there before it signs the join. bundle_pem is the
 * pinned trust bundle, which the server needs for client certificates. */
int join_listener_start(const char *listen_addr, const char *key_pem, size_t key_len,
                        const char *bundle_pem, join_listener **out, char *errmsg);

/* Stops listening, closes every connection and frees l. l may be NULL. */
void join_listener_stop(join_listener *l);

#endif
