/* TLS settings: one SSL_CTX per net_tls, built from PEM text. */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only, for the ECDSA
 * P-256 keys that every node uses. TLS 1.3 keeps OpenSSL's default suites,
 * which are all AEAD. */
#define TLS12_CIPHERS                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                       \
    "ECDHE-ECDSA-CHACHA20-POLY1305"

/* The DNS SAN a server's leaf certificate must carry. Clients never check a
 * host name, because managers are reached by address. */
#define MANAGER_SAN "swarm-manager"

/* Keys are unencrypted. This callback keeps OpenSSL from prompting on a
 * terminal when it meets an encrypted one. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/* Writes what, then OpenSSL's reason for the latest error, into errmsg and
 * clears the error queue. */
static int tls_fail(char *errmsg, int code, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return net__fail(errmsg, code, "%s: %s", what, reason != NULL ? reason : "no detail");
}

/* Tells the end of PEM input, which OpenSSL reports as a "no start line"
 * error, from a damaged PEM block, and clears the error queue. */
static bool pem_ended(char *errmsg, const char *what)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0 ||
        (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        ERR_clear_error();
        return true;
    }
    tls_fail(errmsg, NET_EINVALID, what);
    return false;
}

static int configure_protocol(SSL_CTX *ctx, bool is_server, char *errmsg)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        return tls_fail(errmsg, NET_ETLS, "cannot restrict TLS versions and suites");
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_TICKET);
    /* Connections are long-lived and never resumed, so no session state. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Peers get exactly the chain the caller configured, because OpenSSL
     * would otherwise append certificates from the trust bundle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    if (is_server && SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        return tls_fail(errmsg, NET_ETLS, "cannot turn off TLS 1.3 session tickets");
    }
    return 0;
}

/* Loads the leaf, then any intermediates, then the matching key. */
static int load_identity(SSL_CTX *ctx, const char *chain_pem, const char *key_pem,
                         char *errmsg)
{
    BIO *bio = BIO_new_mem_buf(chain_pem, -1);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
    EVP_PKEY *key = NULL;
    int rv = 0;

    if (cert == NULL || SSL_CTX_use_certificate(ctx, cert) != 1) {
        X509_free(cert);
        rv = tls_fail(errmsg, NET_EINVALID, "invalid certificate chain PEM");
        goto out;
    }
    X509_free(cert);
    while ((cert = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, cert) != 1) {
            X509_free(cert);
            rv = tls_fail(errmsg, NET_EINVALID, "cannot add an intermediate certificate");
            goto out;
        }
    }
    if (!pem_ended(errmsg, "invalid intermediate certificate in the chain PEM")) {
        rv = NET_EINVALID;
        goto out;
    }
    BIO_free(bio);

    bio = BIO_new_mem_buf(key_pem, -1);
    key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    if (key == NULL) {
        rv = tls_fail(errmsg, NET_EINVALID, "invalid private key PEM");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rv = tls_fail(errmsg, NET_EINVALID,
                      "the private key does not match the leaf certificate");
    }
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rv;
}

static int load_bundle(SSL_CTX *ctx, const char *bundle_pem, char *errmsg)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(bundle_pem, -1);
    X509 *cert;
    int count = 0;

    if (bio == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory reading the trust bundle");
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, cert);

        X509_free(cert);
        if (ok != 1) {
            BIO_free(bio);
            return tls_fail(errmsg, NET_EINVALID,
                            "cannot add a trust bundle certificate");
        }
        count++;
    }
    BIO_free(bio);
    if (!pem_ended(errmsg, "invalid certificate in the trust bundle PEM")) {
        return NET_EINVALID;
    }
    if (count == 0) {
        return net__fail(errmsg, NET_EINVALID,
                         "the trust bundle contains no PEM certificate");
    }
    return 0;
}

/* A client with a bundle accepts only a server whose leaf carries the DNS
 * SAN swarm-manager, matched exactly, with no wildcard and no fallback to
 * the subject's common name. */
static int require_manager_san(SSL_CTX *ctx, char *errmsg)
{
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);

    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_WILDCARDS |
                                               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (X509_VERIFY_PARAM_set1_host(param, MANAGER_SAN, 0) != 1) {
        return tls_fail(errmsg, NET_ETLS, "cannot require the server name swarm-manager");
    }
    return 0;
}

static int check_arguments(int is_server, const char *chain_pem, const char *key_pem,
                           const char *bundle_pem, net_tls **out, char *errmsg)
{
    if (out == NULL) {
        return net__fail(errmsg, NET_EINVALID, "no place to store the TLS settings");
    }
    if ((chain_pem == NULL) != (key_pem == NULL)) {
        return net__fail(errmsg, NET_EINVALID,
                         "a certificate chain and a private key go together; pass both "
                         "or neither");
    }
    if (is_server && (chain_pem == NULL || bundle_pem == NULL)) {
        return net__fail(errmsg, NET_EINVALID,
                         "a TLS server needs a certificate chain, a key and a trust "
                         "bundle");
    }
    return 0;
}

int net_tls_new(int is_server, const char *chain_pem, const char *key_pem,
                const char *bundle_pem, net_tls **out, char *errmsg)
{
    net_tls *tls;
    int rv;

    rv = check_arguments(is_server, chain_pem, key_pem, bundle_pem, out, errmsg);
    if (rv != 0) {
        return rv;
    }
    *out = NULL;
    tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory creating TLS settings");
    }
    tls->is_server = is_server != 0;
    tls->has_bundle = bundle_pem != NULL;
    tls->ctx = SSL_CTX_new(TLS_method());
    if (tls->ctx == NULL) {
        free(tls);
        return tls_fail(errmsg, NET_ENOMEM, "cannot create a TLS context");
    }

    rv = configure_protocol(tls->ctx, tls->is_server, errmsg);
    if (rv == 0 && chain_pem != NULL) {
        rv = load_identity(tls->ctx, chain_pem, key_pem, errmsg);
    }
    if (rv == 0 && bundle_pem != NULL) {
        rv = load_bundle(tls->ctx, bundle_pem, errmsg);
    }
    if (rv == 0 && !tls->is_server && tls->has_bundle) {
        rv = require_manager_san(tls->ctx, errmsg);
    }
    if (rv != 0) {
        net_tls_free(tls);
        return rv;
    }

    /* Without SSL_VERIFY_FAIL_IF_NO_PEER_CERT a server accepts clients that
     * send no certificate, but one that sends a certificate must verify. */
    SSL_CTX_set_verify(tls->ctx, tls->has_bundle ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
    *out = tls;
    return 0;
}

void net_tls_free(net_tls *tls)
{
    if (tls == NULL) {
        return;
    }
    SSL_CTX_free(tls->ctx);
    free(tls);
}
