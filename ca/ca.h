/* ca: keys, certificate signing requests, certificate issuance, join tokens
 * and digests, on OpenSSL 3's libcrypto.
 *
 * Everything crosses this interface as PEM text or plain C values, so no
 * caller needs an OpenSSL header. Functions are thread-safe unless a comment
 * says otherwise; a ca_signer may be used from one thread at a time.
 *
 * Every function that can fail returns 0 or a negative CA_E* code and, when
 * errmsg is not NULL, writes one sentence of CA_ERRMSG_SIZE bytes at most
 * that names the value at fault. No message ever contains key material or a
 * token secret. */
#ifndef SWARMPKI_CA_H
#define SWARMPKI_CA_H

#include <stddef.h>
#include <stdint.h>

#define CA_ERRMSG_SIZE 256

/* Node ids and cluster ids: 16 random bytes as a big-endian base36 number,
 * left-padded with '0' to 25 characters. */
#define CA_ID_LEN 25
/* A join token: "SWMTKN-1-" + 50-character digest + "-" + 25-character secret. */
#define CA_TOKEN_LEN 85
#define CA_DIGEST_LEN 50
#define CA_SECRET_LEN 25
/* A certificate serial number: 20 bytes as 40 lowercase hex digits. */
#define CA_SERIAL_LEN 40

#define CA_ROLE_WORKER_OU "swarm-worker"
#define CA_ROLE_MANAGER_OU "swarm-manager"
#define CA_ROOT_CN "swarm-ca"
/* The subject CN of the certificate a joining manager serves while it joins. */
#define CA_JOIN_CN "swarmpki-join"

/* The shortest certificate lifetime the issuer accepts, in seconds. */
#define CA_MIN_CERT_EXPIRY (60 * 60)
/* Certificates are valid from this many seconds before issuance, so that
 * nodes whose clocks lag a little accept them. */
#define CA_BACKDATE (60 * 60)

enum {
    CA_ENOMEM = -1,   /* an allocation failed */
    CA_ECRYPTO = -2,  /* OpenSSL failed on valid input */
    CA_EINVALID = -3, /* malformed PEM, CSR, certificate or parameter */
    CA_ETOKEN = -4,   /* a join token that is not of the SWMTKN-1 form */
    CA_EVERIFY = -5,  /* a certificate chain that does not verify */
    CA_EKEYTYPE = -6, /* a key that is not ECDSA P-256 */
};

/* Returns a static description of a CA_E* code. */
const char *ca_strerror(int code);

/* A heap buffer of text, always NUL-terminated; len excludes the NUL.
 * Release with ca_buf_free, which wipes it first because it may hold a key. */
typedef struct ca_buf {
    char *data;
    size_t len;
} ca_buf;

void ca_buf_free(ca_buf *buf);

/* Fills id with a fresh random node or cluster id and a terminating NUL. */
int ca_random_id(char id[CA_ID_LEN + 1], char *errmsg);

/* Generates an ECDSA P-256 key as unencrypted PKCS#8 PEM. */
int ca_key_generate(ca_buf *key_pem, char *errmsg);

/* Creates a self-signed root CA certificate (CN swarm-ca, CA:TRUE,
 * keyCertSign and cRLSign, valid from now - CA_BACKDATE for 20 years) and
 * its new P-256 key. now is seconds since the Unix epoch. */
int ca_root_create(int64_t now, ca_buf *cert_pem, ca_buf *key_pem, char *errmsg);

/* Creates a PEM certificate signing request for key_pem. The subject is
 * left empty because the issuer ignores it. */
int ca_csr_create(const char *key_pem, size_t key_len, ca_buf *csr_pem, char *errmsg);

/* Generates an ECDSA P-256 key as unencrypted PKCS#8 PEM and a CSR for it,
 * as ca_key_generate followed by ca_csr_create would, but without parsing
 * the key PEM again. When key_hash is not NULL it receives the SHA-256 of
 * the DER SubjectPublicKeyInfo, the value ca_csr_check and ca_cert_read
 * report for the same key. On failure both buffers are left empty. */
int ca_key_and_csr_generate(ca_buf *key_pem, ca_buf *csr_pem, unsigned char key_hash[32],
                            char *errmsg);

/* Checks that a PEM CSR parses, carries an ECDSA P-256 key and is signed by
 * that key. On success, fills key_hash with the SHA-256 of the DER
 * SubjectPublicKeyInfo, which identifies a retried request. Returns
 * CA_EINVALID or CA_EKEYTYPE for a bad CSR. */
int ca_csr_check(const char *csr_pem, size_t csr_len, unsigned char key_hash[32],
                 char *errmsg);

/* An issuer: the CA certificate and its key, parsed once. */
typedef struct ca_signer ca_signer;

/* Parses the issuer's certificate and matching private key. Returns
 * CA_EINVALID if they do not parse or do not belong together. */
int ca_signer_open(const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len, ca_signer **out, char *errmsg);
void ca_signer_close(ca_signer *signer);

/* What a leaf certificate will say. role_ou is CA_ROLE_WORKER_OU or
 * CA_ROLE_MANAGER_OU; the SAN lists role_ou, node_id, and swarm-ca for a
 * manager. */
typedef struct ca_leaf_request {
    const char *node_id;
    const char *role_ou;
    const char *cluster_id;
    int64_t now;    /* seconds since the Unix epoch */
    int64_t expiry; /* lifetime in seconds, at least CA_MIN_CERT_EXPIRY */
} ca_leaf_request;

/* A certificate as issued. */
typedef struct ca_issued {
    ca_buf cert_pem;                   /* the leaf alone */
    char serial[CA_SERIAL_LEN + 1];    /* lowercase hex */
    int64_t not_before;
    int64_t not_after;
} ca_issued;

void ca_issued_free(ca_issued *issued);

/* Signs the public key of an already checked CSR into a leaf certificate
 * with a fresh 20-byte random serial (top bit cleared). Nothing from the
 * CSR's subject or extensions is copied. */
int ca_sign(ca_signer *signer, const char *csr_pem, size_t csr_len,
            const ca_leaf_request *request, ca_issued *out, char *errmsg);

/* Checks a PEM CSR as ca_csr_check does and signs it as ca_sign does, but
 * parses and verifies the CSR once instead of twice. A bad CSR returns
 * ca_csr_check's CA_EINVALID or CA_EKEYTYPE and message. key_hash is filled
 * once the CSR passes, even when a bad request (CA_EINVALID, as in ca_sign)
 * or signing fails after that. On failure out is left empty. */
int ca_csr_sign(ca_signer *signer, const char *csr_pem, size_t csr_len,
                const ca_leaf_request *request, unsigned char key_hash[32],
                ca_issued *out, char *errmsg);

/* Fields read from one certificate. */
typedef struct ca_cert_info {
    char common_name[64];
    char org_unit[64];
    char org[64];
    char serial[CA_SERIAL_LEN + 1];
    char issuer_cn[64];
    int64_t not_before;
    int64_t not_after;
    unsigned char key_hash[32]; /* SHA-256 of the DER SubjectPublicKeyInfo */
} ca_cert_info;

/* Reads the first certificate of a PEM text. */
int ca_cert_read(const char *cert_pem, size_t cert_len, ca_cert_info *out, char *errmsg);

/* Verifies the first certificate of chain_pem (followed by any
 * intermediates) against the roots in bundle_pem at time now. When
 * required_san is not NULL, the leaf must list it as a DNS SAN. Returns
 * CA_EVERIFY with the verifier's reason otherwise. */
int ca_verify_chain(const char *chain_pem, size_t chain_len, const char *bundle_pem,
                    size_t bundle_len, int64_t now, const char *required_san,
                    char *errmsg);

/* A trust bundle parsed once, for callers that verify many chains against
 * the same roots. */
typedef struct ca_bundle ca_bundle;

/* Parses every certificate of bundle_pem as a trusted root. Returns
 * CA_EINVALID, with the message ca_verify_chain gives, for a bundle that
 * is empty or has a broken certificate block. */
int ca_bundle_open(const char *bundle_pem, size_t bundle_len, ca_bundle **out,
                   char *errmsg);
void ca_bundle_close(ca_bundle *bundle);

/* Verifies chain_pem as ca_verify_chain does, against the roots of bundle,
 * which saves parsing the bundle (about 0.15 ms per root on OpenSSL 3.0.19). */
int ca_verify_chain_bundle(ca_bundle *bundle, const char *chain_pem, size_t chain_len,
                           int64_t now, const char *required_san, char *errmsg);

/* Verifies a certificate that is already parsed, as ca_verify_chain_bundle
 * does: leaf is an OpenSSL X509 * and untrusted a STACK_OF(X509) * of
 * intermediates or NULL, such as net_conn_peer_x509 returns. This saves
 * parsing the PEM again, about 0.15 ms per certificate on OpenSSL 3.0.19. */
int ca_verify_x509(ca_bundle *bundle, const void *leaf, const void *untrusted, int64_t now,
                   const char *required_san, char *errmsg);

/* Creates a self-signed certificate for key_pem with CN CA_JOIN_CN, valid
 * from now - CA_BACKDATE for one day. A joining manager serves it on its
 * listen address during the join, so that the leader can check that the
 * advertised address reaches the holder of the CSR's key. */
int ca_join_cert_create(const char *key_pem, size_t key_len, int64_t now, ca_buf *cert_pem,
                        char *errmsg);

/* Writes the SHA-256 of the DER SubjectPublicKeyInfo of cert, an OpenSSL
 * X509 * such as net_conn_peer_x509 returns: the key hash ca_cert_read and
 * ca_csr_check report. */
int ca_x509_key_hash(const void *cert, unsigned char key_hash[32], char *errmsg);

/* Checks a certificate that a manager issued for this node's key, parsing
 * it once: reads its fields into out (as ca_cert_read does), checks that
 * its key hash equals key_hash, and verifies it against bundle as
 * ca_verify_chain_bundle does with required_san. Returns CA_EVERIFY when
 * the certificate is for another key or does not verify, CA_EINVALID when
 * it does not parse; out is zeroed on failure. */
int ca_verify_issued(ca_bundle *bundle, const char *cert_pem, size_t cert_len,
                     const unsigned char key_hash[32], int64_t now, const char *required_san,
                     ca_cert_info *out, char *errmsg);

/* Checks that key_pem is a P-256 private key whose public half is the one in
 * the first certificate of cert_pem. */
int ca_key_matches_cert(const char *key_pem, size_t key_len, const char *cert_pem,
                        size_t cert_len, char *errmsg);

/* Writes the SHA-256 of data as a big-endian base36 number, left-padded with
 * '0' to CA_DIGEST_LEN characters, plus a NUL. The trust bundle digest of a
 * join token is this function applied to the bundle's PEM bytes. */
void ca_digest_base36(const void *data, size_t len, char out[CA_DIGEST_LEN + 1]);

/* Creates a join token for the trust bundle in bundle_pem with a fresh
 * 16-byte random secret. */
int ca_token_generate(const char *bundle_pem, size_t bundle_len,
                      char token[CA_TOKEN_LEN + 1], char *errmsg);

/* Splits a token into its digest and secret parts after checking its prefix,
 * length and alphabet. Returns CA_ETOKEN with a message that says what is
 * wrong, without echoing the secret. */
int ca_token_parse(const char *token, char digest[CA_DIGEST_LEN + 1],
                   char secret[CA_SECRET_LEN + 1], char *errmsg);

/* Compares two tokens in time independent of where they differ. Returns 1
 * when both are equal, 0 otherwise (also when either is NULL). */
int ca_token_equal(const char *a, const char *b);

#endif
