#include "node/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static char identity_node[32] = "-";
static char identity_role[16] = "-";
static enum log_level min_level = LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_identity(const char *node_id, const char *role)
{
    snprintf(identity_node, sizeof(identity_node), "%s", node_id ? node_id : "-");
    snprintf(identity_role, sizeof(identity_role), "%s", role ? role : "-");
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

const char *log_quote(const char *value)
{
    static _Thread_local char ring[4][512];
    static _Thread_local unsigned next;
    char *out = ring[next++ % 4];
    size_t o = 0;

    out[o++] = '"';
    for (const char *p = value ? value : ""; *p && o < sizeof(ring[0]) - 3; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

void log_event(enum log_level level, const char *msg, const char *fmt, ...)
{
    char line[2048];
    char stamp[40];
    struct timespec now;
    struct tm tm;
    int n;

    if (level < min_level) {
        return;
    }

    /* RFC 3339 in UTC with milliseconds, so lines from several nodes sort. */
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s node=%s role=%s msg=%s", stamp,
                 now.tv_nsec / 1000000, level_names[level], identity_node, identity_role,
                 log_quote(msg));
    if (fmt != NULL && n > 0 && (size_t)n < sizeof(line) - 2) {
        va_list ap;
        line[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
    }

    /* One fputs per line keeps lines whole when several threads log. */
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}
