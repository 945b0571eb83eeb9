/* The issuer: opening a CA certificate and key, and signing node
 * certificates from checked CSRs. */
#include <ca/ca.h>

#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct ca_signer {
    X509 *cert;
    EVP_PKEY *key;
};

static int check_signer(X509 *cert, EVP_PKEY *key, char *errmsg)
{
    char name[64] = "";

    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                              sizeof name);
    ca_printable(name, sizeof name, name);

    /* EVP_PKEY_eq returns 1 only for the same key; other values mean a
     * different key or a different key type. */
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
        ERR_clear_error();
        return ca_fail(errmsg, CA_EINVALID,
                       "signer key does not match the signer certificate (CN %s); pass "
                       "the key that belongs to this CA certificate",
                       name);
    }

    /* X509_check_ca returns 1 or more for a CA certificate and 0 when
     * basicConstraints lacks CA:TRUE. */
    if (X509_check_ca(cert) < 1) {
        ERR_clear_error();
        return ca_fail(errmsg, CA_EINVALID,
                       "signer certificate (CN %s) is not a CA certificate because its "
                       "basicConstraints lack CA:TRUE",
                       name);
    }
    return 0;
}

int ca_signer_open(const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len, ca_signer **out, char *errmsg)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rv;

    *out = NULL;
    rv = ca_cert_parse(cert_pem, cert_len, "signer certificate", &cert, errmsg);
    if (rv == 0) {
        rv = ca_key_parse(key_pem, key_len, "signer key", &key, errmsg);
    }
    if (rv == 0) {
        rv = check_signer(cert, key, errmsg);
    }
    if (rv == 0) {
        *out = malloc(sizeof **out);
        if (*out == NULL) {
            rv = ca_fail(errmsg, CA_ENOMEM, "allocating the signer failed");
        }
    }

    if (rv != 0) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return rv;
    }
    (*out)->cert = cert;
    (*out)->key = key;
    return 0;
}

void ca_signer_close(ca_signer *signer)
{
    if (signer == NULL) {
        return;
    }
    X509_free(signer->cert);
    EVP_PKEY_free(signer->key);
    free(signer);
}

void ca_issued_free(ca_issued *issued)
{
    if (issued == NULL) {
        return;
    }
    ca_buf_free(&issued->cert_pem);
    memset(issued, 0, sizeof *issued);
}

/* Checks that value is a DNS label of 1 to 63 letters, digits and hyphens,
 * so that it is safe as a DNS SAN and as a name entry. */
static int check_label(const char *value, const char *field, char *errmsg)
{
    char shown[64];
    size_t len;
    size_t i;

    if (value == NULL || value[0] == '\0') {
        return ca_fail(errmsg, CA_EINVALID, "%s is missing", field);
    }
    len = strnlen(value, 64);
    for (i = 0; i < len; i++) {
        char c = value[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                 (c >= 'A' && c <= 'Z') || c == '-';
        if (!ok) {
            break;
        }
    }
    if (len > 63 || i < len || value[0] == '-' || value[len - 1] == '-') {
        return ca_fail(errmsg, CA_EINVALID,
                       "%s '%s' is not a DNS label of 1 to 63 letters, digits and inner "
                       "hyphens; use an id made by ca_random_id",
                       field, ca_printable(shown, sizeof shown, value));
    }
    return 0;
}

static int check_request(const ca_leaf_request *request, char *errmsg)
{
    char shown[64];
    int rv;

    rv = check_label(request->node_id, "node id", errmsg);
    if (rv == 0) {
        rv = check_label(request->cluster_id, "cluster id", errmsg);
    }
    if (rv != 0) {
        return rv;
    }

    if (request->role_ou == NULL) {
        return ca_fail(errmsg, CA_EINVALID, "role OU is missing");
    }
    if (strcmp(request->role_ou, CA_ROLE_WORKER_OU) != 0 &&
        strcmp(request->role_ou, CA_ROLE_MANAGER_OU) != 0) {
        return ca_fail(errmsg, CA_EINVALID,
                       "role OU '%s' is neither " CA_ROLE_WORKER_OU
                       " nor " CA_ROLE_MANAGER_OU,
                       ca_printable(shown, sizeof shown, request->role_ou));
    }

    if (request->expiry < CA_MIN_CERT_EXPIRY) {
        return ca_fail(errmsg, CA_EINVALID,
                       "certificate expiry of %lld s is below the minimum of %d s (1h); "
                       "raise the expiry",
                       (long long)request->expiry, CA_MIN_CERT_EXPIRY);
    }
    if (request->expiry > CA_MAX_CERT_EXPIRY) {
        return ca_fail(errmsg, CA_EINVALID,
                       "certificate expiry of %lld s is above the maximum of %lld s (100 "
                       "years); lower the expiry",
                       (long long)request->expiry, (long long)CA_MAX_CERT_EXPIRY);
    }
    return ca_check_issue_time(request->now, request->expiry, errmsg);
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                      (const unsigned char *)value, -1, -1, 0);
}

/* Builds the subject from the request alone: O = cluster id, OU = role,
 * CN = node id, from the most to the least significant RDN. */
static int set_subject(X509 *cert, const ca_leaf_request *request, char *errmsg)
{
    X509_NAME *name = X509_get_subject_name(cert);

    if (add_name_entry(name, NID_organizationName, request->cluster_id) != 1 ||
        add_name_entry(name, NID_organizationalUnitName, request->role_ou) != 1 ||
        add_name_entry(name, NID_commonName, request->node_id) != 1) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO,
                               "building the certificate subject failed");
    }
    return 0;
}

static int push_dns_name(GENERAL_NAMES *names, const char *dns)
{
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_IA5STRING *text = ASN1_IA5STRING_new();

    if (name == NULL || text == NULL || ASN1_STRING_set(text, dns, -1) != 1) {
        GENERAL_NAME_free(name);
        ASN1_IA5STRING_free(text);
        return 0;
    }
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    if (sk_GENERAL_NAME_push(names, name) <= 0) {
        GENERAL_NAME_free(name);
        return 0;
    }
    return 1;
}

static int add_san(X509 *cert, const ca_leaf_request *request, char *errmsg)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int is_manager = strcmp(request->role_ou, CA_ROLE_MANAGER_OU) == 0;
    int ok;

    ok = names != NULL && push_dns_name(names, request->role_ou) &&
         push_dns_name(names, request->node_id) &&
         (!is_manager || push_dns_name(names, CA_ROOT_CN)) &&
         X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(names);
    if (!ok) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "adding the subjectAltName failed");
    }
    return 0;
}

static int add_leaf_extensions(X509 *cert, X509 *issuer, char *errmsg)
{
    int rv;

    rv =
        ca_cert_add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE", errmsg);
    if (rv == 0) {
        rv = ca_cert_add_ext(cert, issuer, NID_key_usage,
                             "critical,digitalSignature,keyEncipherment", errmsg);
    }
    if (rv == 0) {
        rv = ca_cert_add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth",
                             errmsg);
    }
    if (rv == 0) {
        rv = ca_cert_add_ext(cert, issuer, NID_subject_key_identifier, "hash", errmsg);
    }
    if (rv == 0) {
        rv = ca_cert_add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always",
                             errmsg);
    }
    return rv;
}

/* Fills in every field of the leaf except the signature. */
static int build_leaf(X509 *cert, ca_signer *signer, const X509_PUBKEY *spki,
                      const ca_leaf_request *request, ca_issued *out, char *errmsg)
{
    int rv;

    if (X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_issuer_name(cert, X509_get_subject_name(signer->cert)) != 1) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO, "filling in the certificate failed");
    }

    out->not_before = request->now - CA_BACKDATE;
    out->not_after = request->now + request->expiry;
    rv = ca_cert_set_spki(cert, spki, errmsg);
    if (rv == 0) {
        rv = ca_cert_set_serial(cert, out->serial, errmsg);
    }
    if (rv == 0) {
        rv = ca_cert_set_validity(cert, out->not_before, out->not_after, errmsg);
    }
    if (rv == 0) {
        rv = set_subject(cert, request, errmsg);
    }
    if (rv == 0) {
        rv = add_san(cert, request, errmsg);
    }
    if (rv == 0) {
        rv = add_leaf_extensions(cert, signer->cert, errmsg);
    }
    return rv;
}

/* Issues the leaf for spki, which came from a checked CSR. Clears out on
 * failure. */
static int issue_leaf(ca_signer *signer, const X509_PUBKEY *spki,
                      const ca_leaf_request *request, ca_issued *out, char *errmsg)
{
    X509 *cert = X509_new();
    int rv;

    if (cert == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating the certificate failed");
    }

    rv = build_leaf(cert, signer, spki, request, out, errmsg);
    if (rv == 0) {
        rv = ca_cert_sign(cert, signer->key, errmsg);
    }
    if (rv == 0) {
        rv = ca_cert_to_pem(cert, &out->cert_pem, errmsg);
    }

    if (rv != 0) {
        ca_issued_free(out);
    }
    X509_free(cert);
    return rv;
}

int ca_sign(ca_signer *signer, const char *csr_pem, size_t csr_len,
            const ca_leaf_request *request, ca_issued *out, char *errmsg)
{
    unsigned char key_hash[32];
    X509_PUBKEY *spki = NULL;
    int rv;

    memset(out, 0, sizeof *out);
    rv = check_request(request, errmsg);
    if (rv != 0) {
        return rv;
    }

    /* The CSR is checked again so that a caller that skipped ca_csr_check
     * still cannot get a certificate for a foreign or non-P-256 key. */
    rv = ca_csr_read_key(csr_pem, csr_len, &spki, key_hash, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = issue_leaf(signer, spki, request, out, errmsg);
    X509_PUBKEY_free(spki);
    return rv;
}

int ca_csr_sign(ca_signer *signer, const char *csr_pem, size_t csr_len,
                const ca_leaf_request *request, unsigned char key_hash[32],
                ca_issued *out, char *errmsg)
{
    X509_PUBKEY *spki = NULL;
    int rv;

    memset(out, 0, sizeof *out);

    /* The steps run in the order of ca_csr_check followed by ca_sign, so a
     * CSR that is bad and a request that is bad get the CSR's error. */
    rv = ca_csr_read_key(csr_pem, csr_len, &spki, key_hash, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = check_request(request, errmsg);
    if (rv == 0) {
        rv = issue_leaf(signer, spki, request, out, errmsg);
    }
    X509_PUBKEY_free(spki);
    return rv;
}
