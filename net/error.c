/* Error codes and messages of the net module. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *net_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case NET_ENOMEM:
        return "out of memory";
    case NET_EADDR:
        return "invalid or unresolvable address";
    case NET_ECONNECT:
        return "connection refused or unreachable";
    case NET_ETIMEOUT:
        return "timed out";
    case NET_ETLS:
        return "TLS failure";
    case NET_EPROTO:
        return "malformed frame or message";
    case NET_ECLOSED:
        return "connection closed";
    case NET_EINVALID:
        return "invalid parameter or PEM material";
    case NET_EIO:
        return "system call failed";
    case NET_ETOOBIG:
        return "frame over the size limit";
    }
    return "unknown net error code";
}

int net__fail(char *errmsg, int code, const char *fmt, ...)
{
    va_list ap;

    if (errmsg == NULL) {
        return code;
    }
    va_start(ap, fmt);
    vsnprintf(errmsg, NET_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
    return code;
}

void net__format_seconds(uint32_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%u", ms / 1000);
        return;
    }
    snprintf(buf, size, "%.1f", ms / 1000.0);
}
