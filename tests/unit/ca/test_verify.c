/* Chain verification against trust bundles, and key-to-certificate checks. */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

/* A root and one worker and one manager certificate issued by it, shared by
 * the tests of this group. */
typedef struct fixture {
    test_root root;
    test_node node;
    ca_issued worker;
    ca_issued manager;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    test_root_create(TEST_NOW, &f->root);
    test_node_create(&f->node);
    test_issue(&f->root, &f->node, CA_ROLE_WORKER_OU, &f->worker);
    test_issue(&f->root, &f->node, CA_ROLE_MANAGER_OU, &f->manager);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    ca_issued_free(&f->worker);
    ca_issued_free(&f->manager);
    test_node_free(&f->node);
    test_root_free(&f->root);
    free(f);
    return 0;
}

static int verify(const ca_buf *chain, const ca_buf *bundle, int64_t now,
                  const char *required_san, char *errmsg)
{
    errmsg[0] = '\0';
    return ca_verify_chain(chain->data, chain->len, bundle->data, bundle->len, now,
                           required_san, errmsg);
}

static void expect_message(const char *errmsg, const char *text)
{
    if (strstr(errmsg, text) == NULL) {
        print_error("message \"%s\" lacks \"%s\"\n", errmsg, text);
    }
    assert_non_null(strstr(errmsg, text));
}

static void verify_leaf_against_root(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];

    assert_int_equal(verify(&f->worker.cert_pem, &f->root.cert, TEST_NOW, NULL, errmsg),
                     0);
    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, TEST_NOW, CA_ROLE_WORKER_OU, errmsg),
        0);
    assert_int_equal(
        verify(&f->manager.cert_pem, &f->root.cert, TEST_NOW, CA_ROLE_MANAGER_OU, errmsg),
        0);
    assert_int_equal(
        verify(&f->manager.cert_pem, &f->root.cert, TEST_NOW, CA_ROOT_CN, errmsg), 0);
    test_assert_no_openssl_error();
}

static void verify_other_root_fails(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    test_root other = {0};

    test_root_create(TEST_NOW, &other);
    assert_int_equal(verify(&f->worker.cert_pem, &other.cert, TEST_NOW, NULL, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "unable to get local issuer certificate");
    expect_message(errmsg, "CN " TEST_NODE_ID);
    test_assert_no_openssl_error();
    test_root_free(&other);
}

/* During a root rotation the bundle contains two roots and either may issue. */
static void verify_bundle_two_roots(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    test_root other = {0};
    ca_buf bundle = {0};

    test_root_create(TEST_NOW, &other);
    test_concat(&other.cert, &f->root.cert, &bundle);
    assert_int_equal(verify(&f->worker.cert_pem, &bundle, TEST_NOW, NULL, errmsg), 0);
    ca_buf_free(&bundle);

    test_concat(&f->root.cert, &other.cert, &bundle);
    assert_int_equal(verify(&f->worker.cert_pem, &bundle, TEST_NOW, NULL, errmsg), 0);
    ca_buf_free(&bundle);
    test_root_free(&other);
}

static void verify_validity_window(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    int64_t not_before = f->worker.not_before;
    int64_t not_after = f->worker.not_after;

    assert_int_equal(verify(&f->worker.cert_pem, &f->root.cert, not_before, NULL, errmsg),
                     0);
    /* OpenSSL 3.0 already treats the notAfter second itself as expired
     * (X509_cmp_time returns -1 for equal times), so the last second that
     * verifies is the one before. */
    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, not_after - 1, NULL, errmsg), 0);

    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, not_after + 1, NULL, errmsg),
        CA_EVERIFY);
    expect_message(errmsg, "certificate has expired");

    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, not_before - 1, NULL, errmsg),
        CA_EVERIFY);
    expect_message(errmsg, "certificate is not yet valid");
    test_assert_no_openssl_error();
}

static void verify_required_san_missing(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];

    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, TEST_NOW, CA_ROLE_MANAGER_OU, errmsg),
        CA_EVERIFY);
    expect_message(errmsg, "does not list the DNS SAN swarm-manager");

    assert_int_equal(
        verify(&f->worker.cert_pem, &f->root.cert, TEST_NOW, CA_ROOT_CN, errmsg),
        CA_EVERIFY);
    assert_int_equal(
        verify(&f->manager.cert_pem, &f->root.cert, TEST_NOW, "swarm-manage", errmsg),
        CA_EVERIFY);
    assert_int_equal(verify(&f->manager.cert_pem, &f->root.cert, TEST_NOW, "", errmsg),
                     CA_EVERIFY);
}

/* DNS names compare case-insensitively. */
static void verify_san_ignores_case(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];

    assert_int_equal(
        verify(&f->manager.cert_pem, &f->root.cert, TEST_NOW, "SWARM-Manager", errmsg),
        0);
}

static void verify_through_intermediate(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    test_root intermediate = {0};
    ca_issued leaf = {0};
    ca_buf chain = {0};
    ca_cert_info info;

    test_intermediate_create(&f->root, &intermediate);
    test_issue(&intermediate, &f->node, CA_ROLE_MANAGER_OU, &leaf);
    assert_int_equal(ca_cert_read(leaf.cert_pem.data, leaf.cert_pem.len, &info, errmsg),
                     0);
    assert_string_equal(info.issuer_cn, "swarm-intermediate");

    test_concat(&leaf.cert_pem, &intermediate.cert, &chain);
    assert_int_equal(verify(&chain, &f->root.cert, TEST_NOW, CA_ROLE_MANAGER_OU, errmsg),
                     0);

    /* Without the intermediate there is no path to the root. */
    assert_int_equal(verify(&leaf.cert_pem, &f->root.cert, TEST_NOW, NULL, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "unable to get local issuer certificate");

    /* An intermediate in the chain is not trusted by itself. */
    assert_int_equal(verify(&chain, &intermediate.cert, TEST_NOW, NULL, errmsg),
                     CA_EVERIFY);
    test_assert_no_openssl_error();

    ca_buf_free(&chain);
    ca_issued_free(&leaf);
    test_root_free(&intermediate);
}

static void verify_rejects_bad_input(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    char garbage_text[] = "no certificates in here\n";
    ca_buf garbage = {garbage_text, sizeof garbage_text - 1};
    ca_buf empty = {garbage_text, 0};
    ca_buf truncated = {f->root.cert.data, f->root.cert.len - 40};
    ca_buf bundle = {0};

    assert_int_equal(verify(&f->worker.cert_pem, &garbage, TEST_NOW, NULL, errmsg),
                     CA_EINVALID);
    expect_message(errmsg, "trust bundle certificate 1 is not a valid PEM CERTIFICATE");
    assert_int_equal(verify(&f->worker.cert_pem, &empty, TEST_NOW, NULL, errmsg),
                     CA_EINVALID);
    expect_message(errmsg, "trust bundle is empty");
    assert_int_equal(verify(&garbage, &f->root.cert, TEST_NOW, NULL, errmsg),
                     CA_EINVALID);
    expect_message(errmsg, "certificate chain certificate 1");

    /* A good root followed by a cut-off second block. */
    test_concat(&f->root.cert, &truncated, &bundle);
    assert_int_equal(verify(&f->worker.cert_pem, &bundle, TEST_NOW, NULL, errmsg),
                     CA_EINVALID);
    expect_message(errmsg, "trust bundle certificate 2 is not a valid PEM CERTIFICATE");
    ca_buf_free(&bundle);
    test_assert_no_openssl_error();
}

/* One bundle serves many verifications, with the results and messages of
 * ca_verify_chain. */
static void bundle_verify_many(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    char wrapper_msg[CA_ERRMSG_SIZE];
    char garbage_text[] = "no certificates in here\n";
    ca_buf garbage = {garbage_text, sizeof garbage_text - 1};
    test_root other = {0};
    ca_issued other_leaf = {0};
    ca_buf roots = {0};
    ca_bundle *bundle = NULL;
    int i;

    test_root_create(TEST_NOW, &other);
    test_issue(&other, &f->node, CA_ROLE_WORKER_OU, &other_leaf);
    test_concat(&other.cert, &f->root.cert, &roots);
    assert_int_equal(ca_bundle_open(roots.data, roots.len, &bundle, errmsg), 0);
    assert_non_null(bundle);

    for (i = 0; i < 3; i++) {
        print_message("round %d\n", i);
        assert_int_equal(ca_verify_chain_bundle(bundle, f->worker.cert_pem.data,
                                                f->worker.cert_pem.len, TEST_NOW,
                                                CA_ROLE_WORKER_OU, errmsg),
                         0);
        assert_int_equal(ca_verify_chain_bundle(bundle, f->manager.cert_pem.data,
                                                f->manager.cert_pem.len, TEST_NOW,
                                                CA_ROOT_CN, errmsg),
                         0);
        assert_int_equal(ca_verify_chain_bundle(bundle, other_leaf.cert_pem.data,
                                                other_leaf.cert_pem.len, TEST_NOW, NULL,
                                                errmsg),
                         0);
    }
    test_assert_no_openssl_error();

    /* A missing SAN, an expired certificate and a broken chain fail as they
     * do in ca_verify_chain. */
    assert_int_equal(ca_verify_chain_bundle(bundle, f->worker.cert_pem.data,
                                            f->worker.cert_pem.len, TEST_NOW,
                                            CA_ROLE_MANAGER_OU, errmsg),
                     CA_EVERIFY);
    assert_int_equal(
        verify(&f->worker.cert_pem, &roots, TEST_NOW, CA_ROLE_MANAGER_OU, wrapper_msg),
        CA_EVERIFY);
    assert_string_equal(errmsg, wrapper_msg);

    assert_int_equal(ca_verify_chain_bundle(bundle, f->worker.cert_pem.data,
                                            f->worker.cert_pem.len,
                                            f->worker.not_after + 1, NULL, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "certificate has expired");

    assert_int_equal(
        ca_verify_chain_bundle(bundle, garbage.data, garbage.len, TEST_NOW, NULL, errmsg),
        CA_EINVALID);
    expect_message(errmsg, "certificate chain certificate 1");
    test_assert_no_openssl_error();

    ca_bundle_close(bundle);
    ca_buf_free(&roots);
    ca_issued_free(&other_leaf);
    test_root_free(&other);
}

/* A bad bundle fails to open with the code and message of ca_verify_chain. */
static void bundle_open_rejects_bad_input(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE];
    char wrapper_msg[CA_ERRMSG_SIZE];
    char garbage_text[] = "no certificates in here\n";
    ca_buf truncated = {f->root.cert.data, f->root.cert.len - 40};
    ca_buf cases[3] = {{garbage_text, sizeof garbage_text - 1}, {garbage_text, 0}, {0}};
    const char *texts[3] = {"trust bundle certificate 1 is not a valid PEM CERTIFICATE",
                            "trust bundle is empty",
                            "trust bundle certificate 2 is not a valid PEM CERTIFICATE"};
    size_t i;

    test_concat(&f->root.cert, &truncated, &cases[2]);
    for (i = 0; i < 3; i++) {
        ca_bundle *bundle = NULL;

        print_message("case %zu: %s\n", i, texts[i]);
        errmsg[0] = '\0';
        assert_int_equal(ca_bundle_open(cases[i].data, cases[i].len, &bundle, errmsg),
                         CA_EINVALID);
        assert_null(bundle);
        expect_message(errmsg, texts[i]);
        assert_int_equal(
            verify(&f->worker.cert_pem, &cases[i], TEST_NOW, NULL, wrapper_msg),
            CA_EINVALID);
        assert_string_equal(errmsg, wrapper_msg);
        test_assert_no_openssl_error();
    }
    ca_bundle_close(NULL);
    ca_buf_free(&cases[2]);
}

static void key_matches_cert_cases(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE] = "";
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    ca_buf rsa_pem = {0};

    assert_int_equal(ca_key_matches_cert(f->node.key.data, f->node.key.len,
                                         f->worker.cert_pem.data, f->worker.cert_pem.len,
                                         errmsg),
                     0);

    assert_int_equal(ca_key_matches_cert(f->root.key.data, f->root.key.len,
                                         f->worker.cert_pem.data, f->worker.cert_pem.len,
                                         errmsg),
                     CA_EINVALID);
    expect_message(
        errmsg, "does not match the public key of the certificate for CN " TEST_NODE_ID);
    test_assert_no_openssl_error();

    assert_non_null(rsa);
    test_key_pem(rsa, &rsa_pem);
    assert_int_equal(ca_key_matches_cert(rsa_pem.data, rsa_pem.len,
                                         f->worker.cert_pem.data, f->worker.cert_pem.len,
                                         errmsg),
                     CA_EKEYTYPE);
    expect_message(errmsg, "RSA with 1024 bits");

    assert_int_equal(
        ca_key_matches_cert(f->node.key.data, f->node.key.len, "junk", 4, errmsg),
        CA_EINVALID);
    ca_buf_free(&rsa_pem);
    EVP_PKEY_free(rsa);
}

/* ca_verify_issued reads, matches and verifies a certificate in one parse. */
static void verify_issued_cases(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE] = "";
    const ca_buf *cert = &f->worker.cert_pem;
    unsigned char key_hash[32];
    unsigned char other_hash[32];
    ca_cert_info expected;
    ca_cert_info info;
    ca_bundle *bundle = NULL;
    ca_bundle *other_bundle = NULL;
    test_root other = {0};

    assert_int_equal(ca_csr_check(f->node.csr.data, f->node.csr.len, key_hash, errmsg), 0);
    assert_int_equal(ca_cert_read(cert->data, cert->len, &expected, errmsg), 0);
    assert_int_equal(ca_bundle_open(f->root.cert.data, f->root.cert.len, &bundle, errmsg), 0);

    assert_int_equal(ca_verify_issued(bundle, cert->data, cert->len, key_hash, TEST_NOW,
                                      CA_ROLE_WORKER_OU, &info, errmsg),
                     0);
    assert_memory_equal(&info, &expected, sizeof info);

    /* A certificate for another key: the manager signed someone else's CSR. */
    memcpy(other_hash, key_hash, sizeof other_hash);
    other_hash[31] ^= 1;
    assert_int_equal(ca_verify_issued(bundle, cert->data, cert->len, other_hash, TEST_NOW,
                                      NULL, &info, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "another public key");
    assert_string_equal(info.common_name, "");

    /* The wrong role, an expired certificate, another root, garbage. */
    assert_int_equal(ca_verify_issued(bundle, cert->data, cert->len, key_hash, TEST_NOW,
                                      CA_ROLE_MANAGER_OU, &info, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "DNS SAN " CA_ROLE_MANAGER_OU);
    assert_int_equal(ca_verify_issued(bundle, cert->data, cert->len, key_hash,
                                      f->worker.not_after + 1, NULL, &info, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "certificate has expired");
    test_root_create(TEST_NOW, &other);
    assert_int_equal(
        ca_bundle_open(other.cert.data, other.cert.len, &other_bundle, errmsg), 0);
    assert_int_equal(ca_verify_issued(other_bundle, cert->data, cert->len, key_hash,
                                      TEST_NOW, NULL, &info, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "unable to get local issuer certificate");
    assert_int_equal(
        ca_verify_issued(bundle, "junk", 4, key_hash, TEST_NOW, NULL, &info, errmsg),
        CA_EINVALID);
    expect_message(errmsg, "issued certificate 1 is not a valid PEM CERTIFICATE");
    test_assert_no_openssl_error();

    ca_bundle_close(other_bundle);
    ca_bundle_close(bundle);
    test_root_free(&other);
}

/* ca_verify_x509 verifies certificates parsed elsewhere, as a TLS library
 * hands them over. */
static void verify_x509_cases(void **state)
{
    fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE] = "";
    X509 *worker = test_x509(f->worker.cert_pem.data, f->worker.cert_pem.len);
    X509 *manager = test_x509(f->manager.cert_pem.data, f->manager.cert_pem.len);
    STACK_OF(X509) *chain = sk_X509_new_null();
    ca_bundle *bundle = NULL;
    ca_bundle *other_bundle = NULL;
    test_root other = {0};

    assert_non_null(chain);
    assert_int_equal(sk_X509_push(chain, manager), 1);
    assert_int_equal(ca_bundle_open(f->root.cert.data, f->root.cert.len, &bundle, errmsg), 0);

    assert_int_equal(ca_verify_x509(bundle, worker, NULL, TEST_NOW, CA_ROLE_WORKER_OU, errmsg),
                     0);
    /* A client's peer chain starts with the leaf itself. */
    assert_int_equal(
        ca_verify_x509(bundle, manager, chain, TEST_NOW, CA_ROLE_MANAGER_OU, errmsg), 0);
    assert_int_equal(
        ca_verify_x509(bundle, worker, NULL, TEST_NOW, CA_ROLE_MANAGER_OU, errmsg),
        CA_EVERIFY);
    expect_message(errmsg, "DNS SAN " CA_ROLE_MANAGER_OU);
    assert_int_equal(ca_verify_x509(bundle, NULL, NULL, TEST_NOW, NULL, errmsg), CA_EINVALID);
    expect_message(errmsg, "no certificate");

    test_root_create(TEST_NOW, &other);
    assert_int_equal(
        ca_bundle_open(other.cert.data, other.cert.len, &other_bundle, errmsg), 0);
    assert_int_equal(ca_verify_x509(other_bundle, manager, chain, TEST_NOW, NULL, errmsg),
                     CA_EVERIFY);
    expect_message(errmsg, "unable to get local issuer certificate");
    test_assert_no_openssl_error();

    ca_bundle_close(other_bundle);
    ca_bundle_close(bundle);
    test_root_free(&other);
    sk_X509_free(chain);
    X509_free(worker);
    X509_free(manager);
}

/* The certificate a joining manager serves carries its key, which the
 * leader reads back with ca_x509_key_hash. */
static void join_cert_carries_key(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    unsigned char generated[32];
    unsigned char served[32];
    ca_buf key = {0};
    ca_buf csr = {0};
    ca_buf cert = {0};
    ca_cert_info info;
    X509 *parsed;

    assert_int_equal(ca_key_and_csr_generate(&key, &csr, generated, errmsg), 0);
    assert_int_equal(ca_join_cert_create(key.data, key.len, TEST_NOW, &cert, errmsg), 0);
    assert_int_equal(ca_cert_read(cert.data, cert.len, &info, errmsg), 0);
    assert_string_equal(info.common_name, CA_JOIN_CN);
    assert_string_equal(info.issuer_cn, CA_JOIN_CN);
    assert_int_equal(info.not_before, TEST_NOW - CA_BACKDATE);
    assert_int_equal(info.not_after, TEST_NOW + 24 * 60 * 60);
    assert_memory_equal(info.key_hash, generated, sizeof generated);

    parsed = test_x509(cert.data, cert.len);
    assert_int_equal(ca_x509_key_hash(parsed, served, errmsg), 0);
    assert_memory_equal(served, generated, sizeof served);
    assert_int_equal(ca_x509_key_hash(NULL, served, errmsg), CA_EINVALID);
    ca_buf_free(&cert);
    assert_int_equal(ca_join_cert_create("junk", 4, TEST_NOW, &cert, errmsg), CA_EINVALID);
    assert_null(cert.data);
    test_assert_no_openssl_error();

    X509_free(parsed);
    ca_buf_free(&key);
    ca_buf_free(&csr);
}

static void cert_read_rejects_garbage(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_cert_info info;

    assert_int_equal(ca_cert_read("junk", 4, &info, errmsg), CA_EINVALID);
    expect_message(errmsg, "certificate is not a valid PEM CERTIFICATE");
    assert_int_equal(ca_cert_read(NULL, 0, &info, errmsg), CA_EINVALID);
    test_assert_no_openssl_error();
}

/* A serial shorter than 20 bytes, from another CA, is left-padded. */
static void cert_read_short_serial(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_root intermediate = {0};
    fixture *f = *state;
    ca_cert_info info;

    test_intermediate_create(&f->root, &intermediate);
    assert_int_equal(
        ca_cert_read(intermediate.cert.data, intermediate.cert.len, &info, errmsg), 0);
    /* The helper gives the intermediate serial 4242 = 0x1092. */
    assert_string_equal(info.serial, "0000000000000000000000000000000000001092");
    test_root_free(&intermediate);
}

int run_verify_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify_leaf_against_root),
        cmocka_unit_test(verify_other_root_fails),
        cmocka_unit_test(verify_bundle_two_roots),
        cmocka_unit_test(verify_validity_window),
        cmocka_unit_test(verify_required_san_missing),
        cmocka_unit_test(verify_san_ignores_case),
        cmocka_unit_test(verify_through_intermediate),
        cmocka_unit_test(verify_rejects_bad_input),
        cmocka_unit_test(bundle_verify_many),
        cmocka_unit_test(bundle_open_rejects_bad_input),
        cmocka_unit_test(key_matches_cert_cases),
        cmocka_unit_test(verify_issued_cases),
        cmocka_unit_test(verify_x509_cases),
        cmocka_unit_test(join_cert_carries_key),
        cmocka_unit_test(cert_read_rejects_garbage),
        cmocka_unit_test(cert_read_short_serial),
    };
    return cmocka_run_group_tests_name("ca_verify", tests, setup, teardown);
}
