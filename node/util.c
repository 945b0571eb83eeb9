#include "node/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_duration_parse(const char *text, int64_t *seconds, char *errmsg)
{
    const char *p = text;
    int64_t total = 0;

    if (text == NULL || *text == '\0') {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "empty duration; use a form such as 90m, 2h or 1h30m");
        return -1;
    }
    while (*p != '\0') {
        int64_t value = 0;
        int64_t unit;
        const char *start = p;

        while (*p >= '0' && *p <= '9') {
            if (value > (INT64_MAX - 9) / 10) {
                snprintf(errmsg, UTIL_ERRMSG_SIZE, "duration \"%s\" is too large", text);
                return -1;
            }
            value = value * 10 + (*p - '0');
            p++;
        }
        if (p == start) {
            snprintf(errmsg, UTIL_ERRMSG_SIZE,
                     "invalid duration \"%s\": expected a number before each unit, as in 90m, 2h or 1h30m",
                     text);
            return -1;
        }
        switch (*p) {
        case 'h':
            unit = 3600;
            break;
        case 'm':
            unit = 60;
            break;
        case 's':
            unit = 1;
            break;
        default:
            snprintf(errmsg, UTIL_ERRMSG_SIZE,
                     "invalid duration \"%s\": units are h, m and s, as in 90m, 2h or 1h30m",
                     text);
            return -1;
        }
        p++;
        if (value > (INT64_MAX - total) / unit) {
            snprintf(errmsg, UTIL_ERRMSG_SIZE, "duration \"%s\" is too large", text);
            return -1;
        }
        total += value * unit;
    }
    *seconds = total;
    return 0;
}

void util_duration_format(int64_t seconds, char *out, size_t size)
{
    snprintf(out, size, "%lldh%lldm%llds", (long long)(seconds / 3600),
             (long long)(seconds % 3600 / 60), (long long)(seconds % 60));
}

void util_time_format(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t util_now(void)
{
    return (int64_t)time(NULL);
}

static int fsync_parent(const char *path, char *errmsg)
{
    char dir[PATH_MAX];
    char *slash;
    int fd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "sync directory %s: %s", dir, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int util_file_write(const char *path, const void *data, size_t len, unsigned mode,
                    char *errmsg)
{
    char tmp[PATH_MAX];
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "path %s is too long", path);
        return -1;
    }

    /* mkstemp picks a name no other file has, so neither a concurrent
     * writer nor a temporary left by a crashed process blocks the write.
     * It creates the file with mode 0600, so a secret never exists with
     * wider permissions, not even for a moment. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fchmod(fd, (mode_t)mode) != 0 ||
        write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return fsync_parent(path, errmsg);
}

int util_file_read(const char *path, size_t max, char **out, size_t *len, char *errmsg)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        if (errno == ENOENT) {
            return -2;
        }
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "open %s: %s", path, strerror(errno));
        return -1;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "read %s: out of memory", path);
        return -1;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "read %s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    if (n > max) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "%s is larger than %zu bytes", path, max);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int is_directory(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int util_mkdir_p(const char *dir, unsigned mode, char *errmsg)
{
    char path[PATH_MAX];
    size_t len;

    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(errmsg, UTIL_ERRMSG_SIZE, "path %s is too long", dir);
        return -1;
    }
    len = strlen(path);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, (mode_t)mode) != 0) {
            int err = errno;

            /* Something that exists by this name will do only if it is a
             * directory or a symbolic link to one. */
            if (err == EEXIST && !is_directory(path)) {
                err = ENOTDIR;
            }
            if (err != EEXIST) {
                snprintf(errmsg, UTIL_ERRMSG_SIZE, "create directory %s: %s", path,
                         strerror(err));
                return -1;
            }
        }
        path[i] = saved;
    }
    return 0;
}

int util_sbuf_printf(util_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1) {
            cap *= 2;
        }
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int util_sbuf_json_string(util_sbuf *b, const char *s)
{
    if (util_sbuf_printf(b, "\"") != 0) {
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        int rv;
        if (*p == '"' || *p == '\\') {
            rv = util_sbuf_printf(b, "\\%c", *p);
        } else if (*p < 0x20) {
            rv = util_sbuf_printf(b, "\\u%04x", *p);
        } else {
            rv = util_sbuf_printf(b, "%c", *p);
        }
        if (rv != 0) {
            return -1;
        }
    }
    return util_sbuf_printf(b, "\"");
}

void util_sbuf_free(util_sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
