/* Keys and CSRs: generation, the PKCS#8 format and every CSR rejection. */
#include "helpers.h"

#include <ca/internal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

/* Writes a CSR for key, signed by key itself. */
static void csr_for_key(EVP_PKEY *key, ca_buf *csr)
{
    assert_non_null(key);
    test_csr_pem(key, key, NULL, csr);
}

static void expect_csr_error(const ca_buf *csr, size_t len, int code, const char *text)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    unsigned char hash[32];

    assert_int_equal(ca_csr_check(csr->data, len, hash, errmsg), code);
    if (strstr(errmsg, text) == NULL) {
        print_error("message \"%s\" lacks \"%s\"\n", errmsg, text);
    }
    assert_non_null(strstr(errmsg, text));
    test_assert_no_openssl_error();
}

static void key_file_is_pkcs8_p256(void **state)
{
    char dir[] = "/tmp/swarmpki-ca-test-XXXXXX";
    char path[sizeof dir + 32];
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf key = {0};
    PKCS8_PRIV_KEY_INFO *info;
    EVP_PKEY *parsed;
    char group[64] = "";
    FILE *file;
    BIO *bio;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/swarm-node.key", dir);

    assert_int_equal(ca_key_generate(&key, errmsg), 0);
    assert_int_equal(strlen(key.data), key.len);
    assert_non_null(strstr(key.data, "-----BEGIN PRIVATE KEY-----\n"));
    file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(fwrite(key.data, 1, key.len, file), key.len);
    assert_int_equal(fclose(file), 0);
    ca_buf_free(&key);
    assert_null(key.data);

    /* PEM_read_bio_PKCS8_PRIV_KEY_INFO accepts only an unencrypted PKCS#8
     * "PRIVATE KEY" block, not the older "EC PRIVATE KEY" form. */
    bio = BIO_new_file(path, "r");
    assert_non_null(bio);
    info = PEM_read_bio_PKCS8_PRIV_KEY_INFO(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(info);
    parsed = EVP_PKCS82PKEY(info);
    PKCS8_PRIV_KEY_INFO_free(info);
    assert_non_null(parsed);
    assert_true(EVP_PKEY_is_a(parsed, "EC"));
    assert_int_equal(EVP_PKEY_get_group_name(parsed, group, sizeof group, NULL), 1);
    assert_string_equal(group, "prime256v1");
    EVP_PKEY_free(parsed);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void keys_differ(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf first = {0};
    ca_buf second = {0};

    assert_int_equal(ca_key_generate(&first, errmsg), 0);
    assert_int_equal(ca_key_generate(&second, errmsg), 0);
    assert_string_not_equal(first.data, second.data);
    ca_buf_free(&first);
    ca_buf_free(&second);
}

static void csr_round_trip(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    test_node node = {0};
    unsigned char hash[32];
    unsigned char again[32];
    X509_REQ *req;
    BIO *bio;

    test_node_create(&node);
    assert_non_null(strstr(node.csr.data, "-----BEGIN CERTIFICATE REQUEST-----"));
    assert_int_equal(ca_csr_check(node.csr.data, node.csr.len, hash, errmsg), 0);
    assert_int_equal(ca_csr_check(node.csr.data, node.csr.len, again, errmsg), 0);
    assert_memory_equal(hash, again, sizeof hash);
    test_assert_no_openssl_error();

    /* The subject is empty because the issuer ignores it. */
    bio = BIO_new_mem_buf(node.csr.data, (int)node.csr.len);
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    X509_REQ_free(req);
    BIO_free(bio);
    test_node_free(&node);
}

/* key_hash is the SHA-256 of the DER SubjectPublicKeyInfo, computed here
 * with i2d_PUBKEY and EVP_Digest on the key itself. */
static void csr_key_hash_value(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    EVP_PKEY *key = EVP_EC_gen("P-256");
    unsigned char expected[32];
    unsigned char hash[32];
    unsigned char *der = NULL;
    ca_buf csr = {0};
    int der_len;

    csr_for_key(key, &csr);
    der_len = i2d_PUBKEY(key, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)der_len, expected, NULL, EVP_sha256(), NULL),
                     1);
    OPENSSL_free(der);

    assert_int_equal(ca_csr_check(csr.data, csr.len, hash, errmsg), 0);
    assert_memory_equal(hash, expected, sizeof hash);
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
}

/* The SPKI hash equals the i2d_PUBKEY hash for P-256 keys with compressed
 * points or explicit parameters too, which the CSR check accepts. */
static void csr_key_hash_encodings(void **state)
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
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EVP_PKEY *key = test_p256_key(cases[i].point_format, cases[i].encoding);
        unsigned char expected[32];
        unsigned char hash[32];
        unsigned char *der = NULL;
        ca_buf csr = {0};
        int der_len;

        print_message("case %zu: %s, %s\n", i, cases[i].point_format, cases[i].encoding);
        csr_for_key(key, &csr);
        der_len = i2d_PUBKEY(key, &der);
        assert_true(der_len > 0);
        assert_int_equal(
            EVP_Digest(der, (size_t)der_len, expected, NULL, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);

        assert_int_equal(ca_csr_check(csr.data, csr.len, hash, errmsg), 0);
        assert_memory_equal(hash, expected, sizeof hash);
        ca_buf_free(&csr);
        EVP_PKEY_free(key);
    }
}

static void csr_rejects_rsa_512(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(512);
    ca_buf csr = {0};

    csr_for_key(key, &csr);
    expect_csr_error(&csr, csr.len, CA_EKEYTYPE, "RSA with 512 bits");
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
}

static void csr_rejects_rsa_2048(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    ca_buf csr = {0};

    csr_for_key(key, &csr);
    expect_csr_error(&csr, csr.len, CA_EKEYTYPE, "RSA with 2048 bits");
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
}

static void csr_rejects_p384(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-384");
    ca_buf csr = {0};

    csr_for_key(key, &csr);
    expect_csr_error(&csr, csr.len, CA_EKEYTYPE, "secp384r1 (384 bits)");
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
}

static void csr_rejects_ed25519(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ca_buf csr = {0};

    csr_for_key(key, &csr);
    expect_csr_error(&csr, csr.len, CA_EKEYTYPE, "ED25519");
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
}

/* The CSR carries one P-256 key but is signed with another. */
static void csr_rejects_foreign_signature(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    ca_buf csr = {0};

    assert_non_null(key);
    assert_non_null(other);
    test_csr_pem(key, other, NULL, &csr);
    expect_csr_error(&csr, csr.len, CA_EINVALID, "signature does not verify");
    ca_buf_free(&csr);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

/* Flips one bit in the last byte of the DER, which lies inside the ECDSA
 * signature's s value, and wraps the result in PEM again. */
static void csr_rejects_tampered_signature(void **state)
{
    test_node node = {0};
    X509_REQ *req;
    unsigned char *der = NULL;
    const unsigned char *cursor;
    int der_len;
    BIO *bio;
    char *data;
    long len;
    ca_buf tampered = {0};

    test_node_create(&node);
    bio = BIO_new_mem_buf(node.csr.data, (int)node.csr.len);
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(req);
    der_len = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    assert_true(der_len > 0);
    der[der_len - 1] ^= 0x01;

    cursor = der;
    req = d2i_X509_REQ(NULL, &cursor, der_len);
    OPENSSL_free(der);
    assert_non_null(req);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    len = BIO_get_mem_data(bio, &data);
    tampered.data = data;
    tampered.len = (size_t)len;

    expect_csr_error(&tampered, tampered.len, CA_EINVALID, "signature does not verify");
    BIO_free(bio);
    X509_REQ_free(req);
    test_node_free(&node);
}

static void csr_rejects_garbage(void **state)
{
    char text[] = "this is not a certificate signing request\n";
    ca_buf garbage = {text, sizeof text - 1};

    expect_csr_error(&garbage, garbage.len, CA_EINVALID,
                     "CSR is not a valid PEM CERTIFICATE REQUEST");
}

static void csr_rejects_truncated(void **state)
{
    test_node node = {0};

    test_node_create(&node);
    expect_csr_error(&node.csr, node.csr.len / 2, CA_EINVALID,
                     "CSR is not a valid PEM CERTIFICATE REQUEST");
    expect_csr_error(&node.csr, node.csr.len - 30, CA_EINVALID,
                     "CSR is not a valid PEM CERTIFICATE REQUEST");
    test_node_free(&node);
}

static void csr_rejects_empty(void **state)
{
    char text[] = "";
    ca_buf empty = {text, 0};
    char errmsg[CA_ERRMSG_SIZE] = "";
    unsigned char hash[32];

    expect_csr_error(&empty, 0, CA_EINVALID, "CSR is empty");
    assert_int_equal(ca_csr_check(NULL, 0, hash, errmsg), CA_EINVALID);
}

static void csr_rejects_oversized(void **state)
{
    size_t len = 2 * 1024 * 1024;
    ca_buf big = {malloc(len + 1), len};

    assert_non_null(big.data);
    memset(big.data, 'A', len);
    big.data[len] = '\0';
    expect_csr_error(&big, len, CA_EINVALID, "over the 1048576-byte limit");
    free(big.data);
}

/* A certificate is valid PEM but not a CSR. */
static void csr_rejects_certificate(void **state)
{
    test_root root = {0};

    test_root_create(TEST_NOW, &root);
    expect_csr_error(&root.cert, root.cert.len, CA_EINVALID,
                     "CSR is not a valid PEM CERTIFICATE REQUEST");
    test_root_free(&root);
}

static void csr_create_rejects_bad_key(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    char text[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    ca_buf csr = {0};

    assert_int_equal(ca_csr_create(text, strlen(text), &csr, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "private key is not an unencrypted PEM private key"));
    assert_null(csr.data);
    test_assert_no_openssl_error();
}

/* An encrypted key must fail to load, never prompt on the terminal. */
static void key_rejects_encrypted(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    EVP_PKEY *key = EVP_EC_gen("P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    ca_buf csr = {0};
    char *data;
    long len;

    assert_non_null(key);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), "secret",
                                                   6, NULL, NULL),
                     1);
    len = BIO_get_mem_data(bio, &data);
    assert_int_equal(ca_csr_create(data, (size_t)len, &csr, errmsg), CA_EINVALID);
    assert_non_null(strstr(errmsg, "unencrypted"));
    BIO_free(bio);
    EVP_PKEY_free(key);
}

/* The key is PKCS#8 P-256, and the CSR passes the issuer's check and
 * carries that key. */
static void key_and_csr_generate_pair(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf key = {0};
    ca_buf csr = {0};
    ca_buf again = {0};
    unsigned char hash[32];
    unsigned char again_hash[32];
    unsigned char generated_hash[32];

    assert_int_equal(ca_key_and_csr_generate(&key, &csr, generated_hash, errmsg), 0);
    assert_int_equal(strlen(key.data), key.len);
    assert_int_equal(strlen(csr.data), csr.len);
    assert_non_null(strstr(key.data, "-----BEGIN PRIVATE KEY-----\n"));
    assert_non_null(strstr(csr.data, "-----BEGIN CERTIFICATE REQUEST-----\n"));
    assert_int_equal(ca_csr_check(csr.data, csr.len, hash, errmsg), 0);
    assert_memory_equal(hash, generated_hash, sizeof hash);

    /* ca_csr_create on the returned key gives a CSR for the same key: the
     * SubjectPublicKeyInfo written without the key encoder has the DER that
     * X509_REQ_set_pubkey writes. */
    assert_int_equal(ca_csr_create(key.data, key.len, &again, errmsg), 0);
    assert_int_equal(ca_csr_check(again.data, again.len, again_hash, errmsg), 0);
    assert_memory_equal(hash, again_hash, sizeof hash);
    test_assert_no_openssl_error();

    ca_buf_free(&key);
    ca_buf_free(&csr);
    ca_buf_free(&again);
}

static void key_and_csr_generate_differ(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf first_key = {0};
    ca_buf first_csr = {0};
    ca_buf second_key = {0};
    ca_buf second_csr = {0};

    assert_int_equal(ca_key_and_csr_generate(&first_key, &first_csr, NULL, errmsg), 0);
    assert_int_equal(ca_key_and_csr_generate(&second_key, &second_csr, NULL, errmsg), 0);
    assert_string_not_equal(first_key.data, second_key.data);
    assert_string_not_equal(first_csr.data, second_csr.data);
    ca_buf_free(&first_key);
    ca_buf_free(&first_csr);
    ca_buf_free(&second_key);
    ca_buf_free(&second_csr);
}

/* A key in the older SEC 1 "EC PRIVATE KEY" form misses the PKCS#8 fast path
 * and still parses through the general decoder. */
static void key_parse_sec1_form(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    EVP_PKEY *key = EVP_EC_gen("P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    ca_buf csr = {0};
    unsigned char hash[32];
    char *data;
    long len;

    assert_non_null(key);
    assert_non_null(bio);
    assert_int_equal(
        PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &data);
    assert_non_null(strstr(data, "-----BEGIN EC PRIVATE KEY-----"));

    assert_int_equal(ca_csr_create(data, (size_t)len, &csr, errmsg), 0);
    assert_int_equal(ca_csr_check(csr.data, csr.len, hash, errmsg), 0);
    test_assert_no_openssl_error();
    ca_buf_free(&csr);
    BIO_free(bio);
    EVP_PKEY_free(key);
}

/* ---- the fast path of ca_csr_fast_read ---- */

/* Decodes the DER inside a PEM CSR. */
static void csr_to_der(const ca_buf *pem, unsigned char **der, long *len)
{
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);

    assert_non_null(bio);
    assert_int_equal(PEM_bytes_read_bio(der, len, NULL, PEM_STRING_X509_REQ, bio, NULL, NULL),
                     1);
    BIO_free(bio);
}

/* Wraps DER bytes in a PEM CERTIFICATE REQUEST block. */
static void der_to_csr(const unsigned char *der, long len, ca_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    assert_non_null(bio);
    assert_true(PEM_write_bio(bio, PEM_STRING_X509_REQ, "", der, len) > 0);
    n = BIO_get_mem_data(bio, &data);
    out->data = malloc((size_t)n + 1);
    assert_non_null(out->data);
    memcpy(out->data, data, (size_t)n);
    out->data[n] = '\0';
    out->len = (size_t)n;
    BIO_free(bio);
}

/* The general path's view of a CSR: its SubjectPublicKeyInfo DER. */
static int general_spki_der(const ca_buf *pem, unsigned char **der)
{
    X509_REQ *req = NULL;
    int len;

    assert_int_equal(ca_csr_load(pem->data, pem->len, &req, NULL), 0);
    *der = NULL;
    len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), der);
    X509_REQ_free(req);
    assert_true(len > 0);
    return len;
}

/* A CSR as nodes write it takes the fast path, which yields the same key,
 * hash and SubjectPublicKeyInfo DER as the general path. */
static void fast_read_matches_general_path(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf key = {0};
    ca_buf csr = {0};
    ca_buf with_subject = {0};
    unsigned char generated[32];
    unsigned char fast[32];
    unsigned char general[32];
    X509_PUBKEY *spki = NULL;
    unsigned char *fast_der = NULL;
    unsigned char *general_der = NULL;
    int fast_len;
    int general_len;
    EVP_PKEY *p256 = test_p256_key("uncompressed", "named_curve");

    assert_int_equal(ca_key_and_csr_generate(&key, &csr, generated, errmsg), 0);
    assert_int_equal(ca_csr_fast_read(csr.data, csr.len, &spki, fast), 0);
    assert_memory_equal(fast, generated, sizeof fast);

    fast_len = i2d_X509_PUBKEY(spki, &fast_der);
    general_len = general_spki_der(&csr, &general_der);
    assert_int_equal(fast_len, general_len);
    assert_memory_equal(fast_der, general_der, (size_t)fast_len);
    EVP_Digest(general_der, (size_t)general_len, general, NULL, EVP_sha256(), NULL);
    assert_memory_equal(fast, general, sizeof fast);
    X509_PUBKEY_free(spki);
    spki = NULL;

    /* A subject is skipped, not refused: the issuer copies nothing from it. */
    test_csr_pem(p256, p256, "someone else", &with_subject);
    assert_int_equal(ca_csr_fast_read(with_subject.data, with_subject.len, &spki, fast), 0);
    X509_PUBKEY_free(spki);
    test_assert_no_openssl_error();

    OPENSSL_free(fast_der);
    OPENSSL_free(general_der);
    ca_buf_free(&with_subject);
    ca_buf_free(&key);
    ca_buf_free(&csr);
    EVP_PKEY_free(p256);
}

/* Expects the fast path to pass csr on, and ca_csr_check to give code. */
static void expect_general_path(const ca_buf *csr, int code)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    unsigned char hash[32];
    X509_PUBKEY *spki = NULL;

    assert_int_equal(ca_csr_fast_read(csr->data, csr->len, &spki, hash), -1);
    assert_null(spki);
    test_assert_no_openssl_error();
    assert_int_equal(ca_csr_check(csr->data, csr->len, hash, errmsg), code);
    test_assert_no_openssl_error();
}

/* Every other form, valid or not, goes to the general path. */
static void fast_read_passes_other_forms_on(void **state)
{
    ca_buf key = {0};
    ca_buf csr = {0};
    ca_buf edited = {0};
    unsigned char *der = NULL;
    unsigned char *longer;
    long len = 0;
    EVP_PKEY *compressed = test_p256_key("compressed", "named_curve");
    EVP_PKEY *explicit = test_p256_key("uncompressed", "explicit");

    /* Valid, but not the form nodes write. */
    test_csr_pem(compressed, compressed, NULL, &edited);
    expect_general_path(&edited, 0);
    ca_buf_free(&edited);
    test_csr_pem(explicit, explicit, NULL, &edited);
    expect_general_path(&edited, 0);
    ca_buf_free(&edited);

    assert_int_equal(ca_key_and_csr_generate(&key, &csr, NULL, NULL), 0);
    csr_to_der(&csr, &der, &len);

    /* A flipped bit in the signature, then in the key's point. */
    der[len - 1] ^= 0x01;
    der_to_csr(der, len, &edited);
    expect_general_path(&edited, CA_EINVALID);
    ca_buf_free(&edited);
    der[len - 1] ^= 0x01;
    der[40] ^= 0x01;
    der_to_csr(der, len, &edited);
    expect_general_path(&edited, CA_EINVALID);
    ca_buf_free(&edited);
    der[40] ^= 0x01;

    /* Cut short, and with a byte after the end. */
    der_to_csr(der, len - 1, &edited);
    expect_general_path(&edited, CA_EINVALID);
    ca_buf_free(&edited);
    longer = malloc((size_t)len + 1);
    assert_non_null(longer);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    der_to_csr(longer, len + 1, &edited);
    assert_int_equal(ca_csr_fast_read(edited.data, edited.len, &(X509_PUBKEY *){NULL},
                                      (unsigned char[32]){0}),
                     -1);
    ca_buf_free(&edited);

    /* The outer length in a longer form than DER allows. */
    assert_int_equal(der[0], 0x30);
    assert_int_equal(der[1], 0x81);
    longer[0] = 0x30;
    longer[1] = 0x82;
    longer[2] = 0x00;
    memcpy(longer + 3, der + 2, (size_t)len - 2);
    der_to_csr(longer, len + 1, &edited);
    assert_int_equal(ca_csr_fast_read(edited.data, edited.len, &(X509_PUBKEY *){NULL},
                                      (unsigned char[32]){0}),
                     -1);
    test_assert_no_openssl_error();
    ca_buf_free(&edited);

    free(longer);
    OPENSSL_free(der);
    ca_buf_free(&key);
    ca_buf_free(&csr);
    EVP_PKEY_free(compressed);
    EVP_PKEY_free(explicit);
}

int run_csr_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_file_is_pkcs8_p256),
        cmocka_unit_test(keys_differ),
        cmocka_unit_test(csr_round_trip),
        cmocka_unit_test(csr_key_hash_value),
        cmocka_unit_test(csr_key_hash_encodings),
        cmocka_unit_test(csr_rejects_rsa_512),
        cmocka_unit_test(csr_rejects_rsa_2048),
        cmocka_unit_test(csr_rejects_p384),
        cmocka_unit_test(csr_rejects_ed25519),
        cmocka_unit_test(csr_rejects_foreign_signature),
        cmocka_unit_test(csr_rejects_tampered_signature),
        cmocka_unit_test(csr_rejects_garbage),
        cmocka_unit_test(csr_rejects_truncated),
        cmocka_unit_test(csr_rejects_empty),
        cmocka_unit_test(csr_rejects_oversized),
        cmocka_unit_test(csr_rejects_certificate),
        cmocka_unit_test(csr_create_rejects_bad_key),
        cmocka_unit_test(key_rejects_encrypted),
        cmocka_unit_test(key_and_csr_generate_pair),
        cmocka_unit_test(key_and_csr_generate_differ),
        cmocka_unit_test(key_parse_sec1_form),
        cmocka_unit_test(fast_read_matches_general_path),
        cmocka_unit_test(fast_read_passes_other_forms_on),
    };
    return cmocka_run_group_tests_name("ca_csr", tests, NULL, NULL);
}
