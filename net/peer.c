/* The peer's identity: subject fields of its verified certificate, and the
 * chain it presented, as PEM. */
#include "internal.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies one subject attribute, or leaves it empty when the name has none,
 * has several, or has one that does not fit: an identity is never cut. */
static void copy_name_entry(const X509_NAME *name, int nid, char *out, size_t size)
{
    int index = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    int len;

    out[0] = '\0';
    if (index < 0 || X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
        return;
    }
    len = ASN1_STRING_to_UTF8(&utf8,
                              X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
    if (len > 0 && (size_t)len < size && memchr(utf8, '\0', (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
}

void net_conn_peer(const net_conn *c, net_peer *out)
{
    X509 *leaf;
    const X509_NAME *subject;

    memset(out, 0, sizeof(*out));
    snprintf(out->addr, sizeof(out->addr), "%s", c->peer_addr);
    if (!c->verified) {
        return;
    }
    leaf = SSL_get0_peer_certificate(c->tls.ssl);
    subject = leaf != NULL ? X509_get_subject_name(leaf) : NULL;
    if (subject == NULL) {
        return;
    }
    out->has_cert = 1;
    copy_name_entry(subject, NID_commonName, out->common_name, sizeof(out->common_name));
    copy_name_entry(subject, NID_organizationalUnitName, out->org_unit,
                    sizeof(out->org_unit));
    copy_name_entry(subject, NID_organizationName, out->org, sizeof(out->org));
}

static char *bio_to_string(BIO *bio)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *copy = len >= 0 ? malloc((size_t)len + 1) : NULL;

    if (copy != NULL) {
        memcpy(copy, data, (size_t)len);
        copy[len] = '\0';
    }
    return copy;
}

char *net_conn_peer_chain(const net_conn *c)
{
    X509 *leaf;
    STACK_OF(X509) * chain;
    BIO *bio;
    char *pem = NULL;
    bool ok;

    if (!c->use_tls || c->tls.ssl == NULL) {
        return NULL;
    }
    leaf = SSL_get0_peer_certificate(c->tls.ssl);
    if (leaf == NULL) {
        return NULL;
    }
    bio = BIO_new(BIO_s_mem());
    ok = bio != NULL && PEM_write_bio_X509(bio, leaf) == 1;

    /* On a client the peer chain starts with the leaf, but on a server it
     * does not. Either way the leaf is written once, first. */
    chain = SSL_get_peer_cert_chain(c->tls.ssl);
    for (int i = 0; ok && chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);

        if (X509_cmp(cert, leaf) != 0) {
            ok = PEM_write_bio_X509(bio, cert) == 1;
        }
    }
    if (ok) {
        pem = bio_to_string(bio);
    }
    BIO_free(bio);
    return pem;
}

void net_conn_peer_x509(const net_conn *c, const void **leaf, const void **chain)
{
    *leaf = NULL;
    *chain = NULL;
    if (!c->use_tls || c->tls.ssl == NULL) {
        return;
    }
    *leaf = SSL_get0_peer_certificate(c->tls.ssl);
    *chain = *leaf != NULL ? SSL_get_peer_cert_chain(c->tls.ssl) : NULL;
}
