/* Cluster configurations: encoding, validation and the history in the log. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

#define CONFIG_FORMAT 1
#define CONFIG_MAX_IDS                                                                   \
    (1u << 20) /* bound on decoded arrays, far above any real cluster */

const struct raft_server *raft_config_get(const struct raft_config *c, raft_id id)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return &c->servers[i];
        }
    }
    return NULL;
}

static bool config_removed(const struct raft_config *c, raft_id id)
{
    size_t i;

    for (i = 0; i < c->n_removed; i++) {
        if (c->removed[i] == id) {
            return true;
        }
    }
    return false;
}

int raft_config_add(struct raft_config *c, raft_id id, int role)
{
    struct raft_server *s;

    if (id == 0 || (role != RAFT_VOTER && role != RAFT_LEARNER) ||
        raft_config_get(c, id) != NULL || config_removed(c, id)) {
        return RAFT_EINVAL;
    }
    s = realloc(c->servers, (c->n + 1) * sizeof(*s));
    if (s == NULL) {
        return RAFT_ENOMEM;
    }
    c->servers = s;
    c->servers[c->n].id = id;
    c->servers[c->n].role = (uint8_t)role;
    c->n++;
    return 0;
}

int raft_config_copy(struct raft_config *dst, const struct raft_config *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n > 0) {
        dst->servers = malloc(src->n * sizeof(*dst->servers));
        if (dst->servers == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(dst->servers, src->servers, src->n * sizeof(*dst->servers));
    }
    dst->n = src->n;
    if (src->n_removed > 0) {
        dst->removed = malloc(src->n_removed * sizeof(*dst->removed));
        if (dst->removed == NULL) {
            raft_config_free(dst);
            return RAFT_ENOMEM;
        }
        memcpy(dst->removed, src->removed, src->n_removed * sizeof(*dst->removed));
    }
    dst->n_removed = src->n_removed;
    return 0;
}

void raft_config_free(struct raft_config *c)
{
    free(c->servers);
    free(c->removed);
    memset(c, 0, sizeof(*c));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    int i;

    for (i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* Layout, little-endian: u8 format, u32 n, n x (u64 id, u8 role),
 * u32 n_removed, n_removed x u64 id. */
int raft_config_encode(const struct raft_config *c, uint8_t **buf, size_t *len)
{
    size_t size = 1 + 4 + c->n * 9 + 4 + c->n_removed * 8, i;
    uint8_t *p;

    if (c->n > CONFIG_MAX_IDS || c->n_removed > CONFIG_MAX_IDS) {
        return RAFT_EINVAL;
    }
    p = malloc(size);
    if (p == NULL) {
        return RAFT_ENOMEM;
    }
    *buf = p;
    *len = size;

    *p++ = CONFIG_FORMAT;
    put_u32(p, (uint32_t)c->n);
    p += 4;
    for (i = 0; i < c->n; i++) {
        put_u64(p, c->servers[i].id);
        p[8] = c->servers[i].role;
        p += 9;
    }
    put_u32(p, (uint32_t)c->n_removed);
    p += 4;
    for (i = 0; i < c->n_removed; i++) {
        put_u64(p, c->removed[i]);
        p += 8;
    }
    return 0;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int decode_servers(const uint8_t **p, const uint8_t *end, struct raft_config *c)
{
    uint32_t n, i;

    if (end - *p < 4) {
        return RAFT_ECORRUPT;
    }
    n = get_u32(*p);
    *p += 4;
    if (n > CONFIG_MAX_IDS || (size_t)(end - *p) < (size_t)n * 9) {
        return RAFT_ECORRUPT;
    }
    for (i = 0; i < n; i++) {
        if (raft_config_add(c, get_u64(*p), (*p)[8]) != 0) {
            return RAFT_ECORRUPT;
        }
        *p += 9;
    }
    return 0;
}

static int decode_removed(const uint8_t **p, const uint8_t *end, struct raft_config *c)
{
    uint32_t n, i;

    if (end - *p < 4) {
        return RAFT_ECORRUPT;
    }
    n = get_u32(*p);
    *p += 4;
    if (n > CONFIG_MAX_IDS || (size_t)(end - *p) != (size_t)n * 8) {
        return RAFT_ECORRUPT;
    }
    c->removed = n > 0 ? malloc(n * sizeof(*c->removed)) : NULL;
    if (n > 0 && c->removed == NULL) {
        return RAFT_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        c->removed[i] = get_u64(*p);
        *p += 8;
    }
    c->n_removed = n;
    return 0;
}

int raft_config_decode(const uint8_t *buf, size_t len, struct raft_config *c)
{
    const uint8_t *p = buf, *end = buf + len;
    int rv;

    memset(c, 0, sizeof(*c));
    if (buf == NULL || len < 1 || *p != CONFIG_FORMAT) {
        return RAFT_ECORRUPT;
    }
    p++;
    rv = decode_servers(&p, end, c);
    if (rv == 0) {
        rv = decode_removed(&p, end, c);
    }
    if (rv != 0) {
        raft_config_free(c);
    }
    return rv;
}

int raft_config_check(const struct raft_config *c)
{
    size_t i, j, voters = 0;

    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        if (s->id == 0 || config_removed(c, s->id)) {
            return RAFT_EINVAL;
        }
        if (s->role != RAFT_VOTER && s->role != RAFT_LEARNER) {
            return RAFT_EINVAL;
        }
        for (j = i + 1; j < c->n; j++) {
            if (c->servers[j].id == s->id) {
                return RAFT_EINVAL;
            }
        }
        voters += s->role == RAFT_VOTER;
    }
    return voters > 0 ? 0 : RAFT_EINVAL;
}

/* ---- The configuration history of one server ---- */

const struct raft_config *config_current(const struct raft *r)
{
    return r->n_configs > 0 ? &r->configs[r->n_configs - 1].config : &r->base_config;
}

raft_index config_index(const struct raft *r)
{
    return r->n_configs > 0 ? r->configs[r->n_configs - 1].index : r->log.snap_index;
}

const struct raft_config *config_at(const struct raft *r, raft_index index)
{
    size_t i = r->n_configs;

    while (i > 0 && r->configs[i - 1].index > index) {
        i--;
    }
    return i > 0 ? &r->configs[i - 1].config : &r->base_config;
}

static int config_changed(struct raft *r)
{
    if (r->state == RAFT_LEADER) {
        return progress_rebuild(r);
    }
    return 0;
}

int config_push(struct raft *r, raft_index index, const struct raft_config *c)
{
    struct raft_config_at *configs;
    int rv;

    configs = realloc(r->configs, (r->n_configs + 1) * sizeof(*configs));
    if (configs == NULL) {
        return RAFT_ENOMEM;
    }
    r->configs = configs;
    rv = raft_config_copy(&configs[r->n_configs].config, c);
    if (rv != 0) {
        return rv;
    }
    configs[r->n_configs].index = index;
    r->n_configs++;
    trace(r, index, 0, "configuration changed");
    return config_changed(r);
}

/* Forgets configuration entries at index >= from, after a log truncation. */
void config_drop_from(struct raft *r, raft_index from)
{
    size_t n = r->n_configs;

    while (r->n_configs > 0 && r->configs[r->n_configs - 1].index >= from) {
        r->n_configs--;
        raft_config_free(&r->configs[r->n_configs].config);
    }
    if (n != r->n_configs) {
        trace(r, from, 0, "configuration rolled back");
        /* Only a follower truncates, and progress_rebuild runs only on a leader. */
        (void)config_changed(r);
    }
}

/* Makes the configuration at index the base, after a snapshot at index. */
void config_compact(struct raft *r, raft_index index)
{
    struct raft_config base;
    size_t k = 0, i;

    if (raft_config_copy(&base, config_at(r, index)) != 0) {
        return; /* NOTE: keeps the older base; config_at stays correct. */
    }
    raft_config_free(&r->base_config);
    r->base_config = base;
    while (k < r->n_configs && r->configs[k].index <= index) {
        raft_config_free(&r->configs[k].config);
        k++;
    }
    for (i = k; i < r->n_configs; i++) {
        r->configs[i - k] = r->configs[i];
    }
    r->n_configs -= k;
}

bool is_voter(const struct raft *r, raft_id id)
{
    const struct raft_server *s = raft_config_get(config_current(r), id);

    return s != NULL && s->role == RAFT_VOTER;
}

bool is_removed(const struct raft *r, raft_id id)
{
    return config_removed(config_current(r), id);
}

size_t quorum_size(const struct raft *r)
{
    const struct raft_config *c = config_current(r);
    size_t i, voters = 0;

    for (i = 0; i < c->n; i++) {
        voters += c->servers[i].role == RAFT_VOTER;
    }
    return voters / 2 + 1;
}
