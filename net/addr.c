/* Addresses: parsing HOST:PORT, resolving names and formatting peers. */
#include "internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* Parses a decimal port without sign or spaces. */
static int parse_port(const char *text, bool allow_zero, uint16_t *port)
{
    unsigned long value = 0;
    size_t len = strlen(text);

    if (len == 0 || len > 5) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        value = value * 10 + (unsigned long)(text[i] - '0');
    }
    if (value > 65535 || (value == 0 && !allow_zero)) {
        return -1;
    }
    *port = (uint16_t)value;
    return 0;
}

static int split_bracketed(const char *addr, const char **host, size_t *host_len,
                           const char **port)
{
    const char *close = strchr(addr, ']');

    if (close == NULL || close[1] != ':') {
        return -1;
    }
    *host = addr + 1;
    *host_len = (size_t)(close - addr - 1);
    *port = close + 2;
    return 0;
}

int net__addr_split(const char *addr, bool allow_zero, char *host, size_t host_size,
                    uint16_t *port, char *errmsg)
{
    const char *host_start = addr;
    const char *port_text;
    const char *colon;
    size_t host_len;
    struct in6_addr v6;

    if (addr[0] == '[') {
        if (split_bracketed(addr, &host_start, &host_len, &port_text) != 0) {
            return net__fail(errmsg, NET_EADDR,
                             "invalid address \"%.100s\": write an IPv6 address as "
                             "[ADDRESS]:PORT",
                             addr);
        }
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
            return net__fail(errmsg, NET_EADDR,
                             "invalid address \"%.100s\": expected HOST:PORT, with an "
                             "IPv6 address in brackets",
                             addr);
        }
        host_len = (size_t)(colon - addr);
        port_text = colon + 1;
    }
    if (host_len == 0 || host_len >= host_size) {
        return net__fail(errmsg, NET_EADDR,
                         "invalid address \"%.100s\": the host is empty or longer than "
                         "%zu bytes",
                         addr, host_size - 1);
    }
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &v6) != 1) {
        return net__fail(errmsg, NET_EADDR,
                         "invalid address \"%.100s\": \"%.100s\" is not an IPv6 address",
                         addr, host);
    }
    if (parse_port(port_text, allow_zero, port) != 0) {
        return net__fail(errmsg, NET_EADDR,
                         "invalid address \"%.100s\": the port must be a number from %d "
                         "to 65535",
                         addr, allow_zero ? 0 : 1);
    }
    return 0;
}

int net_addr_check(const char *addr, char *errmsg)
{
    char host[NET_MAX_SHORT + 1];
    uint16_t port;

    return net__addr_split(addr, false, host, sizeof(host), &port, errmsg);
}

int net_addr_is_unspecified(const char *addr)
{
    char host[NET_MAX_SHORT + 1];
    struct in6_addr v6;
    struct in_addr v4;
    uint16_t port;

    if (net__addr_split(addr, false, host, sizeof(host), &port, NULL) != 0) {
        return 0;
    }
    if (inet_pton(AF_INET, host, &v4) == 1) {
        return v4.s_addr == htonl(INADDR_ANY);
    }
    return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&v6);
}

int net__addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    return NET_EADDR;
}

int net__addr_resolve(const char *addr, bool allow_zero, struct sockaddr_storage *out,
                      char *errmsg)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char host[NET_MAX_SHORT + 1];
    uint16_t port;
    int rv;

    if (addr == NULL) {
        return net__fail(errmsg, NET_EADDR, "missing address: expected HOST:PORT");
    }
    rv = net__addr_split(addr, allow_zero, host, sizeof(host), &port, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (net__addr_numeric(host, port, out) == 0) {
        return 0;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rv = getaddrinfo(host, NULL, &hints, &res);
    if (rv != 0 || res == NULL) {
        return net__fail(errmsg, NET_EADDR,
                         "cannot resolve host \"%.100s\": %s; check the name or use an "
                         "IP address",
                         host, rv != 0 ? gai_strerror(rv) : "no address");
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (out->ss_family == AF_INET) {
        ((struct sockaddr_in *)out)->sin_port = htons(port);
    } else {
        ((struct sockaddr_in6 *)out)->sin6_port = htons(port);
    }
    return 0;
}

int net_addr_parse(const char *addr, struct sockaddr_storage *out, char *errmsg)
{
    return net__addr_resolve(addr, false, out, errmsg);
}

void net__addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, size, "unknown");
    }
}

int net__unix_path_check(const char *path, char *errmsg)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    size_t len = path != NULL ? strlen(path) : 0;

    if (len == 0 || len > max) {
        return net__fail(errmsg, NET_EADDR,
                         "Unix socket path \"%.100s\" is empty or longer than %zu bytes; "
                         "use a shorter data directory path",
                         path != NULL ? path : "", max);
    }
    return 0;
}
