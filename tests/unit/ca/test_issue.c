/* Root creation and leaf issuance: every field, extension and rejection. */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Checks the offset of t from now as days and seconds, using ASN1_TIME_diff
 * rather than the timegm path that ca_cert_read uses. */
static void expect_offset(const ASN1_TIME *t, int64_t now, int days, int seconds)
{
    ASN1_TIME *reference = ASN1_TIME_set(NULL, (time_t)now);
    int day_diff = 0;
    int second_diff = 0;

    assert_non_null(reference);
    assert_int_equal(ASN1_TIME_diff(&day_diff, &second_diff, reference, t), 1);
    assert_int_equal(day_diff, days);
    assert_int_equal(second_diff, seconds);
    ASN1_TIME_free(reference);
}

static int extension_critical(X509 *cert, int nid)
{
    int index = X509_get_ext_by_NID(cert, nid, -1);

    assert_true(index >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, index));
}

/* Checks the DER encoding of the serial: a 20-byte positive INTEGER. */
static void expect_serial_shape(X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &der);

    assert_int_equal(len, 22);
    assert_int_equal(der[0], 0x02);
    assert_int_equal(der[1], 20);
    assert_int_equal(der[2] & 0x80, 0);
    assert_true(der[2] != 0);
    OPENSSL_free(der);
}

static int is_hex40(const char *text)
{
    return strlen(text) == CA_SERIAL_LEN &&
           strspn(text, "0123456789abcdef") == CA_SERIAL_LEN;
}

static void root_fields(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    ca_cert_info info;

    test_root_create(TEST_NOW, &root);
    assert_int_equal(ca_cert_read(root.cert.data, root.cert.len, &info, errmsg), 0);
    assert_string_equal(info.common_name, "swarm-ca");
    assert_string_equal(info.issuer_cn, "swarm-ca");
    assert_string_equal(info.org_unit, "");
    assert_string_equal(info.org, "");
    assert_true(is_hex40(info.serial));
    assert_int_equal(info.not_before, TEST_NOW - 3600);
    assert_int_equal(info.not_after, TEST_NOW + (int64_t)20 * 365 * 86400);
    test_assert_no_openssl_error();
    test_root_free(&root);
}

static void root_extensions(void **state)
{
    test_root root = {0};
    X509 *cert;

    test_root_create(TEST_NOW, &root);
    cert = test_x509(root.cert.data, root.cert.len);

    assert_int_equal(X509_check_ca(cert), 1);
    assert_true(X509_get_extension_flags(cert) & EXFLAG_CA);
    assert_true(X509_get_extension_flags(cert) & EXFLAG_SS);
    assert_int_equal(extension_critical(cert, NID_basic_constraints), 1);
    assert_int_equal(extension_critical(cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(cert));
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(cert)), 1);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(cert)), 256);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(cert), "EC"));
    expect_serial_shape(cert);

    /* 20 years of 365 days after a one-hour backdate. */
    expect_offset(X509_get0_notBefore(cert), TEST_NOW, 0, -3600);
    expect_offset(X509_get0_notAfter(cert), TEST_NOW, 20 * 365, 0);
    X509_free(cert);
    test_root_free(&root);
}

static void root_key_matches(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};

    test_root_create(TEST_NOW, &root);
    assert_non_null(strstr(root.key.data, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(ca_key_matches_cert(root.key.data, root.key.len, root.cert.data,
                                         root.cert.len, errmsg),
                     0);
    test_root_free(&root);
}

static void root_rejects_bad_time(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf cert = {0};
    ca_buf key = {0};

    assert_int_equal(ca_root_create(-5, &cert, &key, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "current time -5"));
    assert_null(cert.data);
    assert_int_equal(ca_root_create(INT64_MAX, &cert, &key, errmsg), CA_EINVALID);
    assert_null(key.data);
}

static void leaf_worker_fields(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    ca_cert_info info;
    unsigned char csr_hash[32];

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &issued);
    test_assert_no_openssl_error();

    assert_int_equal(
        ca_cert_read(issued.cert_pem.data, issued.cert_pem.len, &info, errmsg), 0);
    assert_string_equal(info.common_name, TEST_NODE_ID);
    assert_string_equal(info.org_unit, CA_ROLE_WORKER_OU);
    assert_string_equal(info.org, TEST_CLUSTER_ID);
    assert_string_equal(info.issuer_cn, "swarm-ca");
    assert_string_equal(info.serial, issued.serial);
    assert_true(is_hex40(issued.serial));
    assert_int_equal(info.not_before, TEST_NOW - 3600);
    assert_int_equal(info.not_after, TEST_NOW + TEST_EXPIRY);
    assert_int_equal(issued.not_before, TEST_NOW - 3600);
    assert_int_equal(issued.not_after, TEST_NOW + TEST_EXPIRY);

    assert_int_equal(ca_csr_check(node.csr.data, node.csr.len, csr_hash, errmsg), 0);
    assert_memory_equal(info.key_hash, csr_hash, sizeof csr_hash);

    ca_issued_free(&issued);
    assert_null(issued.cert_pem.data);
    test_node_free(&node);
    test_root_free(&root);
}

/* Collects the DNS SANs of cert as "a,b,c". */
static void dns_sans(X509 *cert, char *out, size_t size)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int i;

    assert_non_null(names);
    out[0] = '\0';
    for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        int type;
        const ASN1_IA5STRING *value =
            GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
        assert_int_equal(type, GEN_DNS);
        if (i > 0) {
            strncat(out, ",", size - strlen(out) - 1);
        }
        strncat(out, (const char *)ASN1_STRING_get0_data(value), size - strlen(out) - 1);
    }
    GENERAL_NAMES_free(names);
}

static void leaf_extensions(void **state)
{
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    X509 *cert;
    X509 *root_cert;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &issued);
    cert = test_x509(issued.cert_pem.data, issued.cert_pem.len);
    root_cert = test_x509(root.cert.data, root.cert.len);

    assert_int_equal(X509_check_ca(cert), 0);
    assert_int_equal(extension_critical(cert, NID_basic_constraints), 1);
    assert_int_equal(extension_critical(cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(cert),
                     KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(cert));
    assert_non_null(X509_get0_authority_key_id(cert));
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert),
                                           X509_get0_subject_key_id(root_cert)),
                     0);
    assert_int_equal(
        X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(root_cert)), 0);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(root_cert)), 1);
    expect_serial_shape(cert);
    expect_offset(X509_get0_notBefore(cert), TEST_NOW, 0, -3600);
    expect_offset(X509_get0_notAfter(cert), TEST_NOW, 90, 0);

    X509_free(root_cert);
    X509_free(cert);
    ca_issued_free(&issued);
    test_node_free(&node);
    test_root_free(&root);
}

static void leaf_sans_by_role(void **state)
{
    test_root root = {0};
    test_node node = {0};
    ca_issued worker = {0};
    ca_issued manager = {0};
    char sans[256];
    ca_cert_info info;
    char errmsg[CA_ERRMSG_SIZE] = "";
    X509 *cert;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &worker);
    test_issue(&root, &node, CA_ROLE_MANAGER_OU, &manager);

    cert = test_x509(worker.cert_pem.data, worker.cert_pem.len);
    dns_sans(cert, sans, sizeof sans);
    assert_string_equal(sans, "swarm-worker," TEST_NODE_ID);
    X509_free(cert);

    cert = test_x509(manager.cert_pem.data, manager.cert_pem.len);
    dns_sans(cert, sans, sizeof sans);
    assert_string_equal(sans, "swarm-manager," TEST_NODE_ID ",swarm-ca");
    X509_free(cert);

    assert_int_equal(
        ca_cert_read(manager.cert_pem.data, manager.cert_pem.len, &info, errmsg), 0);
    assert_string_equal(info.org_unit, CA_ROLE_MANAGER_OU);

    ca_issued_free(&worker);
    ca_issued_free(&manager);
    test_node_free(&node);
    test_root_free(&root);
}

/* Nothing from the CSR's subject reaches the certificate. */
static void leaf_ignores_csr_subject(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ca_cert_info info;
    X509 *cert;

    assert_non_null(key);
    test_root_create(TEST_NOW, &root);
    test_csr_pem(key, key, "swarm-ca-impostor", &node.csr);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &issued);

    assert_int_equal(
        ca_cert_read(issued.cert_pem.data, issued.cert_pem.len, &info, errmsg), 0);
    assert_string_equal(info.common_name, TEST_NODE_ID);
    cert = test_x509(issued.cert_pem.data, issued.cert_pem.len);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 3);
    X509_free(cert);

    EVP_PKEY_free(key);
    ca_issued_free(&issued);
    test_node_free(&node);
    test_root_free(&root);
}

static void leaf_serials_differ(void **state)
{
    test_root root = {0};
    test_node node = {0};
    ca_issued first = {0};
    ca_issued second = {0};

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &first);
    test_issue(&root, &node, CA_ROLE_WORKER_OU, &second);
    assert_string_not_equal(first.serial, second.serial);
    assert_string_not_equal(first.cert_pem.data, second.cert_pem.data);

    ca_issued_free(&first);
    ca_issued_free(&second);
    test_node_free(&node);
    test_root_free(&root);
}

/* Opens a signer on root and signs node's CSR with request. */
static int sign_with(const test_root *root, const test_node *node,
                     const ca_leaf_request *request, ca_issued *out, char *errmsg)
{
    ca_signer *signer = NULL;
    int rv;

    assert_int_equal(ca_signer_open(root->cert.data, root->cert.len, root->key.data,
                                    root->key.len, &signer, errmsg),
                     0);
    rv = ca_sign(signer, node->csr.data, node->csr.len, request, out, errmsg);
    ca_signer_close(signer);
    return rv;
}

static void sign_expiry_bounds(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, TEST_NOW,
                               CA_MIN_CERT_EXPIRY - 1};

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);

    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "3599 s is below the minimum of 3600 s"));
    assert_null(issued.cert_pem.data);

    request.expiry = 0;
    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EINVALID);
    request.expiry = -TEST_EXPIRY;
    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EINVALID);
    request.expiry = INT64_MAX;
    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "above the maximum"));

    request.expiry = CA_MIN_CERT_EXPIRY;
    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), 0);
    assert_int_equal(issued.not_after - issued.not_before, 2 * 3600);
    ca_issued_free(&issued);

    test_node_free(&node);
    test_root_free(&root);
}

static void sign_rejects_bad_request(void **state)
{
    static const struct {
        const char *node_id;
        const char *role_ou;
        const char *cluster_id;
        const char *message;
    } cases[] = {
        {NULL, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "node id is missing"},
        {"", CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "node id is missing"},
        {"a,DNS:evil", CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "node id 'a,DNS:evil'"},
        {"-leading", CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "is not a DNS label"},
        {"trailing-", CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "is not a DNS label"},
        {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl",
         CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, "is not a DNS label"},
        {TEST_NODE_ID, CA_ROLE_WORKER_OU, "o=x", "cluster id 'o=x'"},
        {TEST_NODE_ID, NULL, TEST_CLUSTER_ID, "role OU is missing"},
        {TEST_NODE_ID, "swarm-ca", TEST_CLUSTER_ID, "role OU 'swarm-ca' is neither"},
    };
    char errmsg[CA_ERRMSG_SIZE];
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    size_t i;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ca_leaf_request request = {cases[i].node_id, cases[i].role_ou,
                                   cases[i].cluster_id, TEST_NOW, TEST_EXPIRY};
        print_message("case %zu: %s\n", i, cases[i].message);
        errmsg[0] = '\0';
        assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EINVALID);
        assert_non_null(strstr(errmsg, cases[i].message));
        assert_null(issued.cert_pem.data);
    }
    test_node_free(&node);
    test_root_free(&root);
}

/* ca_sign checks the CSR again, so an unchecked bad CSR gets no certificate. */
static void sign_rechecks_csr(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, TEST_NOW,
                               TEST_EXPIRY};

    assert_non_null(rsa);
    test_root_create(TEST_NOW, &root);
    test_csr_pem(rsa, rsa, NULL, &node.csr);
    assert_int_equal(sign_with(&root, &node, &request, &issued, errmsg), CA_EKEYTYPE);
    assert_null(issued.cert_pem.data);
    test_assert_no_openssl_error();

    EVP_PKEY_free(rsa);
    test_node_free(&node);
    test_root_free(&root);
}

static ca_signer *open_signer(const test_root *root)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_signer *signer = NULL;

    assert_int_equal(ca_signer_open(root->cert.data, root->cert.len, root->key.data,
                                    root->key.len, &signer, errmsg),
                     0);
    return signer;
}

/* Fails unless the certificate in cert_pem carries the DER
 * SubjectPublicKeyInfo of the CSR in csr_pem byte for byte. */
static void expect_same_spki(const ca_buf *cert_pem, const ca_buf *csr_pem)
{
    X509 *cert = test_x509(cert_pem->data, cert_pem->len);
    BIO *bio = BIO_new_mem_buf(csr_pem->data, (int)csr_pem->len);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    unsigned char *cert_der = NULL;
    unsigned char *csr_der = NULL;
    int cert_len;
    int csr_len;

    assert_non_null(req);
    cert_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &cert_der);
    csr_len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &csr_der);
    assert_true(csr_len > 0);
    assert_int_equal(cert_len, csr_len);
    assert_memory_equal(cert_der, csr_der, (size_t)csr_len);

    OPENSSL_free(cert_der);
    OPENSSL_free(csr_der);
    X509_REQ_free(req);
    BIO_free(bio);
    X509_free(cert);
}

/* Both signing paths copy the CSR's SubjectPublicKeyInfo unchanged, also
 * for compressed points and explicit parameters, and the certificate's key
 * hash equals the CSR's. */
static void leaf_spki_equals_csr(void **state)
{
    static const struct {
        const char *point_format;
        const char *encoding;
    } cases[] = {
        {"uncompressed", "named_curve"},
        {"compressed", "named_curve"},
        {"uncompressed", "explicit"},
    };
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, TEST_NOW,
                               TEST_EXPIRY};
    test_root root = {0};
    ca_signer *signer;
    X509 *root_cert;
    size_t i;

    test_root_create(TEST_NOW, &root);
    signer = open_signer(&root);
    root_cert = test_x509(root.cert.data, root.cert.len);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EVP_PKEY *key = test_p256_key(cases[i].point_format, cases[i].encoding);
        ca_buf csr = {0};
        ca_issued two_step = {0};
        ca_issued one_step = {0};
        unsigned char check_hash[32];
        unsigned char sign_hash[32];
        ca_cert_info info;
        X509 *cert;

        print_message("case %zu: %s, %s\n", i, cases[i].point_format, cases[i].encoding);
        test_csr_pem(key, key, NULL, &csr);
        assert_int_equal(ca_csr_check(csr.data, csr.len, check_hash, errmsg), 0);
        assert_int_equal(ca_sign(signer, csr.data, csr.len, &request, &two_step, errmsg),
                         0);
        assert_int_equal(ca_csr_sign(signer, csr.data, csr.len, &request, sign_hash,
                                     &one_step, errmsg),
                         0);
        test_assert_no_openssl_error();

        expect_same_spki(&two_step.cert_pem, &csr);
        expect_same_spki(&one_step.cert_pem, &csr);
        assert_memory_equal(sign_hash, check_hash, sizeof check_hash);
        assert_int_equal(
            ca_cert_read(one_step.cert_pem.data, one_step.cert_pem.len, &info, errmsg),
            0);
        assert_memory_equal(info.key_hash, check_hash, sizeof check_hash);

        cert = test_x509(one_step.cert_pem.data, one_step.cert_pem.len);
        assert_int_equal(X509_verify(cert, X509_get0_pubkey(root_cert)), 1);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
        X509_free(cert);

        ca_issued_free(&two_step);
        ca_issued_free(&one_step);
        ca_buf_free(&csr);
        EVP_PKEY_free(key);
    }
    X509_free(root_cert);
    ca_signer_close(signer);
    test_root_free(&root);
}

/* ca_csr_sign issues the same certificate as ca_csr_check and ca_sign. */
static void csr_sign_fields(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_MANAGER_OU, TEST_CLUSTER_ID,
                               TEST_NOW, TEST_EXPIRY};
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    unsigned char hash[32];
    unsigned char check_hash[32];
    ca_signer *signer;
    ca_cert_info info;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    signer = open_signer(&root);
    assert_int_equal(
        ca_csr_sign(signer, node.csr.data, node.csr.len, &request, hash, &issued, errmsg),
        0);
    test_assert_no_openssl_error();

    assert_int_equal(
        ca_cert_read(issued.cert_pem.data, issued.cert_pem.len, &info, errmsg), 0);
    assert_string_equal(info.common_name, TEST_NODE_ID);
    assert_string_equal(info.org_unit, CA_ROLE_MANAGER_OU);
    assert_string_equal(info.org, TEST_CLUSTER_ID);
    assert_string_equal(info.issuer_cn, "swarm-ca");
    assert_string_equal(info.serial, issued.serial);
    assert_true(is_hex40(issued.serial));
    assert_int_equal(issued.not_before, TEST_NOW - 3600);
    assert_int_equal(issued.not_after, TEST_NOW + TEST_EXPIRY);
    assert_int_equal(info.not_before, issued.not_before);
    assert_int_equal(info.not_after, issued.not_after);

    assert_int_equal(ca_csr_check(node.csr.data, node.csr.len, check_hash, errmsg), 0);
    assert_memory_equal(hash, check_hash, sizeof hash);
    assert_int_equal(ca_key_matches_cert(node.key.data, node.key.len,
                                         issued.cert_pem.data, issued.cert_pem.len,
                                         errmsg),
                     0);
    assert_int_equal(ca_verify_chain(issued.cert_pem.data, issued.cert_pem.len,
                                     root.cert.data, root.cert.len, TEST_NOW, CA_ROOT_CN,
                                     errmsg),
                     0);

    ca_issued_free(&issued);
    ca_signer_close(signer);
    test_node_free(&node);
    test_root_free(&root);
}

/* A bad CSR gets the code and message that ca_csr_check gives it. */
static void csr_sign_rejects_bad_csr(void **state)
{
    char garbage[] = "this is not a certificate signing request\n";
    char check_msg[CA_ERRMSG_SIZE];
    char sign_msg[CA_ERRMSG_SIZE];
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, TEST_NOW,
                               TEST_EXPIRY};
    EVP_PKEY *rsa = EVP_RSA_gen(512);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    ca_buf csrs[4] = {{0}};
    const int codes[4] = {CA_EKEYTYPE, CA_EINVALID, CA_EINVALID, CA_EINVALID};
    const char *texts[4] = {"RSA with 512 bits", "signature does not verify",
                            "CSR is not a valid PEM CERTIFICATE REQUEST", "CSR is empty"};
    test_root root = {0};
    ca_signer *signer;
    size_t i;

    assert_non_null(rsa);
    assert_non_null(key);
    assert_non_null(other);
    test_csr_pem(rsa, rsa, NULL, &csrs[0]);
    test_csr_pem(key, other, NULL, &csrs[1]);
    csrs[2].data = garbage;
    csrs[2].len = sizeof garbage - 1;
    csrs[3].data = garbage;
    csrs[3].len = 0;

    test_root_create(TEST_NOW, &root);
    signer = open_signer(&root);
    for (i = 0; i < 4; i++) {
        ca_issued issued = {0};
        unsigned char hash[32];

        print_message("case %zu: %s\n", i, texts[i]);
        check_msg[0] = '\0';
        sign_msg[0] = '\0';
        assert_int_equal(ca_csr_check(csrs[i].data, csrs[i].len, hash, check_msg),
                         codes[i]);
        assert_int_equal(ca_csr_sign(signer, csrs[i].data, csrs[i].len, &request, hash,
                                     &issued, sign_msg),
                         codes[i]);
        assert_string_equal(sign_msg, check_msg);
        assert_non_null(strstr(sign_msg, texts[i]));
        assert_null(issued.cert_pem.data);
        test_assert_no_openssl_error();
    }

    ca_signer_close(signer);
    test_root_free(&root);
    ca_buf_free(&csrs[0]);
    ca_buf_free(&csrs[1]);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

/* A good CSR with a bad request fails as ca_sign does, with key_hash
 * already filled. */
static void csr_sign_rejects_bad_request(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_leaf_request request = {TEST_NODE_ID, CA_ROLE_WORKER_OU, TEST_CLUSTER_ID, TEST_NOW,
                               CA_MIN_CERT_EXPIRY - 1};
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    unsigned char hash[32] = {0};
    unsigned char check_hash[32];
    ca_signer *signer;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    signer = open_signer(&root);
    assert_int_equal(
        ca_csr_sign(signer, node.csr.data, node.csr.len, &request, hash, &issued, errmsg),
        CA_EINVALID);
    assert_non_null(strstr(errmsg, "3599 s is below the minimum of 3600 s"));
    assert_null(issued.cert_pem.data);
    assert_int_equal(ca_csr_check(node.csr.data, node.csr.len, check_hash, errmsg), 0);
    assert_memory_equal(hash, check_hash, sizeof hash);

    ca_signer_close(signer);
    test_node_free(&node);
    test_root_free(&root);
}

static void signer_rejects_wrong_key(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_root other = {0};
    ca_signer *signer = NULL;

    test_root_create(TEST_NOW, &root);
    test_root_create(TEST_NOW, &other);
    assert_int_equal(ca_signer_open(root.cert.data, root.cert.len, other.key.data,
                                    other.key.len, &signer, errmsg),
                     CA_EINVALID);
    assert_null(signer);
    assert_non_null(
        strstr(errmsg, "does not match the signer certificate (CN swarm-ca)"));
    test_assert_no_openssl_error();

    assert_int_equal(
        ca_signer_open(root.cert.data, root.cert.len, "junk", 4, &signer, errmsg),
        CA_EINVALID);
    assert_non_null(strstr(errmsg, "signer key is not an unencrypted PEM private key"));
    assert_int_equal(
        ca_signer_open("junk", 4, root.key.data, root.key.len, &signer, errmsg),
        CA_EINVALID);
    assert_non_null(strstr(errmsg, "signer certificate is not a valid PEM CERTIFICATE"));
    test_root_free(&other);
    test_root_free(&root);
}

static void signer_rejects_leaf(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root root = {0};
    test_node node = {0};
    ca_issued issued = {0};
    ca_signer *signer = NULL;

    test_root_create(TEST_NOW, &root);
    test_node_create(&node);
    test_issue(&root, &node, CA_ROLE_MANAGER_OU, &issued);
    assert_int_equal(ca_signer_open(issued.cert_pem.data, issued.cert_pem.len,
                                    node.key.data, node.key.len, &signer, errmsg),
                     CA_EINVALID);
    assert_null(signer);
    assert_non_null(strstr(errmsg, "is not a CA certificate"));

    ca_issued_free(&issued);
    test_node_free(&node);
    test_root_free(&root);
}

int run_issue_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(root_fields),
        cmocka_unit_test(root_extensions),
        cmocka_unit_test(root_key_matches),
        cmocka_unit_test(root_rejects_bad_time),
        cmocka_unit_test(leaf_worker_fields),
        cmocka_unit_test(leaf_extensions),
        cmocka_unit_test(leaf_sans_by_role),
        cmocka_unit_test(leaf_ignores_csr_subject),
        cmocka_unit_test(leaf_serials_differ),
        cmocka_unit_test(sign_expiry_bounds),
        cmocka_unit_test(sign_rejects_bad_request),
        cmocka_unit_test(sign_rechecks_csr),
        cmocka_unit_test(leaf_spki_equals_csr),
        cmocka_unit_test(csr_sign_fields),
        cmocka_unit_test(csr_sign_rejects_bad_csr),
        cmocka_unit_test(csr_sign_rejects_bad_request),
        cmocka_unit_test(signer_rejects_wrong_key),
        cmocka_unit_test(signer_rejects_leaf),
    };
    return cmocka_run_group_tests_name("ca_issue", tests, NULL, NULL);
}
