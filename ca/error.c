/* Error codes and messages, OpenSSL error translation, and the buffers and
 * memory BIOs that carry PEM text in and out of the module. */
#include <ca/ca.h>

#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

const char *ca_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case CA_ENOMEM:
        return "out of memory";
    case CA_ECRYPTO:
        return "OpenSSL operation failed";
    case CA_EINVALID:
        return "invalid PEM, CSR, certificate or parameter";
    case CA_ETOKEN:
        return "malformed join token";
    case CA_EVERIFY:
        return "certificate chain does not verify";
    case CA_EKEYTYPE:
        return "key is not ECDSA P-256";
    default:
        return "unknown ca error code";
    }
}

int ca_fail(char *errmsg, int code, const char *fmt, ...)
{
    va_list args;

    if (errmsg != NULL) {
        va_start(args, fmt);
        vsnprintf(errmsg, CA_ERRMSG_SIZE, fmt, args);
        va_end(args);
    }
    return code;
}

int ca_fail_openssl(char *errmsg, int code, const char *context)
{
    unsigned long error = ERR_peek_error();
    const char *reason = NULL;
    char detail[128];

    /* The oldest queued error is the root cause, because later ones only
     * name the callers that passed it up. */
    if (error == 0) {
        snprintf(detail, sizeof detail, "OpenSSL queued no error");
    } else {
        reason = ERR_reason_error_string(error);
        if (reason != NULL) {
            snprintf(detail, sizeof detail, "%s", reason);
        } else {
            ERR_error_string_n(error, detail, sizeof detail);
        }
    }
    if (error != 0 && ERR_GET_REASON(error) == ERR_R_MALLOC_FAILURE) {
        code = CA_ENOMEM;
    }

    ERR_clear_error();
    return ca_fail(errmsg, code, "%s: %s", context, detail);
}

char *ca_printable(char *dst, size_t size, const char *src)
{
    size_t i = 0;

    if (size == 0) {
        return dst;
    }
    for (; src != NULL && src[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
    return dst;
}

int ca_check_input(const char *pem, size_t len, const char *label, char *errmsg)
{
    if (pem == NULL || len == 0) {
        return ca_fail(errmsg, CA_EINVALID, "%s is empty; pass its PEM text", label);
    }
    if (len > CA_PEM_MAX) {
        return ca_fail(errmsg, CA_EINVALID,
                       "%s is %zu bytes, over the %d-byte limit for PEM input", label,
                       len, CA_PEM_MAX);
    }
    return 0;
}

BIO *ca_bio_input(const char *pem, size_t len)
{
    /* CA_PEM_MAX keeps len far below INT_MAX, which BIO_new_mem_buf takes. */
    _Static_assert(CA_PEM_MAX < INT_MAX, "PEM limit must fit in an int");
    return BIO_new_mem_buf(pem, (int)len);
}

BIO *ca_bio_output(void)
{
    /* A secure-memory BIO frees its buffer with OPENSSL_secure_clear_free,
     * which wipes it even when no secure heap was set up (OpenSSL 3.0,
     * crypto/mem_sec.c). */
    return BIO_new(BIO_s_secmem());
}

int ca_bio_to_buf(BIO *bio, ca_buf *out, char *errmsg)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);

    if (len <= 0 || data == NULL) {
        return ca_fail(errmsg, CA_ECRYPTO, "PEM encoding produced no output");
    }

    out->data = malloc((size_t)len + 1);
    if (out->data == NULL) {
        return ca_fail(errmsg, CA_ENOMEM, "allocating %ld bytes for PEM output failed",
                       len + 1);
    }
    memcpy(out->data, data, (size_t)len);
    out->data[len] = '\0';
    out->len = (size_t)len;
    return 0;
}

void ca_buf_free(ca_buf *buf)
{
    if (buf == NULL || buf->data == NULL) {
        return;
    }
    OPENSSL_cleanse(buf->data, buf->len);
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
}
