/* Private to the ca module: helpers shared between its source files and its
 * unit tests. Callers outside ca/ use <ca/ca.h> only. */
#ifndef SWARMPKI_CA_INTERNAL_H
#define SWARMPKI_CA_INTERNAL_H

#include <ca/ca.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The largest PEM input any function accepts, in bytes. A P-256 CSR is
 * about 250 bytes of PEM and a root certificate about 550, so this limit
 * only stops a peer from making us parse megabytes. */
#define CA_PEM_MAX (1024 * 1024)

/* Serial numbers are 20 bytes, the maximum RFC 5280 section 4.1.2.2 allows. */
#define CA_SERIAL_BYTES 20

/* Root certificates live 20 years of 365 days. */
#define CA_ROOT_LIFETIME ((int64_t)20 * 365 * 24 * 60 * 60)

/* Leaf certificates live at most 100 years of 365 days, which keeps
 * now + expiry far from overflow. */
#define CA_MAX_CERT_EXPIRY ((int64_t)100 * 365 * 24 * 60 * 60)

/* 9999-12-31T23:59:59Z, the last second an X.509 GeneralizedTime holds. */
#define CA_TIME_MAX INT64_C(253402300799)

/* Writes a formatted message to errmsg (when not NULL) and returns code. */
int ca_fail(char *errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "context: <reason of the oldest queued OpenSSL error>" to errmsg,
 * clears the OpenSSL error queue and returns code, or CA_ENOMEM when OpenSSL
 * reported an allocation failure. */
int ca_fail_openssl(char *errmsg, int code, const char *context);

/* Copies src to dst (of size bytes, NUL-terminated) with every byte outside
 * printable ASCII replaced by '?', so that text from a peer can go into a
 * message. Returns dst. */
char *ca_printable(char *dst, size_t size, const char *src);

/* Checks that pem is non-empty and at most CA_PEM_MAX bytes. Returns
 * CA_EINVALID otherwise, with a message that names label (e.g. "CSR"). */
int ca_check_input(const char *pem, size_t len, const char *label, char *errmsg);

/* Returns a read-only memory BIO over pem. The caller checks len first. */
BIO *ca_bio_input(const char *pem, size_t len);

/* Returns an empty memory BIO whose buffer OpenSSL wipes when it is freed,
 * for output that may hold a private key. */
BIO *ca_bio_output(void);

/* Copies the contents of a memory BIO into out, NUL-terminated. */
int ca_bio_to_buf(BIO *bio, ca_buf *out, char *errmsg);

/* Writes the big-endian number in bytes[0..n) as exactly width base36 digits
 * (0-9a-z), left-padded with '0', plus a NUL. width must be large enough for
 * any n-byte value: 25 for 16 bytes, 50 for 32 bytes. n is at most 64. */
void ca_base36_encode(const unsigned char *bytes, size_t n, char *out, size_t width);

/* Parses len lowercase base36 digits into an n-byte big-endian number.
 * Returns 0, or -1 when a character is outside 0-9a-z or the value does not
 * fit in n bytes. */
int ca_base36_decode(const char *text, size_t len, unsigned char *bytes, size_t n);

/* Parses an unencrypted PEM private key. An encrypted key is rejected and
 * never prompted for. label names the key in messages. */
int ca_key_parse(const char *pem, size_t len, const char *label, EVP_PKEY **out,
                 char *errmsg);

/* Checks that key is ECDSA P-256. Returns CA_EKEYTYPE otherwise, with a
 * message that names label and the key's type and size. */
int ca_key_check_p256(EVP_PKEY *key, const char *label, char *errmsg);

/* Writes the SHA-256 of the DER SubjectPublicKeyInfo spki. Encoding the
 * parsed structure takes under a microsecond, where i2d_PUBKEY on the
 * decoded key runs the key encoder (about 70 us on OpenSSL 3.0.19). Both
 * give the same DER for P-256 keys with named or explicit parameters and
 * compressed or uncompressed points, as the unit tests check. */
int ca_spki_hash(const X509_PUBKEY *spki, unsigned char hash[32], char *errmsg);

/* Writes key as unencrypted PKCS#8 PEM. */
int ca_key_to_pem(EVP_PKEY *key, ca_buf *out, char *errmsg);

/* Generates a new ECDSA P-256 key. */
int ca_key_new_p256(EVP_PKEY **out, char *errmsg);

/* Returns the digest to sign with key: SHA-256, or NULL for EdDSA keys,
 * which take no separate digest. */
const EVP_MD *ca_signing_digest(EVP_PKEY *key);

/* Parses a PEM CSR and checks it as ca_csr_check does. On success *out owns
 * the CSR and its public key is X509_REQ_get0_pubkey(*out). */
int ca_csr_load(const char *pem, size_t len, X509_REQ **out, char *errmsg);

/* Reads a CSR in the form ca_key_and_csr_generate writes (P-256 key in
 * uncompressed form, ECDSA with SHA-256, minimal DER) without OpenSSL's
 * key decoders, and checks its signature. On success *spki is the CSR's
 * SubjectPublicKeyInfo (free with X509_PUBKEY_free) and key_hash its
 * SHA-256. For any other CSR, valid or not, it returns -1 with nothing set
 * and no error queued, and the caller takes the general path. */
int ca_csr_fast_read(const char *pem, size_t len, X509_PUBKEY **spki,
                     unsigned char key_hash[32]);

/* Checks a PEM CSR as ca_csr_check does, through ca_csr_fast_read when the
 * CSR allows and ca_csr_load otherwise. On success *spki is its
 * SubjectPublicKeyInfo (free with X509_PUBKEY_free) and key_hash as in
 * ca_csr_check. */
int ca_csr_read_key(const char *pem, size_t len, X509_PUBKEY **spki,
                    unsigned char key_hash[32], char *errmsg);

/* Parses the first certificate of a PEM text. label names it in messages. */
int ca_cert_parse(const char *pem, size_t len, const char *label, X509 **out,
                  char *errmsg);

/* Reads the subject CN, OU and O, the issuer CN, the serial, the validity
 * and the key hash of cert into out. */
int ca_cert_fields(X509 *cert, ca_cert_info *out, char *errmsg);

/* Writes cert as PEM. */
int ca_cert_to_pem(X509 *cert, ca_buf *out, char *errmsg);

/* Sets the SubjectPublicKeyInfo of cert to the same DER as spki, without
 * decoding the key when the copy allows. */
int ca_cert_set_spki(X509 *cert, const X509_PUBKEY *spki, char *errmsg);

/* Sets a fresh random serial on cert (20 bytes, top bit cleared, first byte
 * non-zero) and writes it as 40 lowercase hex digits to hex when not NULL. */
int ca_cert_set_serial(X509 *cert, char hex[CA_SERIAL_LEN + 1], char *errmsg);

/* Sets the validity of cert. Both times are seconds since the Unix epoch. */
int ca_cert_set_validity(X509 *cert, int64_t not_before, int64_t not_after, char *errmsg);

/* Adds the extension nid with an openssl-x509v3-config value such as
 * "critical,CA:FALSE", resolving key identifiers against issuer. */
int ca_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value, char *errmsg);

/* Checks that a certificate valid from now - CA_BACKDATE for lifetime
 * seconds (at most CA_MAX_CERT_EXPIRY) lies between 1970 and CA_TIME_MAX.
 * Returns CA_EINVALID otherwise. */
int ca_check_issue_time(int64_t now, int64_t lifetime, char *errmsg);

/* Signs cert with key, using ca_signing_digest(key). */
int ca_cert_sign(X509 *cert, EVP_PKEY *key, char *errmsg);

#endif
