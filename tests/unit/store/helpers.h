/* Shared helpers of the store unit tests: temporary directories, direct
 * LMDB access for planting bad bytes, and sample records. */
#ifndef SWARMPKI_TEST_STORE_HELPERS_H
#define SWARMPKI_TEST_STORE_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>

#include <store/store.h>

/* A fresh directory with an open store in it. */
struct fixture {
    char dir[64];
    char path[96]; /* dir/store.mdb */
    store *s;
};

/* cmocka setup and teardown for a struct fixture. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* Makes a new directory under the system temporary directory. */
void make_temp_dir(char out[64]);

/* Removes path and everything under it. */
void remove_tree(const char *path);

/* Closes and reopens f->s, failing the test on error. */
void reopen(struct fixture *f);

/* Writes key -> value into table of the closed store in dir through the
 * LMDB API, bypassing every check of store/. */
void raw_put(const char *dir, const char *table, const void *key, size_t klen,
             const void *value, size_t vlen);

/* Deletes table from the closed store in dir, as if an older version of
 * swarmpki had written the store before the table existed. */
void raw_drop(const char *dir, const char *table);

/* The number of rows in table of the closed store in dir. */
size_t raw_count(const char *dir, const char *table);

/* Fails the test unless table contains the same rows, byte for byte, in the
 * closed stores in dirs a and b. Returns the number of rows. */
size_t raw_expect_same(const char *a, const char *b, const char *table);

/* A seed from SWARMPKI_TEST_SEED or the clock, printed so a run can be
 * replayed. */
uint64_t test_seed(const char *test_name);

/* xorshift64: deterministic test randomness. */
uint64_t next_random(uint64_t *state);

void fill_node(store_node *n, const char *id, int role);
void fill_cert(store_cert *c, const char *serial, const char *node_id,
               unsigned char hash_byte);
void fill_cluster(store_cluster *c);

/* ---- snapshots ---- */

/* The Raft configuration bytes that take_snapshot records. */
extern const unsigned char test_config[5];

/* Writes, in one transaction, a cluster record, nodes nodes, certs
 * certificates with PEM texts of pem_len bytes, and three removed nodes. */
void fill_state(store *s, size_t nodes, size_t certs, size_t pem_len);

/* Takes a snapshot with test_config in its own transaction. */
void take_snapshot(store *s, uint64_t index, uint64_t term);

/* Fills meta and returns the data of snapshot index, read in pieces of
 * piece bytes; the caller frees both. */
unsigned char *read_snapshot(store *s, uint64_t index, size_t piece,
                             store_snapshot_meta *meta);

/* Stages len bytes of data from offset 0 in pieces of piece bytes, in one
 * transaction that it commits. */
void stage_snapshot(store *s, const unsigned char *data, size_t len, size_t piece);

/* Installs the staged snapshot; commits on success and aborts otherwise.
 * Returns what store_snapshot_install returned. */
int install_snapshot(store *s, const store_snapshot_meta *meta, char *errmsg);

/* Gives s state that an install must replace: node "old-node", removed
 * node "old-removed", log entries 1 to 10 and applied index 3. */
void put_old_state(store *s);

/* Fails the test unless s still has the state put_old_state wrote. */
void expect_old_state(store *s);

/* One field of a hand-made msgpack map. */
enum craft_kind { CRAFT_STR, CRAFT_INT, CRAFT_UINT, CRAFT_BIN, CRAFT_NIL };

struct craft {
    const char *key;
    enum craft_kind kind;
    const char *bytes; /* CRAFT_STR, CRAFT_BIN */
    size_t len;
    int64_t i;
};

/* The fields of a valid node record with id id. */
size_t craft_node(struct craft out[16], const char *id);

/* Packs fields as a msgpack map into sbuf, which the caller initialized. */
void craft_pack(msgpack_sbuffer *sbuf, const struct craft *fields, size_t n);

/* Replaces the value of field key in fields, failing the test if missing. */
void craft_set(struct craft *fields, size_t n, struct craft value);

int run_env_tests(void);
int run_log_tests(void);
int run_table_tests(void);
int run_command_tests(void);
int run_snapshot_tests(void);
int run_snapshot_input_tests(void);

#endif
