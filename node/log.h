/* Logging for the daemon: one logfmt line per event on stderr (which is the
 * log file of a detached node). Only node/ logs. Never pass a key, a token
 * secret or an unlock key to these functions. */
#ifndef SWARMPKI_NODE_LOG_H
#define SWARMPKI_NODE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the fields every line carries. node_id and role are copied; either
 * may be NULL before they are known. */
void log_set_identity(const char *node_id, const char *role);

/* Sets the lowest level that is written. */
void log_set_level(enum log_level level);

/* Writes one line: msg, then the key=value pairs in fmt (already logfmt,
 * e.g. "peer=%s error=%s"); values that contain spaces must be passed
 * through log_quote. fmt may be NULL. */
void log_event(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns value as a quoted logfmt value in a static ring of buffers, so a
 * few may be used in one log_event call. Control characters are replaced. */
const char *log_quote(const char *value);

#endif
