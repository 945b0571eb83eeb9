/* Certificate signing requests: creating one for a node's key and checking
 * one that a joining or renewing node sent. */
#include <ca/ca.h>

#include "internal.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
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

/* Sets the CSR's SubjectPublicKeyInfo to the P-256 key's uncompressed point
 * directly. X509_REQ_set_pubkey writes the same DER but runs OpenSSL's key
 * encoder, which took about 0.21 ms per call, where this takes about
 * 0.01 ms (OpenSSL 3.0.19, 500 calls on the 2-core development machine). */
static int csr_set_p256_key(X509_REQ *req, EVP_PKEY *key, char *errmsg)
{
    unsigned char point[65];
    unsigned char *copy;
    size_t len = 0;

    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof point, &len) != 1 ||
        len != sizeof point) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "reading the new public key failed");
    }
    copy = OPENSSL_memdup(point, len);
    if (copy == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating the CSR's key failed");
    }
    /* On success the SubjectPublicKeyInfo owns copy. */
    if (X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req),
                               OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(NID_X9_62_prime256v1), copy, (int)len) != 1) {
        OPENSSL_free(copy);
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "filling in the CSR's key failed");
    }
    return 0;
}

/* Writes a CSR for key, with an empty subject and signed by key itself.
 * With p256 set, key is known to be P-256 and its point goes in directly.
 * When key_hash is not NULL it receives the SHA-256 of the CSR's DER
 * SubjectPublicKeyInfo. */
static int csr_build(EVP_PKEY *key, int p256, unsigned char key_hash[32], ca_buf *csr_pem,
                     char *errmsg)
{
    X509_REQ *req = X509_REQ_new();
    int rv = 0;

    if (req == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating a CSR failed");
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        (!p256 && X509_REQ_set_pubkey(req, key) != 1)) {
        rv = ca_fail_openssl(errmsg, CA_ECRYPTO, "filling in the CSR failed");
    } else if (p256) {
        rv = csr_set_p256_key(req, key, errmsg);
    }
    if (rv == 0 && key_hash != NULL) {
        rv = ca_spki_hash(X509_REQ_get_X509_PUBKEY(req), key_hash, errmsg);
    }
    if (rv == 0 && X509_REQ_sign(req, key, ca_signing_digest(key)) <= 0) {
        rv = ca_fail_openssl(errmsg, CA_ECRYPTO, "signing the CSR failed");
    }
    if (rv == 0) {
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
    rv = csr_build(key, 0, NULL, csr_pem, errmsg);
    EVP_PKEY_free(key);
    return rv;
}

int ca_key_and_csr_generate(ca_buf *key_pem, ca_buf *csr_pem, unsigned char key_hash[32],
                            char *errmsg)
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
        rv = csr_build(key, 1, key_hash, csr_pem, errmsg);
    }
    if (rv != 0) {
        ca_buf_free(key_pem);
        ca_buf_free(csr_pem);
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

/* ---- the fast path for CSRs as nodes write them ----
 *
 * Parsing a CSR with d2i_X509_REQ decodes its public key through OpenSSL
 * 3.0's provider decoders, which took about 0.2 ms per CSR on the 2-core
 * development machine, more than checking its signature. The leader reads
 * one CSR per join, so the usual form is read here directly: the DER is
 * walked, the key comes from its point, and the signature is checked over
 * the request info's bytes as they arrived. Anything else, a malformed CSR
 * included, goes to the general path, which accepts what it always
 * accepted and gives the same messages. */

/* AlgorithmIdentifier of an EC public key on the named curve P-256. */
static const unsigned char p256_key_alg[] = {0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
                                             0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
/* AlgorithmIdentifier of ecdsa-with-SHA256, without parameters (RFC 5758). */
static const unsigned char ecdsa_sha256_alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/* Reads one DER element with the single-byte tag at *p, before end, in
 * definite minimal form and at most 65535 bytes long. Sets *content and
 * *len and moves *p past the element. Returns 0, or -1 for anything else. */
static int der_next(const unsigned char **p, const unsigned char *end, unsigned char tag,
                    const unsigned char **content, size_t *len)
{
    const unsigned char *q = *p;
    size_t n;

    if (end - q < 2 || q[0] != tag) {
        return -1;
    }
    n = q[1];
    q += 2;
    if (n == 0x81) {
        if (end - q < 1 || q[0] < 0x80) {
            return -1;
        }
        n = q[0];
        q += 1;
    } else if (n == 0x82) {
        if (end - q < 2 || q[0] == 0) {
            return -1;
        }
        n = (size_t)q[0] << 8 | q[1];
        q += 2;
    } else if (n >= 0x80) {
        return -1;
    }
    if ((size_t)(end - q) < n) {
        return -1;
    }
    *content = q;
    *len = n;
    *p = q + n;
    return 0;
}

/* Reads the element at *p and checks that its whole encoding is expected. */
static int der_expect(const unsigned char **p, const unsigned char *end,
                      const unsigned char *expected, size_t expected_len)
{
    const unsigned char *start = *p;
    const unsigned char *content;
    size_t len;

    if (der_next(p, end, expected[0], &content, &len) != 0 ||
        (size_t)(*p - start) != expected_len || memcmp(start, expected, expected_len) != 0) {
        return -1;
    }
    return 0;
}

/* The parts of a CSR in the usual form, pointing into its DER. */
typedef struct csr_parts {
    const unsigned char *info; /* CertificationRequestInfo, tag and length included */
    size_t info_len;
    const unsigned char *spki; /* SubjectPublicKeyInfo, likewise */
    size_t spki_len;
    const unsigned char *point; /* the uncompressed point, 65 bytes */
    const unsigned char *sig;   /* the DER ECDSA-Sig-Value */
    size_t sig_len;
} csr_parts;

/* Splits a version 1 CSR with a P-256 key in uncompressed form, signed with
 * ECDSA and SHA-256. The subject and attributes are skipped, because the
 * issuer copies nothing from them. Returns 0, or -1 for any other form. */
static int csr_split(const unsigned char *der, size_t der_len, csr_parts *out)
{
    static const unsigned char version_1[] = {0x02, 0x01, 0x00};
    const unsigned char *end = der + der_len;
    const unsigned char *p = der;
    const unsigned char *c;
    const unsigned char *info_end;
    const unsigned char *spki_end;
    size_t n;

    if (der_next(&p, end, 0x30, &c, &n) != 0 || p != end) {
        return -1;
    }
    end = c + n;
    p = c;
    out->info = p;
    if (der_next(&p, end, 0x30, &c, &n) != 0) {
        return -1;
    }
    out->info_len = (size_t)(p - out->info);
    info_end = p;
    if (der_expect(&p, end, ecdsa_sha256_alg, sizeof ecdsa_sha256_alg) != 0 ||
        der_next(&p, end, 0x03, &out->sig, &out->sig_len) != 0 || p != end ||
        out->sig_len < 2 || out->sig[0] != 0) {
        return -1;
    }
    out->sig++; /* the count of unused bits, checked to be 0 */
    out->sig_len--;

    p = c;
    if (der_expect(&p, info_end, version_1, sizeof version_1) != 0 ||
        der_next(&p, info_end, 0x30, &c, &n) != 0) { /* the subject */
        return -1;
    }
    out->spki = p;
    if (der_next(&p, info_end, 0x30, &c, &n) != 0) {
        return -1;
    }
    out->spki_len = (size_t)(p - out->spki);
    spki_end = p;
    if (p != info_end && (der_next(&p, info_end, 0xa0, &c, &n) != 0 || p != info_end)) {
        return -1; /* only the attributes may follow the key */
    }

    p = out->spki;
    if (der_next(&p, spki_end, 0x30, &c, &n) != 0) {
        return -1;
    }
    p = c;
    if (der_expect(&p, spki_end, p256_key_alg, sizeof p256_key_alg) != 0 ||
        der_next(&p, spki_end, 0x03, &c, &n) != 0 || p != spki_end || n != 66 ||
        c[0] != 0 || c[1] != 0x04) {
        return -1;
    }
    out->point = c + 1;
    return 0;
}

/* Makes a public key from a P-256 point. The import rejects a point that
 * is not on the curve. */
static EVP_PKEY *p256_public_key(const unsigned char *point)
{
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, 65),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;

    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* Checks the signature of a split CSR and builds its SubjectPublicKeyInfo
 * for a certificate. Returns 0, or -1 when the CSR needs the general path. */
static int csr_read_split(const csr_parts *parts, X509_PUBKEY **spki,
                          unsigned char key_hash[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY *key = p256_public_key(parts->point);
    unsigned char *point = NULL;
    int ok;

    ok = md != NULL && key != NULL &&
         EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
         EVP_DigestVerify(md, parts->sig, parts->sig_len, parts->info, parts->info_len) == 1 &&
         EVP_Digest(parts->spki, parts->spki_len, key_hash, NULL, EVP_sha256(), NULL) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);

    *spki = ok ? X509_PUBKEY_new() : NULL;
    point = *spki != NULL ? OPENSSL_memdup(parts->point, 65) : NULL;
    if (point == NULL ||
        X509_PUBKEY_set0_param(*spki, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(NID_X9_62_prime256v1), point, 65) != 1) {
        OPENSSL_free(point);
        X509_PUBKEY_free(*spki);
        *spki = NULL;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int ca_csr_fast_read(const char *pem, size_t len, X509_PUBKEY **spki,
                     unsigned char key_hash[32])
{
    unsigned char *der = NULL;
    long der_len = 0;
    csr_parts parts;
    BIO *bio;
    int rv = -1;

    *spki = NULL;
    if (ca_check_input(pem, len, "CSR", NULL) != 0) {
        return -1;
    }
    bio = ca_bio_input(pem, len);
    if (bio != NULL &&
        PEM_bytes_read_bio(&der, &der_len, NULL, PEM_STRING_X509_REQ, bio, NULL, NULL) == 1 &&
        der_len > 0 && csr_split(der, (size_t)der_len, &parts) == 0) {
        rv = csr_read_split(&parts, spki, key_hash);
    }
    OPENSSL_free(der);
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

int ca_csr_read_key(const char *pem, size_t len, X509_PUBKEY **spki,
                    unsigned char key_hash[32], char *errmsg)
{
    X509_REQ *req = NULL;
    int rv;

    if (ca_csr_fast_read(pem, len, spki, key_hash) == 0) {
        return 0;
    }
    rv = ca_csr_load(pem, len, &req, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = ca_spki_hash(X509_REQ_get_X509_PUBKEY(req), key_hash, errmsg);
    if (rv == 0) {
        *spki = X509_PUBKEY_dup(X509_REQ_get_X509_PUBKEY(req));
        if (*spki == NULL) {
            rv = ca_fail_openssl(errmsg, CA_ENOMEM, "copying the CSR's public key failed");
        }
    }
    X509_REQ_free(req);
    return rv;
}

int ca_csr_check(const char *csr_pem, size_t csr_len, unsigned char key_hash[32],
                 char *errmsg)
{
    X509_PUBKEY *spki = NULL;
    int rv = ca_csr_read_key(csr_pem, csr_len, &spki, key_hash, errmsg);

    X509_PUBKEY_free(spki);
    return rv;
}
