#include "helpers.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

void test_root_create(int64_t now, test_root *root)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    int rv = ca_root_create(now, &root->cert, &root->key, errmsg);

    if (rv != 0) {
        print_error("ca_root_create: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

void test_root_free(test_root *root)
{
    ca_buf_free(&root->cert);
    ca_buf_free(&root->key);
}

void test_node_create(test_node *node)
{
    char errmsg[CA_ERRMSG_SIZE] = "";

    assert_int_equal(ca_key_generate(&node->key, errmsg), 0);
    assert_int_equal(ca_csr_create(node->key.data, node->key.len, &node->csr, errmsg), 0);
}

void test_node_free(test_node *node)
{
    ca_buf_free(&node->key);
    ca_buf_free(&node->csr);
}

void test_issue(const test_root *root, const test_node *node, const char *role,
                ca_issued *out)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_signer *signer = NULL;
    ca_leaf_request request = {
        .node_id = TEST_NODE_ID,
        .role_ou = role,
        .cluster_id = TEST_CLUSTER_ID,
        .now = TEST_NOW,
        .expiry = TEST_EXPIRY,
    };
    int rv;

    rv = ca_signer_open(root->cert.data, root->cert.len, root->key.data, root->key.len,
                        &signer, errmsg);
    if (rv != 0) {
        print_error("ca_signer_open: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);

    rv = ca_sign(signer, node->csr.data, node->csr.len, &request, out, errmsg);
    ca_signer_close(signer);
    if (rv != 0) {
        print_error("ca_sign: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

static void bio_to_buf(BIO *bio, ca_buf *out)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);

    assert_true(len > 0);
    out->data = malloc((size_t)len + 1);
    assert_non_null(out->data);
    memcpy(out->data, data, (size_t)len);
    out->data[len] = '\0';
    out->len = (size_t)len;
}

void test_key_pem(EVP_PKEY *key, ca_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());

    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    bio_to_buf(bio, out);
    BIO_free(bio);
}

void test_csr_pem(EVP_PKEY *key, EVP_PKEY *signing_key, const char *subject_cn,
                  ca_buf *out)
{
    X509_REQ *req = X509_REQ_new();
    BIO *bio = BIO_new(BIO_s_mem());
    int is_eddsa = EVP_PKEY_is_a(signing_key, "ED25519");

    assert_non_null(req);
    assert_non_null(bio);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (subject_cn != NULL) {
        X509_NAME *name = X509_REQ_get_subject_name(req);
        assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                    (const unsigned char *)subject_cn, -1,
                                                    -1, 0),
                         1);
    }
    assert_true(X509_REQ_sign(req, signing_key, is_eddsa ? NULL : EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    bio_to_buf(bio, out);
    BIO_free(bio);
    X509_REQ_free(req);
}

EVP_PKEY *test_p256_key(const char *point_format, const char *encoding)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");

    assert_non_null(key);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(
                         key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, point_format),
                     1);
    assert_int_equal(
        EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding), 1);
    return key;
}

X509 *test_x509(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *cert;

    assert_non_null(bio);
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(cert);
    return cert;
}

void test_concat(const ca_buf *a, const ca_buf *b, ca_buf *out)
{
    out->len = a->len + b->len;
    out->data = malloc(out->len + 1);
    assert_non_null(out->data);
    memcpy(out->data, a->data, a->len);
    memcpy(out->data + a->len, b->data, b->len);
    out->data[out->len] = '\0';
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

void test_intermediate_create(const test_root *root, test_root *out)
{
    X509 *root_cert = test_x509(root->cert.data, root->cert.len);
    BIO *key_bio = BIO_new_mem_buf(root->key.data, (int)root->key.len);
    EVP_PKEY *root_key = PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    X509_NAME *name;

    assert_non_null(root_key);
    assert_non_null(key);
    assert_non_null(cert);
    assert_non_null(bio);

    name = X509_get_subject_name(cert);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242), 1);
    assert_int_equal(X509_NAME_add_entry_by_NID(
                         name, NID_commonName, MBSTRING_UTF8,
                         (const unsigned char *)"swarm-intermediate", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(cert, X509_get_subject_name(root_cert)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(cert), TEST_NOW - 7200));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(cert), TEST_NOW + 365 * 86400));
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    add_ext(cert, root_cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_ext(cert, root_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(cert, root_cert, NID_subject_key_identifier, "hash");
    add_ext(cert, root_cert, NID_authority_key_identifier, "keyid:always");
    assert_true(X509_sign(cert, root_key, EVP_sha256()) > 0);

    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    bio_to_buf(bio, &out->cert);
    test_key_pem(key, &out->key);

    BIO_free(bio);
    BIO_free(key_bio);
    X509_free(cert);
    X509_free(root_cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(root_key);
}

void test_assert_no_openssl_error(void)
{
    unsigned long error = ERR_peek_error();
    char text[256];

    if (error != 0) {
        ERR_error_string_n(error, text, sizeof text);
        print_error("OpenSSL error left queued: %s\n", text);
    }
    assert_int_equal(error, 0);
}
