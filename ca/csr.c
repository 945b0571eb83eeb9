/* Certificate signing requests: creating one for a node's key and checking
 * one that a joining or renewing node sent. */
#include <ca/ca.h>

#include "internal.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static int csr_to_pem(X509_REQ *req, ca_buf *out, char *errmsg)
{
    BIO *bio = ca_bio_output();
    int rv;

    if (bio == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM,
                               "allocating a buffer for the CSR failed");
    }
    if (PEM_write_bio_X509_REQ(bio, req) != 1) {
        rv = ca_fail_openssl(errmsg, CA_ECRYPTO, "encoding the CSR as PEM failed");
    } else {
        rv = ca_bio_to_buf(bio, out, errmsg);
    }
    BIO_free(bio);
    return rv;
}

/* Writes a CSR for key, with an empty subject and signed by key itself. */
static int csr_build(EVP_PKEY *key, ca_buf *csr_pem, char *errmsg)
{
    X509_REQ *req = X509_REQ_new();
    int rv;

    if (req == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating a CSR failed");
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1) {
        rv = ca_fail_openssl(errmsg, CA_ECRYPTO, "filling in the CSR failed");
    } else if (X509_REQ_sign(req, key, ca_signing_digest(key)) <= 0) {
        rv = ca_fail_openssl(errmsg, CA_ECRYPTO, "signing the CSR failed");
    } else {
        rv = csr_to_pem(req, csr_pem, errmsg);
    }
    X509_REQ_free(req);
    return rv;
}

/* Any key type that OpenSSL can sign with is accepted here, because the
 * issuer's ca_csr_check is where the P-256 rule is enforced. */
int ca_csr_create(const char *key_pem, size_t key_len, ca_buf *csr_pem, char *errmsg)
{
    EVP_PKEY *key = NULL;
    int rv;

    csr_pem->data = NULL;
    csr_pem->len = 0;

    rv = ca_key_parse(key_pem, key_len, "private key", &key, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = csr_build(key, csr_pem, errmsg);
    EVP_PKEY_free(key);
    return rv;
}

int ca_key_and_csr_generate(ca_buf *key_pem, ca_buf *csr_pem, char *errmsg)
{
    EVP_PKEY *key = NULL;
    int rv;

    memset(key_pem, 0, sizeof *key_pem);
    memset(csr_pem, 0, sizeof *csr_pem);

    rv = ca_key_new_p256(&key, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = ca_key_to_pem(key, key_pem, errmsg);
    if (rv == 0) {
        rv = csr_build(key, csr_pem, errmsg);
    }
    if (rv != 0) {
        ca_buf_free(key_pem);
    }
    EVP_PKEY_free(key);
    return rv;
}

int ca_csr_load(const char *pem, size_t len, X509_REQ **out, char *errmsg)
{
    X509_REQ *req;
    EVP_PKEY *key;
    BIO *bio;
    int rv;

    *out = NULL;
    rv = ca_check_input(pem, len, "CSR", errmsg);
    if (rv != 0) {
        return rv;
    }
    bio = ca_bio_input(pem, len);
    if (bio == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating a BIO for the CSR failed");
    }
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (req == NULL) {
        return ca_fail_openssl(errmsg, CA_EINVALID,
                               "CSR is not a valid PEM CERTIFICATE REQUEST");
    }

    key = X509_REQ_get0_pubkey(req);
    if (key == NULL) {
        rv = ca_fail_openssl(errmsg, CA_EINVALID, "CSR public key cannot be decoded");
        goto fail;
    }

    /* The key type is checked first so that an RSA or Ed25519 CSR gets the
     * more useful message even when its signature is also bad. */
    rv = ca_key_check_p256(key, "CSR", errmsg);
    if (rv != 0) {
        goto fail;
    }

    /* X509_REQ_verify returns 0 for a wrong signature and -1 for one that
     * does not decode. Either way the CSR is not signed by its own key. */
    if (X509_REQ_verify(req, key) != 1) {
        ERR_clear_error();
        rv = ca_fail(errmsg, CA_EINVALID,
                     "CSR signature does not verify with the CSR's own public key; "
                     "the CSR was altered or signed with another key");
        goto fail;
    }

    *out = req;
    return 0;

fail:
    X509_REQ_free(req);
    return rv;
}

int ca_csr_check(const char *csr_pem, size_t csr_len, unsigned char key_hash[32],
                 char *errmsg)
{
    X509_REQ *req = NULL;
    int rv;

    rv = ca_csr_load(csr_pem, csr_len, &req, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = ca_spki_hash(X509_REQ_get_X509_PUBKEY(req), key_hash, errmsg);
    X509_REQ_free(req);
    return rv;
}
