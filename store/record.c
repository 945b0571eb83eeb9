/* Decoding of store records from msgpack maps. Every field is checked for
 * its type and bound, and a message never shows a field's value, because
 * some fields contain the signer key or a join token. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

static int wrong_type(const struct store_field *f, const char *expected,
                      const char *where, char *errmsg)
{
    return store_error(errmsg, STORE_ECORRUPT, "corrupt %s: field \"%s\" is not %s",
                       where, f->name, expected);
}

static int unpack_str(const struct store_field *f, const msgpack_object *o, char *dst,
                      const char *where, char *errmsg)
{
    const msgpack_object_str *str = &o->via.str;

    if (o->type != MSGPACK_OBJECT_STR) {
        return wrong_type(f, "a string", where, errmsg);
    }
    if (str->size > f->size - 1) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" is %u bytes, max %zu", where,
                           f->name, str->size, f->size - 1);
    }
    if (memchr(str->ptr, '\0', str->size) != NULL) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" contains a NUL byte", where,
                           f->name);
    }
    memcpy(dst, str->ptr, str->size);
    dst[str->size] = '\0';
    return 0;
}

static int unpack_pem(const struct store_field *f, const msgpack_object *o, char **dst,
                      const char *where, char *errmsg)
{
    const msgpack_object_str *str = &o->via.str;
    char *pem;

    if (o->type == MSGPACK_OBJECT_NIL) {
        *dst = NULL;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return wrong_type(f, "a string or nil", where, errmsg);
    }
    if (str->size > STORE_PEM_MAX) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" is %u bytes, max %d", where, f->name,
                           str->size, STORE_PEM_MAX);
    }
    if (memchr(str->ptr, '\0', str->size) != NULL) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" contains a NUL byte", where,
                           f->name);
    }
    pem = malloc((size_t)str->size + 1);
    if (pem == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory decoding %s", where);
    }
    memcpy(pem, str->ptr, str->size);
    pem[str->size] = '\0';
    *dst = pem;
    return 0;
}

static int object_int64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    return -1;
}

static int unpack_i64(const struct store_field *f, const msgpack_object *o, int64_t *dst,
                      const char *where, char *errmsg)
{
    if (object_int64(o, dst) != 0) {
        return wrong_type(f, "a 64-bit signed integer", where, errmsg);
    }
    return 0;
}

static int unpack_u64(const struct store_field *f, const msgpack_object *o, uint64_t *dst,
                      const char *where, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return wrong_type(f, "an unsigned integer", where, errmsg);
    }
    *dst = o->via.u64;
    return 0;
}

static int unpack_u32(const struct store_field *f, const msgpack_object *o, uint32_t *dst,
                      const char *where, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX) {
        return wrong_type(f, "a 32-bit unsigned integer", where, errmsg);
    }
    *dst = (uint32_t)o->via.u64;
    return 0;
}

static int unpack_role(const struct store_field *f, const msgpack_object *o, int *dst,
                       const char *where, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return wrong_type(f, "a role number", where, errmsg);
    }
    if (o->via.u64 != STORE_ROLE_WORKER && o->via.u64 != STORE_ROLE_MANAGER) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" is role %llu, expected %d (worker) "
                           "or %d (manager)",
                           where, f->name, (unsigned long long)o->via.u64,
                           STORE_ROLE_WORKER, STORE_ROLE_MANAGER);
    }
    *dst = (int)o->via.u64;
    return 0;
}

static int unpack_status(const struct store_field *f, const msgpack_object *o, int *dst,
                         const char *where, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return wrong_type(f, "a status number", where, errmsg);
    }
    if (o->via.u64 > STORE_STATUS_DOWN) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" is status %llu, expected %d "
                           "(unknown), %d (ready) or %d (down)",
                           where, f->name, (unsigned long long)o->via.u64,
                           STORE_STATUS_UNKNOWN, STORE_STATUS_READY, STORE_STATUS_DOWN);
    }
    *dst = (int)o->via.u64;
    return 0;
}

static int unpack_hash(const struct store_field *f, const msgpack_object *o,
                       unsigned char *dst, const char *where, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_BIN) {
        return wrong_type(f, "a byte string", where, errmsg);
    }
    if (o->via.bin.size != f->size) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" is %u bytes, expected %zu", where,
                           f->name, o->via.bin.size, f->size);
    }
    memcpy(dst, o->via.bin.ptr, f->size);
    return 0;
}

static int unpack_field(const struct store_field *f, const msgpack_object *o, void *rec,
                        const char *where, char *errmsg)
{
    char *base = (char *)rec + f->offset;
    char sub_where[160];

    switch (f->kind) {
    case STORE_FIELD_STR:
        return unpack_str(f, o, base, where, errmsg);
    case STORE_FIELD_ID:
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0) {
            return store_error(errmsg, STORE_ECORRUPT,
                               "corrupt %s: field \"%s\" is empty", where, f->name);
        }
        return unpack_str(f, o, base, where, errmsg);
    case STORE_FIELD_STATUS:
        return unpack_status(f, o, (int *)base, where, errmsg);
    case STORE_FIELD_CUSTOM:
        return f->custom->unpack(o, rec, where, errmsg);
    case STORE_FIELD_PEM:
    case STORE_FIELD_KEY_PEM:
        return unpack_pem(f, o, (char **)base, where, errmsg);
    case STORE_FIELD_I64:
        return unpack_i64(f, o, (int64_t *)base, where, errmsg);
    case STORE_FIELD_U64:
        return unpack_u64(f, o, (uint64_t *)base, where, errmsg);
    case STORE_FIELD_U32:
        return unpack_u32(f, o, (uint32_t *)base, where, errmsg);
    case STORE_FIELD_ROLE:
        return unpack_role(f, o, (int *)base, where, errmsg);
    case STORE_FIELD_HASH:
        return unpack_hash(f, o, (unsigned char *)base, where, errmsg);
    case STORE_FIELD_RECORD:
        snprintf(sub_where, sizeof(sub_where), "%s field \"%s\"", where, f->name);
        return store_record_unpack(o, f->sub, base, sub_where, errmsg);
    }
    assert(!"a field kind without a decoder");
    return STORE_ECORRUPT;
}

static int find_field(const struct store_layout *l, const msgpack_object_str *key)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->fields[i].name;

        if (strlen(name) == key->size && memcmp(name, key->ptr, key->size) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int store_record_unpack(const msgpack_object *o, const struct store_layout *l, void *rec,
                        const char *where, char *errmsg)
{
    uint32_t seen = 0;
    int rv = 0;

    assert(l->n <= 32);
    memset(rec, 0, l->size);
    if (o->type != MSGPACK_OBJECT_MAP) {
        return store_error(errmsg, STORE_ECORRUPT, "corrupt %s: not a msgpack map",
                           where);
    }

    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        int idx;

        if (kv->key.type != MSGPACK_OBJECT_STR) {
            rv = store_error(errmsg, STORE_ECORRUPT,
                             "corrupt %s: a map key is not a string", where);
            goto fail;
        }
        idx = find_field(l, &kv->key.via.str);
        if (idx < 0) {
            continue;
        }
        if (seen & (UINT32_C(1) << idx)) {
            rv = store_error(errmsg, STORE_ECORRUPT,
                             "corrupt %s: field \"%s\" appears twice", where,
                             l->fields[idx].name);
            goto fail;
        }
        seen |= UINT32_C(1) << idx;
        rv = unpack_field(&l->fields[idx], &kv->val, rec, where, errmsg);
        if (rv != 0) {
            goto fail;
        }
    }

    for (size_t i = 0; i < l->n; i++) {
        if (!(seen & (UINT32_C(1) << i)) && !l->fields[i].optional) {
            rv =
                store_error(errmsg, STORE_ECORRUPT, "corrupt %s: field \"%s\" is missing",
                            where, l->fields[i].name);
            goto fail;
        }
    }
    return 0;

fail:
    store_record_free(l, rec);
    return rv;
}

void store_record_free(const struct store_layout *l, void *rec)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct store_field *f = &l->fields[i];
        char *base = (char *)rec + f->offset;
        char **pem = (char **)base;

        if (f->kind == STORE_FIELD_KEY_PEM && *pem != NULL) {
            explicit_bzero(*pem, strlen(*pem));
        }
        if (f->kind == STORE_FIELD_PEM || f->kind == STORE_FIELD_KEY_PEM) {
            free(*pem);
            *pem = NULL;
        }
        if (f->kind == STORE_FIELD_RECORD) {
            store_record_free(f->sub, base);
        }
        if (f->kind == STORE_FIELD_CUSTOM) {
            f->custom->release(rec);
        }
    }

    /* Zeroing also wipes the join tokens that cluster and command records
     * carry in fixed arrays. */
    explicit_bzero(rec, l->size);
}

int store_record_decode(const struct store_layout *l, const void *data, size_t len,
                        void *rec, const char *where, char *errmsg)
{
    msgpack_unpacked u;
    int rv = store_msgpack_parse(data, len, &u);

    if (rv == STORE_ENOMEM) {
        memset(rec, 0, l->size);
        return store_error(errmsg, rv, "out of memory decoding %s", where);
    }
    if (rv != 0) {
        memset(rec, 0, l->size);
        return store_error(errmsg, rv, "corrupt %s: not one complete msgpack value",
                           where);
    }
    rv = store_record_unpack(&u.data, l, rec, where, errmsg);
    msgpack_unpacked_destroy(&u);
    return rv;
}
