/* Small helpers of the daemon and the command line: durations, files in the
 * data directory, JSON strings. */
#ifndef SWARMPKI_NODE_UTIL_H
#define SWARMPKI_NODE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_ERRMSG_SIZE 256

/* Parses a Go-style duration such as "90m", "2h", "2160h" or "1h30m10s"
 * (units h, m, s; no sign, no fractions) into seconds. Returns 0, or -1
 * with a message naming the value. */
int util_duration_parse(const char *text, int64_t *seconds, char *errmsg);

/* Formats seconds as "2160h0m0s"-style text, like Go's time.Duration. */
void util_duration_format(int64_t seconds, char *out, size_t size);

/* Formats a Unix time as RFC 3339 UTC ("2026-12-04T20:38:43Z"). */
void util_time_format(int64_t t, char *out, size_t size);

/* Writes data to path atomically and durably: a temporary file in the same
 * directory with the given mode, fsync, rename, then fsync of the directory.
 * On failure the old file, if any, is untouched and no temporary is left. */
int util_file_write(const char *path, const void *data, size_t len, unsigned mode,
                    char *errmsg);

/* Reads a whole file of at most max bytes into a NUL-terminated heap buffer
 * (free()). Returns 0, -1 with a message, or -2 if the file does not exist
 * (no message). */
int util_file_read(const char *path, size_t max, char **out, size_t *len, char *errmsg);

/* Creates dir and its missing parents with the given mode. */
int util_mkdir_p(const char *dir, unsigned mode, char *errmsg);

/* Appends s to buf as a JSON string literal with quotes; buf grows with
 * realloc. Returns 0 or -1 when out of memory. */
typedef struct util_sbuf {
    char *data;
    size_t len;
    size_t cap;
} util_sbuf;

int util_sbuf_printf(util_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int util_sbuf_json_string(util_sbuf *b, const char *s);
void util_sbuf_free(util_sbuf *b);

/* Returns the current time in seconds since the Unix epoch. */
int64_t util_now(void);

#endif
