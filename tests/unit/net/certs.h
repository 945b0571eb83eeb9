/* Test certificates made with libcrypto: ECDSA P-256 roots and leaves. */
#ifndef SWARMPKI_TEST_NET_CERTS_H
#define SWARMPKI_TEST_NET_CERTS_H

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct test_cert {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem;
    char *key_pem;
} test_cert;

/* Creates a self-signed CA certificate with the given common name. */
test_cert *test_cert_root(const char *cn);

/* Creates a leaf signed by issuer with subject CN, OU and O, extended key
 * usage serverAuth and clientAuth, and san as an OpenSSL subjectAltName
 * value ("DNS:swarm-manager,DNS:node-a"), or no SAN when san is NULL. */
test_cert *test_cert_leaf(const test_cert *issuer, const char *cn, const char *ou,
                          const char *o, const char *san);

void test_cert_free(test_cert *c);

#endif
