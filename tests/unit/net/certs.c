#include "certs.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static char *bio_text(BIO *bio)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *copy = malloc((size_t)len + 1);

    if (copy != NULL) {
        memcpy(copy, data, (size_t)len);
        copy[len] = '\0';
    }
    return copy;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int set_subject(X509 *cert, const char *cn, const char *ou, const char *o)
{
    X509_NAME *name = X509_get_subject_name(cert);
    const char *fields[3][2] = {{"CN", cn}, {"OU", ou}, {"O", o}};

    for (int i = 0; i < 3; i++) {
        if (fields[i][1] != NULL &&
            X509_NAME_add_entry_by_txt(name, fields[i][0], MBSTRING_UTF8,
                                       (const unsigned char *)fields[i][1], -1, -1,
                                       0) != 1) {
            return -1;
        }
    }
    return 0;
}

static int set_serial_and_validity(X509 *cert)
{
    BIGNUM *bn = BN_new();
    int ok = bn != NULL && BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;

    BN_free(bn);
    if (!ok || X509_set_version(cert, 2) != 1) {
        return -1;
    }
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400) == NULL) {
        return -1;
    }
    return 0;
}

static int write_pems(test_cert *c)
{
    BIO *cert_bio = BIO_new(BIO_s_mem());
    BIO *key_bio = BIO_new(BIO_s_mem());
    int ok = cert_bio != NULL && key_bio != NULL &&
             PEM_write_bio_X509(cert_bio, c->cert) &&
             PEM_write_bio_PrivateKey(key_bio, c->key, NULL, NULL, 0, NULL, NULL);

    if (ok) {
        c->cert_pem = bio_text(cert_bio);
        c->key_pem = bio_text(key_bio);
    }
    BIO_free(cert_bio);
    BIO_free(key_bio);
    return ok && c->cert_pem != NULL && c->key_pem != NULL ? 0 : -1;
}

/* Builds and signs one certificate. With issuer NULL it is self-signed. */
static test_cert *make_cert(const test_cert *issuer, const char *cn, const char *ou,
                            const char *o, const char *san)
{
    test_cert *c = calloc(1, sizeof(*c));
    X509V3_CTX ctx;
    X509 *signer_cert;
    EVP_PKEY *signer_key;
    int rv = 0;

    if (c == NULL) {
        return NULL;
    }
    c->key = EVP_EC_gen("P-256");
    c->cert = X509_new();
    if (c->key == NULL || c->cert == NULL || set_serial_and_validity(c->cert) != 0 ||
        set_subject(c->cert, cn, ou, o) != 0 || X509_set_pubkey(c->cert, c->key) != 1) {
        test_cert_free(c);
        return NULL;
    }
    signer_cert = issuer != NULL ? issuer->cert : c->cert;
    signer_key = issuer != NULL ? issuer->key : c->key;
    X509_set_issuer_name(c->cert, X509_get_subject_name(signer_cert));

    X509V3_set_ctx(&ctx, signer_cert, c->cert, NULL, NULL, 0);
    X509V3_set_ctx_nodb(&ctx);
    rv |= add_ext(c->cert, &ctx, NID_subject_key_identifier, "hash");
    rv |= add_ext(c->cert, &ctx, NID_authority_key_identifier, "keyid:always");
    if (issuer == NULL) {
        rv |= add_ext(c->cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        rv |= add_ext(c->cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        rv |= add_ext(c->cert, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        rv |= add_ext(c->cert, &ctx, NID_key_usage,
                      "critical,digitalSignature,keyEncipherment");
        rv |= add_ext(c->cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
        if (san != NULL) {
            rv |= add_ext(c->cert, &ctx, NID_subject_alt_name, san);
        }
    }
    if (rv != 0 || X509_sign(c->cert, signer_key, EVP_sha256()) == 0 ||
        write_pems(c) != 0) {
        test_cert_free(c);
        return NULL;
    }
    return c;
}

test_cert *test_cert_root(const char *cn)
{
    return make_cert(NULL, cn, NULL, NULL, NULL);
}

test_cert *test_cert_leaf(const test_cert *issuer, const char *cn, const char *ou,
                          const char *o, const char *san)
{
    return make_cert(issuer, cn, ou, o, san);
}

void test_cert_free(test_cert *c)
{
    if (c == NULL) {
        return;
    }
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    free(c->cert_pem);
    free(c->key_pem);
    free(c);
}
