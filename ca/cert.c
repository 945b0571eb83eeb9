/* Certificates in and out of PEM, and reading their fields into plain C. */
#include <ca/ca.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

int ca_cert_parse(const char *pem, size_t len, const char *label, X509 **out,
                  char *errmsg)
{
    char context[96];
    BIO *bio;
    int rv;

    *out = NULL;
    rv = ca_check_input(pem, len, label, errmsg);
    if (rv != 0) {
        return rv;
    }
    bio = ca_bio_input(pem, len);
    if (bio == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM,
                               "allocating a BIO for a certificate failed");
    }

    *out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (*out == NULL) {
        snprintf(context, sizeof context, "%s is not a valid PEM CERTIFICATE", label);
        return ca_fail_openssl(errmsg, CA_EINVALID, context);
    }
    return 0;
}

int ca_cert_to_pem(X509 *cert, ca_buf *out, char *errmsg)
{
    BIO *bio = ca_bio_output();
    int rv;

    if (bio == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM,
                               "allocating a buffer for the certificate failed");
    }
    if (PEM_write_bio_X509(bio, cert) != 1) {
        rv =
            ca_fail_openssl(errmsg, CA_ECRYPTO, "encoding the certificate as PEM failed");
    } else {
        rv = ca_bio_to_buf(bio, out, errmsg);
    }
    BIO_free(bio);
    return rv;
}

/* Copies the single entry nid of name into dst as UTF-8, or "" when the name
 * has none. A repeated entry, an embedded NUL or a value that does not fit
 * is rejected rather than truncated, because callers authorize on these
 * fields. */
static int read_name_entry(const X509_NAME *name, int nid, const char *field, char *dst,
                           size_t size, char *errmsg)
{
    int index = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    int len;

    dst[0] = '\0';
    if (index < 0) {
        return 0;
    }
    if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
        return ca_fail(errmsg, CA_EINVALID, "certificate has more than one %s", field);
    }

    len = ASN1_STRING_to_UTF8(&utf8,
                              X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
    if (len < 0) {
        return ca_fail_openssl(errmsg, CA_EINVALID,
                               "certificate name has an invalid string");
    }
    if ((size_t)len >= size || memchr(utf8, '\0', (size_t)len) != NULL) {
        OPENSSL_free(utf8);
        return ca_fail(errmsg, CA_EINVALID,
                       "certificate %s is %d bytes or contains a NUL byte, but must be "
                       "text of at most %zu bytes",
                       field, len, size - 1);
    }
    memcpy(dst, utf8, (size_t)len);
    dst[len] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

static int read_serial(X509 *cert, char hex[CA_SERIAL_LEN + 1], char *errmsg)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[CA_SERIAL_BYTES];
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    int i;

    if (serial == NULL) {
        return ca_fail_openssl(errmsg, CA_EINVALID,
                               "certificate serial cannot be decoded");
    }

    /* BN_bn2binpad fails when the value needs more than 20 bytes. */
    if (BN_is_negative(serial) ||
        BN_bn2binpad(serial, bytes, (int)sizeof bytes) != (int)sizeof bytes) {
        BN_free(serial);
        ERR_clear_error();
        return ca_fail(errmsg, CA_EINVALID,
                       "certificate serial is negative or longer than %d bytes, which "
                       "RFC 5280 forbids",
                       CA_SERIAL_BYTES);
    }
    BN_free(serial);

    for (i = 0; i < CA_SERIAL_BYTES; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    hex[CA_SERIAL_LEN] = '\0';
    return 0;
}

static int read_time(const ASN1_TIME *time, const char *field, int64_t *out, char *errmsg)
{
    struct tm tm;

    if (time == NULL || ASN1_TIME_to_tm(time, &tm) != 1) {
        return ca_fail_openssl(errmsg, CA_EINVALID, field);
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int read_fields(X509 *cert, ca_cert_info *out, char *errmsg)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    int rv;

    rv = read_name_entry(subject, NID_commonName, "subject CN", out->common_name,
                         sizeof out->common_name, errmsg);
    if (rv == 0) {
        rv = read_name_entry(subject, NID_organizationalUnitName, "subject OU",
                             out->org_unit, sizeof out->org_unit, errmsg);
    }
    if (rv == 0) {
        rv = read_name_entry(subject, NID_organizationName, "subject O", out->org,
                             sizeof out->org, errmsg);
    }
    if (rv == 0) {
        rv = read_name_entry(X509_get_issuer_name(cert), NID_commonName, "issuer CN",
                             out->issuer_cn, sizeof out->issuer_cn, errmsg);
    }
    if (rv == 0) {
        rv = read_serial(cert, out->serial, errmsg);
    }
    if (rv == 0) {
        rv = read_time(X509_get0_notBefore(cert), "certificate notBefore is invalid",
                       &out->not_before, errmsg);
    }
    if (rv == 0) {
        rv = read_time(X509_get0_notAfter(cert), "certificate notAfter is invalid",
                       &out->not_after, errmsg);
    }
    return rv;
}

int ca_cert_fields(X509 *cert, ca_cert_info *out, char *errmsg)
{
    int rv;

    memset(out, 0, sizeof *out);
    rv = read_fields(cert, out, errmsg);
    if (rv == 0 && X509_get0_pubkey(cert) == NULL) {
        rv = ca_fail_openssl(errmsg, CA_EINVALID, "certificate public key cannot be decoded");
    }
    if (rv == 0) {
        rv = ca_spki_hash(X509_get_X509_PUBKEY(cert), out->key_hash, errmsg);
    }
    if (rv != 0) {
        memset(out, 0, sizeof *out);
    }
    return rv;
}

int ca_cert_read(const char *cert_pem, size_t cert_len, ca_cert_info *out, char *errmsg)
{
    X509 *cert = NULL;
    int rv;

    memset(out, 0, sizeof *out);
    rv = ca_cert_parse(cert_pem, cert_len, "certificate", &cert, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = ca_cert_fields(cert, out, errmsg);
    X509_free(cert);
    return rv;
}
