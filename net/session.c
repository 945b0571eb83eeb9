/* The TLS engine: one SSL object between two memory BIOs, so that OpenSSL
 * never touches a socket and libuv does all the I/O without blocking. */
#include "internal.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>

int net__session_init(net_session *s, SSL_CTX *ctx, bool is_server, char *errmsg)
{
    s->ssl = SSL_new(ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
        SSL_free(s->ssl);
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        s->ssl = NULL;
        ERR_clear_error();
        return net__fail(errmsg, NET_ENOMEM, "out of memory creating a TLS connection");
    }

    /* An empty BIO means "wait for more bytes", not end of input. */
    BIO_set_mem_eof_return(s->rbio, -1);
    BIO_set_mem_eof_return(s->wbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    if (is_server) {
        SSL_set_accept_state(s->ssl);
    } else {
        SSL_set_connect_state(s->ssl);
    }
    return 0;
}

void net__session_free(net_session *s)
{
    /* SSL_free also frees both BIOs, which SSL_set_bio handed over. */
    SSL_free(s->ssl);
    s->ssl = NULL;
    s->rbio = NULL;
    s->wbio = NULL;
}

int net__session_feed(net_session *s, const void *data, size_t len)
{
    if (len > INT_MAX || BIO_write(s->rbio, data, (int)len) != (int)len) {
        return NET_ENOMEM;
    }
    return 0;
}

/* Describes why the last SSL call failed, with the verification error when
 * the peer's certificate was at fault, and clears the error queue. */
static void describe_failure(net_session *s, int ret, char *reason, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    const char *what = e != 0 ? ERR_reason_error_string(e) : NULL;
    bool verifying = (SSL_get_verify_mode(s->ssl) & SSL_VERIFY_PEER) != 0;
    long verify = verifying ? SSL_get_verify_result(s->ssl) : X509_V_OK;
    int err = SSL_get_error(s->ssl, ret);

    if (what == NULL) {
        what = err == SSL_ERROR_SYSCALL ? "unexpected end of TLS data" : "no detail";
    }
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH) {
        snprintf(reason, size, "%s (the certificate lacks the DNS SAN swarm-manager)",
                 what);
    } else if (verify != X509_V_OK) {
        snprintf(reason, size, "%s (%s)", what, X509_verify_cert_error_string(verify));
    } else {
        snprintf(reason, size, "%s", what);
    }
    ERR_clear_error();
}

int net__session_handshake(net_session *s, char *reason, size_t size)
{
    int ret;
    int err;

    ERR_clear_error();
    ret = SSL_do_handshake(s->ssl);
    if (ret == 1) {
        return 1;
    }
    err = SSL_get_error(s->ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return 0;
    }
    describe_failure(s, ret, reason, size);
    return NET_ETLS;
}

int net__session_read(net_session *s, void *buf, size_t cap, char *reason, size_t size)
{
    int ret;
    int err;

    ERR_clear_error();
    ret = SSL_read(s->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (ret > 0) {
        return ret;
    }
    err = SSL_get_error(s->ssl, ret);
    if (err == SSL_ERROR_WANT_READ) {
        return 0;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
        return NET_ECLOSED;
    }
    describe_failure(s, ret, reason, size);
    return NET_ETLS;
}

int net__session_write(net_session *s, const void *data, size_t len, char *reason,
                       size_t size)
{
    const unsigned char *p = data;

    /* A memory BIO accepts every record, so SSL_write either takes the whole
     * chunk or fails. */
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        int ret;

        ERR_clear_error();
        ret = SSL_write(s->ssl, p, chunk);
        if (ret <= 0) {
            describe_failure(s, ret, reason, size);
            return NET_ETLS;
        }
        p += ret;
        len -= (size_t)ret;
    }
    return 0;
}

void net__session_shutdown(net_session *s)
{
    ERR_clear_error();
    if (SSL_is_init_finished(s->ssl)) {
        SSL_shutdown(s->ssl);
    }
    ERR_clear_error();
}

int net__session_take_output(net_session *s, unsigned char **out, size_t *len)
{
    size_t pending = BIO_ctrl_pending(s->wbio);

    *out = NULL;
    *len = 0;
    if (pending == 0) {
        return 0;
    }
    if (pending > INT_MAX) {
        return NET_ENOMEM;
    }
    *out = malloc(pending);
    if (*out == NULL) {
        return NET_ENOMEM;
    }
    if (BIO_read(s->wbio, *out, (int)pending) != (int)pending) {
        free(*out);
        *out = NULL;
        return NET_ENOMEM;
    }
    *len = pending;
    return 0;
}

bool net__session_peer_verified(const net_session *s)
{
    return (SSL_get_verify_mode(s->ssl) & SSL_VERIFY_PEER) &&
           SSL_get0_peer_certificate(s->ssl) != NULL &&
           SSL_get_verify_result(s->ssl) == X509_V_OK;
}
