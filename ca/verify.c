/* Chain verification against a trust bundle of one or more roots. */
#include <ca/ca.h>

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Reads every PEM CERTIFICATE block of pem, in order, into *out. Blocks of
 * other types are skipped, but a broken certificate block fails the whole
 * text. */
static int load_certs(const char *pem, size_t len, const char *label,
                      STACK_OF(X509) * *out, char *errmsg)
{
    STACK_OF(X509) *certs = NULL;
    unsigned long error;
    char context[96];
    X509 *cert;
    BIO *bio;
    int rv;

    *out = NULL;
    rv = ca_check_input(pem, len, label, errmsg);
    if (rv != 0) {
        return rv;
    }
    bio = ca_bio_input(pem, len);
    certs = sk_X509_new_null();
    if (bio == NULL || certs == NULL) {
        rv = ca_fail_openssl(errmsg, CA_ENOMEM, "allocating a certificate list failed");
        goto fail;
    }

    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certs, cert) <= 0) {
            X509_free(cert);
            rv = ca_fail_openssl(errmsg, CA_ENOMEM,
                                 "allocating a certificate list failed");
            goto fail;
        }
    }

    /* Running out of input shows up as PEM_R_NO_START_LINE. Any other
     * error means a block that is cut off or has no valid DER inside. */
    error = ERR_peek_last_error();
    if (sk_X509_num(certs) > 0 && ERR_GET_LIB(error) == ERR_LIB_PEM &&
        ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        BIO_free(bio);
        *out = certs;
        return 0;
    }
    snprintf(context, sizeof context, "%s certificate %d is not a valid PEM CERTIFICATE",
             label, sk_X509_num(certs) + 1);
    rv = ca_fail_openssl(errmsg, CA_EINVALID, context);

fail:
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return rv;
}

static int build_store(STACK_OF(X509) * roots, X509_STORE **out, char *errmsg)
{
    X509_STORE *store = X509_STORE_new();
    int i;

    *out = NULL;
    if (store == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM,
                               "allocating a certificate store failed");
    }
    for (i = 0; i < sk_X509_num(roots); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1) {
            X509_STORE_free(store);
            return ca_fail_openssl(errmsg, CA_ECRYPTO,
                                   "adding a trust bundle root to the store failed");
        }
    }
    *out = store;
    return 0;
}

static int report_failure(X509_STORE_CTX *ctx, char *errmsg)
{
    int error = X509_STORE_CTX_get_error(ctx);
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    char name[64] = "";

    if (error == X509_V_OK) {
        return ca_fail_openssl(errmsg, CA_ECRYPTO,
                               "verifying the certificate chain failed");
    }
    if (cert != NULL) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                                  sizeof name);
    }
    ERR_clear_error();
    return ca_fail(
        errmsg, CA_EVERIFY,
        "certificate chain does not verify at depth %d (CN %s): %s; check that "
        "it was issued by a root in the trust bundle and is still valid",
        X509_STORE_CTX_get_error_depth(ctx), ca_printable(name, sizeof name, name),
        X509_verify_cert_error_string(error));
}

static int run_verify(X509_STORE *store, X509 *leaf, STACK_OF(X509) * untrusted,
                      int64_t now, char *errmsg)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int rv = 0;

    if (ctx == NULL || X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        X509_STORE_CTX_free(ctx);
        return ca_fail_openssl(errmsg, CA_ENOMEM, "setting up chain verification failed");
    }

    /* X509_STRICT turns off the workarounds OpenSSL otherwise applies to
     * certificates that break the X.509 rules. */
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);

    if (X509_verify_cert(ctx) != 1) {
        rv = report_failure(ctx, errmsg);
    }
    X509_STORE_CTX_free(ctx);
    return rv;
}

/* Returns 1 when cert lists dns as a DNS SAN. DNS names compare
 * case-insensitively (RFC 4343). */
static int has_dns_san(X509 *cert, const char *dns)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t dns_len = strlen(dns);
    int found = 0;
    int i;

    for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        int type;
        const ASN1_IA5STRING *value = GENERAL_NAME_get0_value(name, &type);
        if (type != GEN_DNS) {
            continue;
        }
        found =
            (size_t)ASN1_STRING_length(value) == dns_len &&
            strncasecmp((const char *)ASN1_STRING_get0_data(value), dns, dns_len) == 0;
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return found;
}

struct ca_bundle {
    X509_STORE *store;
};

int ca_bundle_open(const char *bundle_pem, size_t bundle_len, ca_bundle **out,
                   char *errmsg)
{
    STACK_OF(X509) *roots = NULL;
    X509_STORE *store = NULL;
    int rv;

    *out = NULL;
    rv = load_certs(bundle_pem, bundle_len, "trust bundle", &roots, errmsg);
    if (rv != 0) {
        return rv;
    }

    /* The store takes its own reference to every root. */
    rv = build_store(roots, &store, errmsg);
    sk_X509_pop_free(roots, X509_free);
    if (rv != 0) {
        return rv;
    }

    *out = malloc(sizeof **out);
    if (*out == NULL) {
        X509_STORE_free(store);
        return ca_fail(errmsg, CA_ENOMEM, "allocating the trust bundle failed");
    }
    (*out)->store = store;
    return 0;
}

void ca_bundle_close(ca_bundle *bundle)
{
    if (bundle == NULL) {
        return;
    }
    X509_STORE_free(bundle->store);
    free(bundle);
}

/* Verifies leaf against bundle, with untrusted (which may be NULL or contain
 * the leaf too) as intermediates, and checks its SAN when asked to. */
static int verify_leaf(ca_bundle *bundle, X509 *leaf, STACK_OF(X509) * untrusted, int64_t now,
                       const char *required_san, char *errmsg)
{
    char shown[64];
    int rv;

    rv = run_verify(bundle->store, leaf, untrusted, now, errmsg);
    if (rv == 0 && required_san != NULL && !has_dns_san(leaf, required_san)) {
        rv = ca_fail(errmsg, CA_EVERIFY,
                     "certificate does not list the DNS SAN %s, so it does not belong to "
                     "the expected role",
                     ca_printable(shown, sizeof shown, required_san));
    }
    return rv;
}

/* Verifies the first certificate of chain against bundle, with the rest of
 * chain as untrusted intermediates. */
static int verify_parsed(ca_bundle *bundle, STACK_OF(X509) * chain, int64_t now,
                         const char *required_san, char *errmsg)
{
    /* The intermediates may help build the path but are not trusted. */
    STACK_OF(X509) *untrusted = sk_X509_dup(chain);
    int rv;

    if (untrusted == NULL) {
        return ca_fail_openssl(errmsg, CA_ENOMEM, "allocating a certificate list failed");
    }
    sk_X509_delete(untrusted, 0);
    rv = verify_leaf(bundle, sk_X509_value(chain, 0), untrusted, now, required_san, errmsg);
    sk_X509_free(untrusted);
    return rv;
}

int ca_verify_x509(ca_bundle *bundle, const void *leaf, const void *untrusted, int64_t now,
                   const char *required_san, char *errmsg)
{
    if (leaf == NULL) {
        return ca_fail(errmsg, CA_EINVALID, "no certificate to verify");
    }
    /* OpenSSL's verifier takes non-const pointers because it caches flags
     * in the certificates; the caller's objects are otherwise unchanged. */
    return verify_leaf(bundle, (X509 *)leaf, (STACK_OF(X509) *)untrusted, now, required_san,
                       errmsg);
}

int ca_verify_chain_bundle(ca_bundle *bundle, const char *chain_pem, size_t chain_len,
                           int64_t now, const char *required_san, char *errmsg)
{
    STACK_OF(X509) *chain = NULL;
    int rv;

    rv = load_certs(chain_pem, chain_len, "certificate chain", &chain, errmsg);
    if (rv == 0) {
        rv = verify_parsed(bundle, chain, now, required_san, errmsg);
    }
    sk_X509_pop_free(chain, X509_free);
    return rv;
}

int ca_verify_issued(ca_bundle *bundle, const char *cert_pem, size_t cert_len,
                     const unsigned char key_hash[32], int64_t now, const char *required_san,
                     ca_cert_info *out, char *errmsg)
{
    STACK_OF(X509) *chain = NULL;
    int rv;

    memset(out, 0, sizeof *out);
    rv = load_certs(cert_pem, cert_len, "issued", &chain, errmsg);
    if (rv == 0) {
        rv = ca_cert_fields(sk_X509_value(chain, 0), out, errmsg);
    }
    if (rv == 0 && CRYPTO_memcmp(out->key_hash, key_hash, sizeof out->key_hash) != 0) {
        rv = ca_fail(errmsg, CA_EVERIFY,
                     "certificate is for another public key than the one this node "
                     "generated");
    }
    if (rv == 0) {
        rv = verify_parsed(bundle, chain, now, required_san, errmsg);
    }
    sk_X509_pop_free(chain, X509_free);
    if (rv != 0) {
        memset(out, 0, sizeof *out);
    }
    return rv;
}

int ca_verify_chain(const char *chain_pem, size_t chain_len, const char *bundle_pem,
                    size_t bundle_len, int64_t now, const char *required_san,
                    char *errmsg)
{
    ca_bundle *bundle = NULL;
    int rv;

    rv = ca_bundle_open(bundle_pem, bundle_len, &bundle, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = ca_verify_chain_bundle(bundle, chain_pem, chain_len, now, required_san, errmsg);
    ca_bundle_close(bundle);
    return rv;
}
