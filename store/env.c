/* The LMDB environment: opening and checking the data file, error
 * translation, and transactions. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <store/internal.h>

#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define MIN_MAP_SIZE     ((size_t)64 << 10)
#define MAP_SIZE_ENV     "SWARMPKI_STORE_MAP_SIZE"

/* meta, log, cluster, nodes, certs, certs_by_key, removed, snapshot, staging */
#define TABLE_COUNT 9

const char *store_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case STORE_ENOMEM:
        return "out of memory";
    case STORE_EIO:
        return "store I/O failed";
    case STORE_ECORRUPT:
        return "store data is corrupt";
    case STORE_EVERSION:
        return "store format version is not supported";
    case STORE_ENOTFOUND:
        return "record not found";
    case STORE_EFULL:
        return "store is full";
    case STORE_EINVALID:
        return "invalid value";
    }
    return "unknown store error";
}

int store_error(char *errmsg, int code, const char *fmt, ...)
{
    va_list ap;

    if (errmsg != NULL) {
        va_start(ap, fmt);
        vsnprintf(errmsg, STORE_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

int store_error_prefix(char *errmsg, int code, const char *fmt, ...)
{
    char cause[STORE_ERRMSG_SIZE];
    char context[STORE_ERRMSG_SIZE];
    va_list ap;

    if (errmsg != NULL) {
        snprintf(cause, sizeof(cause), "%s", errmsg);
        va_start(ap, fmt);
        vsnprintf(context, sizeof(context), fmt, ap);
        va_end(ap);
        snprintf(errmsg, STORE_ERRMSG_SIZE, "%s: %s", context, cause);
    }
    return code;
}

int store_lmdb_error(const store *s, int rc, const char *action, char *errmsg)
{
    MDB_envinfo info;

    switch (rc) {
    case MDB_MAP_FULL:
        mdb_env_info(s->env, &info);
        return store_error(errmsg, STORE_EFULL,
                           "%s: store %s is full at its map size of %zu bytes; restart "
                           "with " MAP_SIZE_ENV " set to a larger number of bytes",
                           action, s->path, info.me_mapsize);
    case ENOSPC:
        return store_error(errmsg, STORE_EFULL,
                           "%s: the disk holding store %s is full; free space on it",
                           action, s->path);
    case ENOMEM:
        return store_error(errmsg, STORE_ENOMEM, "%s: out of memory in store %s", action,
                           s->path);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return store_error(errmsg, STORE_ECORRUPT,
                           "%s: store %s is corrupt (%s); restore it from a backup",
                           action, s->path, mdb_strerror(rc));
    }
    return store_error(errmsg, STORE_EIO, "%s in store %s failed: %s", action, s->path,
                       mdb_strerror(rc));
}

int store_txn_error(store_txn *txn, int rc, const char *action, char *errmsg)
{
    int code = store_lmdb_error(txn->s, rc, action, errmsg);

    if (txn->failed == 0) {
        txn->failed = code;
    }
    return code;
}

int store_txn_fail(store_txn *txn, int code)
{
    if (txn->failed == 0) {
        txn->failed = code;
    }
    return code;
}

/* ---- opening ---- */

static int map_size_from_env(size_t *out, char *errmsg)
{
    const char *value = getenv(MAP_SIZE_ENV);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long n;
    char *end;

    *out = DEFAULT_MAP_SIZE;
    if (value == NULL || value[0] == '\0') {
        return 0;
    }

    errno = 0;
    n = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0' || value[0] < '0' || value[0] > '9' ||
        n < MIN_MAP_SIZE || n > SIZE_MAX / 2) {
        return store_error(errmsg, STORE_EINVALID,
                           MAP_SIZE_ENV
                           "=\"%.40s\" is not a size in bytes of at least %zu; "
                           "set it to a decimal number of bytes or unset it",
                           value, MIN_MAP_SIZE);
    }

    /* LMDB expects a multiple of the OS page size. */
    if (page > 0 && n % (unsigned long long)page != 0) {
        n += (unsigned long long)page - n % (unsigned long long)page;
    }
    *out = (size_t)n;
    return 0;
}

static int make_dir(const char *dir, char *errmsg)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return store_error(errmsg, STORE_EIO, "cannot create store directory %s: %s", dir,
                           strerror(errno));
    }
    if (stat(dir, &st) != 0) {
        return store_error(errmsg, STORE_EIO, "cannot read store directory %s: %s", dir,
                           strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return store_error(
            errmsg, STORE_EIO,
            "store directory %s exists but is not a directory; move it away", dir);
    }
    return 0;
}

/* Rejects an existing data file that is not a regular file or is empty.
 * LMDB would treat an empty file as a new database, which would hide the
 * loss of a store that a failed copy or a full disk truncated to zero. */
static int check_file(const char *path, char *errmsg)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return store_error(errmsg, STORE_EIO, "cannot read store %s: %s", path,
                           strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return store_error(errmsg, STORE_EIO,
                           "store %s is not a regular file; move it away", path);
    }
    if (st.st_size == 0) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "store %s is empty (0 bytes); delete it only if this node "
                           "crashed while creating it, else restore it from a backup",
                           path);
    }
    return 0;
}

static int open_env(store *s, size_t map_size, char *errmsg)
{
    int rc = mdb_env_create(&s->env);

    if (rc != 0) {
        s->env = NULL;
        return store_error(errmsg, STORE_ENOMEM, "cannot create the LMDB environment: %s",
                           mdb_strerror(rc));
    }
    rc = mdb_env_set_mapsize(s->env, map_size);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(s->env, TABLE_COUNT);
    }

    /* MDB_NOTLS ties reader slots to transactions instead of threads, so a
     * thread may hold several read transactions at once. There is no
     * MDB_NOSYNC: a commit returns once its data is on disk. */
    if (rc == 0) {
        rc = mdb_env_open(s->env, s->path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "store %s is not a readable LMDB file (%s); restore it from a "
                           "backup or move it away to start a new node",
                           s->path, mdb_strerror(rc));
    }
    if (rc != 0) {
        return store_lmdb_error(s, rc, "open", errmsg);
    }
    return 0;
}

/* Rejects a file shorter than the pages its meta page claims. LMDB maps the
 * file and would touch those missing pages later, which ends the process
 * with SIGBUS instead of returning an error.
 * NOTE: LMDB keeps no page checksums, so damage inside data pages that
 * leaves the meta pages intact is not detected here and may crash a read. */
static int check_size(store *s, char *errmsg)
{
    MDB_envinfo info;
    MDB_stat stat_env;
    struct stat st;
    int fd;
    unsigned long long need;

    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &stat_env) != 0 ||
        mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0) {
        return store_error(errmsg, STORE_EIO, "cannot read the size of store %s",
                           s->path);
    }
    need = ((unsigned long long)info.me_last_pgno + 1) * stat_env.ms_psize;
    if ((unsigned long long)st.st_size < need) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "store %s is truncated: %lld bytes, but its pages end at byte "
                           "%llu; restore it from a backup",
                           s->path, (long long)st.st_size, need);
    }
    return 0;
}

struct table {
    const char *name;
    size_t offset; /* of the MDB_dbi in struct store */
    bool added;    /* added to format 1 later, so an existing store may lack it */
};

/* Opening creates an added table that an existing store lacks. Stores
 * written before snapshots existed thus gain the snapshot tables, and they
 * keep format version 1, because every record in them still decodes. */
static const struct table tables[TABLE_COUNT] = {
    {"meta", offsetof(store, meta), false},
    {"log", offsetof(store, log), false},
    {"cluster", offsetof(store, cluster), false},
    {"nodes", offsetof(store, nodes), false},
    {"certs", offsetof(store, certs), false},
    {"certs_by_key", offsetof(store, certs_by_key), false},
    {"removed", offsetof(store, removed), false},
    {"snapshot", offsetof(store, snapshot), true},
    {"staging", offsetof(store, staging), true},
};

/* A store is new when its main database names no table yet: creating the
 * tables and writing the format version happen in one transaction, so a
 * crash leaves either nothing or all of it. */
static int is_new(store_txn *txn, bool *out, char *errmsg)
{
    MDB_dbi main_db;
    MDB_stat st;
    int rc = mdb_dbi_open(txn->txn, NULL, 0, &main_db);

    if (rc == 0) {
        rc = mdb_stat(txn->txn, main_db, &st);
    }
    if (rc != 0) {
        return store_txn_error(txn, rc, "read the table list", errmsg);
    }
    *out = st.ms_entries == 0;
    return 0;
}

static int open_tables(store_txn *txn, bool fresh, char *errmsg)
{
    for (size_t i = 0; i < TABLE_COUNT; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)txn->s + tables[i].offset);
        unsigned flags = fresh || tables[i].added ? MDB_CREATE : 0;
        int rc = mdb_dbi_open(txn->txn, tables[i].name, flags, dbi);

        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            return store_error(errmsg, STORE_ECORRUPT,
                               "store %s has no table %s, so swarmpki did not write it "
                               "or it is damaged; restore it from a backup",
                               txn->s->path, tables[i].name);
        }
        if (rc != 0) {
            return store_txn_error(txn, rc, "open a table", errmsg);
        }
    }
    return 0;
}

static int check_format(store_txn *txn, bool fresh, char *errmsg)
{
    uint64_t found;
    int rv;

    if (fresh) {
        return store_meta_put_uint(txn, "format", STORE_FORMAT_VERSION, errmsg);
    }
    rv = store_meta_get_uint(txn, "format", &found, errmsg);
    if (rv == STORE_ENOTFOUND || rv == STORE_ECORRUPT) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "store %s has a missing or unreadable format version; restore "
                           "it from a backup",
                           txn->s->path);
    }
    if (rv != 0) {
        return rv;
    }
    if (found != STORE_FORMAT_VERSION) {
        return store_error(errmsg, STORE_EVERSION,
                           "store %s has format version %llu, but this build reads only "
                           "version %d; run the swarmpki release that wrote it",
                           txn->s->path, (unsigned long long)found, STORE_FORMAT_VERSION);
    }
    return 0;
}

/* Opens every table, creating missing added ones, and checks or writes the
 * format version. */
static int prepare(store *s, char *errmsg)
{
    store_txn txn = {NULL, s, 0};
    bool fresh = false;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn.txn);
    int rv;

    if (rc != 0) {
        return store_lmdb_error(s, rc, "begin the first transaction", errmsg);
    }
    rv = is_new(&txn, &fresh, errmsg);
    if (rv == 0) {
        rv = open_tables(&txn, fresh, errmsg);
    }
    if (rv == 0) {
        rv = check_format(&txn, fresh, errmsg);
    }
    if (rv != 0) {
        mdb_txn_abort(txn.txn);
        return rv;
    }

    rc = mdb_txn_commit(txn.txn);
    if (rc != 0) {
        return store_lmdb_error(s, rc, "create the tables", errmsg);
    }
    return 0;
}

int store_open(const char *dir, store **out, char *errmsg)
{
    size_t map_size;
    store *s;
    int rv;

    *out = NULL;
    rv = map_size_from_env(&map_size, errmsg);
    if (rv == 0) {
        rv = make_dir(dir, errmsg);
    }
    if (rv != 0) {
        return rv;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory opening store in %s",
                           dir);
    }
    if ((size_t)snprintf(s->path, sizeof(s->path), "%s/store.mdb", dir) >=
        sizeof(s->path)) {
        free(s);
        return store_error(errmsg, STORE_EINVALID,
                           "store directory path is longer than %d bytes; use a shorter "
                           "path",
                           PATH_MAX - 11);
    }

    rv = check_file(s->path, errmsg);
    if (rv == 0) {
        rv = open_env(s, map_size, errmsg);
    }
    if (rv == 0) {
        rv = check_size(s, errmsg);
    }
    if (rv == 0) {
        rv = prepare(s, errmsg);
    }
    if (rv != 0) {
        store_close(s);
        return rv;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->env != NULL) {
        mdb_env_close(s->env);
    }
    free(s);
}

/* ---- transactions ---- */

int store_txn_begin(store *s, int write, store_txn **out, char *errmsg)
{
    store_txn *txn = calloc(1, sizeof(*txn));
    int rc;

    *out = NULL;
    if (txn == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory beginning a transaction");
    }
    rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &txn->txn);
    if (rc != 0) {
        free(txn);
        return store_lmdb_error(s, rc, "begin a transaction", errmsg);
    }
    txn->s = s;
    *out = txn;
    return 0;
}

int store_txn_commit(store_txn *txn, char *errmsg)
{
    store *s = txn->s;
    int failed = txn->failed;
    int rc;

    /* After a failed write LMDB rejects the commit with MDB_BAD_TXN, which
     * does not say why, so report the failure that caused it instead. */
    if (failed != 0) {
        mdb_txn_abort(txn->txn);
        free(txn);
        return store_error(errmsg, failed,
                           "commit to store %s failed because an earlier write in the "
                           "transaction failed (%s); nothing was written",
                           s->path, store_strerror(failed));
    }

    rc = mdb_txn_commit(txn->txn);
    free(txn);
    if (rc != 0) {
        return store_lmdb_error(s, rc, "commit", errmsg);
    }
    return 0;
}

void store_txn_abort(store_txn *txn)
{
    if (txn == NULL) {
        return;
    }
    mdb_txn_abort(txn->txn);
    free(txn);
}
