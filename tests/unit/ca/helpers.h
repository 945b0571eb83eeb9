/* Fixtures shared by the ca unit tests. Every helper fails the running test
 * through cmocka when a step it depends on fails. */
#ifndef SWARMPKI_TEST_CA_HELPERS_H
#define SWARMPKI_TEST_CA_HELPERS_H

#include <ca/ca.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A root CA certificate with its key, both PEM. */
typedef struct test_root {
    ca_buf cert;
    ca_buf key;
} test_root;

/* A node key and its CSR, both PEM. */
typedef struct test_node {
    ca_buf key;
    ca_buf csr;
} test_node;

/* A fixed Unix time (2024-03-01T00:00:00Z) so that validity checks do not
 * depend on the clock. */
#define TEST_NOW INT64_C(1709251200)

/* A node id and cluster id of the form ca_random_id returns. */
#define TEST_NODE_ID    "0abcdefghijklmnopqrstuvwx"
#define TEST_CLUSTER_ID "zyxwvutsrqponmlkjihgfedcb"

/* 90 days, the default certificate expiry. */
#define TEST_EXPIRY ((int64_t)90 * 24 * 60 * 60)

void test_root_create(int64_t now, test_root *root);
void test_root_free(test_root *root);

void test_node_create(test_node *node);
void test_node_free(test_node *node);

/* Signs node's CSR with root for role at TEST_NOW with TEST_EXPIRY. */
void test_issue(const test_root *root, const test_node *node, const char *role,
                ca_issued *out);

/* Writes key as PKCS#8 PEM into out. */
void test_key_pem(EVP_PKEY *key, ca_buf *out);

/* Builds a CSR for key, signed by signing_key (which may differ, to make a
 * CSR whose signature does not verify), with an optional subject CN. */
void test_csr_pem(EVP_PKEY *key, EVP_PKEY *signing_key, const char *subject_cn,
                  ca_buf *out);

/* Generates a P-256 key whose public key encodes with point_format
 * ("uncompressed" or "compressed") and encoding ("named_curve" or
 * "explicit"); the caller frees it. */
EVP_PKEY *test_p256_key(const char *point_format, const char *encoding);

/* Parses the first certificate of pem; the caller frees it. */
X509 *test_x509(const char *pem, size_t len);

/* Appends b to a (both PEM texts) into out. */
void test_concat(const ca_buf *a, const ca_buf *b, ca_buf *out);

/* Creates an intermediate CA certificate under root, with a new P-256 key. */
void test_intermediate_create(const test_root *root, test_root *out);

/* Fails the test unless OpenSSL's error queue is empty. */
void test_assert_no_openssl_error(void);

/* Test groups, one per source file; each returns the number of failures. */
int run_base36_tests(void);
int run_token_tests(void);
int run_csr_tests(void);
int run_issue_tests(void);
int run_verify_tests(void);

#endif
