/* An open-addressing hash table of worker sessions keyed by node id, so a
 * heartbeat costs the same with ten workers or twenty thousand. Entries are
 * never deleted; a removed node's entry just stops being refreshed. */
#include <stdlib.h>
#include <string.h>

#include "node/daemon.h"

static size_t hash_id(const char *id)
{
    size_t h = 1469598103934665603u;
    for (; *id; id++) {
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    }
    return h;
}

session *sessions_find(session_table *t, const char *node_id)
{
    if (t->cap == 0) {
        return NULL;
    }
    for (size_t i = hash_id(node_id) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        session *s = &t->slots[i];
        if (s->node_id[0] == '\0') {
            return NULL;
        }
        if (strcmp(s->node_id, node_id) == 0) {
            return s;
        }
    }
}

static int grow(session_table *t)
{
    session_table bigger = {0};

    bigger.cap = t->cap ? t->cap * 2 : 64;
    bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
    if (bigger.slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].node_id[0] != '\0') {
            session *s = sessions_upsert(&bigger, t->slots[i].node_id);
            *s = t->slots[i];
        }
    }
    free(t->slots);
    *t = bigger;
    return 0;
}

session *sessions_upsert(session_table *t, const char *node_id)
{
    session *s;

    /* Node ids are 25 characters; a longer one would be cut and never found. */
    if (strlen(node_id) >= sizeof(s->node_id)) {
        return NULL;
    }
    s = sessions_find(t, node_id);
    if (s != NULL) {
        return s;
    }
    /* Keep the table at most half full so probes stay short. */
    if ((t->count + 1) * 2 > t->cap && grow(t) != 0) {
        return NULL;
    }
    for (size_t i = hash_id(node_id) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        s = &t->slots[i];
        if (s->node_id[0] == '\0') {
            memset(s, 0, sizeof(*s));
            strncpy(s->node_id, node_id, sizeof(s->node_id) - 1);
            t->count++;
            return s;
        }
    }
}

void sessions_free(session_table *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
