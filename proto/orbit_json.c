/* orbit_json: protobuf-c <-> JSON through descriptors. */
#include "orbit_json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

/* ------------------------------------------------------------ pb -> JSON */

static json_t *scalar_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return json_integer((json_int_t) * (const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            (const ProtobufCEnumDescriptor *)f->descriptor, *(const int *)p);
        return v ? json_string(v->name) : json_integer(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return json_stringn((const char *)b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? orbit_json_from_pb(m) : json_null();
    }
    }
    return json_null();
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* Is field f present in message m? */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *member = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)member != NULL &&
               (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_OPTIONAL);
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

json_t *orbit_json_from_pb(const ProtobufCMessage *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (!n)
                continue;
            const char *arr = *(const char *const *)(base + f->offset);
            v = json_array();
            for (size_t k = 0; v && k < n; k++)
                json_array_append_new(v, scalar_to_json(f, arr + k * scalar_size(f->type)));
        } else {
            if (!present(m, f))
                continue;
            v = scalar_to_json(f, base + f->offset);
        }
        if (v)
            json_object_set_new(o, f->name, v);
    }
    return o;
}

/* ------------------------------------------------------------ JSON -> pb */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return ORBIT_EINVAL;                                                                       \
    } while (0)

static int message_from(const json_t *j, const ProtobufCMessageDescriptor *d, const char *path,
                        ProtobufCMessage **out, char *err, size_t errlen);

static int int_in(const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* Store one JSON value into the slot p of field f. */
static int scalar_from(const json_t *v, const ProtobufCFieldDescriptor *f, const char *path,
                       void *p, char *err, size_t errlen)
{
    int64_t x;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (int_in(v, INT32_MIN, INT32_MAX, &x))
            FAIL("%s: expected a 32-bit integer", path);
        *(int32_t *)p = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (int_in(v, 0, UINT32_MAX, &x))
            FAIL("%s: expected a non-negative 32-bit integer", path);
        *(uint32_t *)p = (uint32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (int_in(v, INT64_MIN, INT64_MAX, &x))
            FAIL("%s: expected an integer", path);
        *(int64_t *)p = x;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (int_in(v, 0, INT64_MAX, &x))
            FAIL("%s: expected a non-negative integer", path);
        *(uint64_t *)p = (uint64_t)x;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(v))
            FAIL("%s: expected a number", path);
        *(float *)p = (float)json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            FAIL("%s: expected a number", path);
        *(double *)p = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            FAIL("%s: expected true or false", path);
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *ev =
            json_is_string(v)
                ? protobuf_c_enum_descriptor_get_value_by_name(e, json_string_value(v))
                : NULL;
        if (!ev)
            FAIL("%s: expected one of the names of %s", path, e->name);
        *(int *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            FAIL("%s: expected a string", path);
        char *s = strdup(json_string_value(v));
        if (!s)
            return ORBIT_ENOMEM;
        *(char **)p = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v))
            FAIL("%s: expected a string", path);
        ProtobufCBinaryData *b = p;
        size_t n = json_string_length(v);
        b->data = malloc(n ? n : 1);
        if (!b->data)
            return ORBIT_ENOMEM;
        memcpy(b->data, json_string_value(v), n);
        b->len = n;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!json_is_object(v))
            FAIL("%s: expected an object", path);
        return message_from(v, f->descriptor, path, (ProtobufCMessage **)p, err, errlen);
    }
    FAIL("%s: unsupported field type", path);
}

static int message_from(const json_t *j, const ProtobufCMessageDescriptor *d, const char *path,
                        ProtobufCMessage **out, char *err, size_t errlen)
{
    if (!json_is_object(j))
        FAIL("%s: expected an object", *path ? path : "top level");
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m)
        return ORBIT_ENOMEM;
    d->message_init(m);
    char *base = (char *)m;
    int rc = ORBIT_OK;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) {
            snprintf(err, errlen, "%s: unknown field", sub);
            rc = ORBIT_EINVAL;
            break;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_is_array(v)) {
                snprintf(err, errlen, "%s: expected an array", sub);
                rc = ORBIT_EINVAL;
                break;
            }
            size_t n = json_array_size(v), sz = scalar_size(f->type);
            char *arr = n ? calloc(n, sz) : NULL;
            if (n && !arr) {
                rc = ORBIT_ENOMEM;
                break;
            }
            *(void **)(base + f->offset) = arr;
            size_t k;
            for (k = 0; k < n && rc == ORBIT_OK; k++) {
                char item[300];
                snprintf(item, sizeof item, "%s[%zu]", sub, k);
                rc = scalar_from(json_array_get(v, k), f, item, arr + k * sz, err, errlen);
                if (rc == ORBIT_OK)
                    *(size_t *)(base + f->quantifier_offset) = k + 1;
            }
            if (rc != ORBIT_OK)
                break;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which) {
                snprintf(err, errlen, "%s: only one of a oneof may be set", sub);
                rc = ORBIT_EINVAL;
                break;
            }
            rc = scalar_from(v, f, sub, base + f->offset, err, errlen);
            if (rc == ORBIT_OK)
                *which = f->id;
            else
                break;
            continue;
        }
        rc = scalar_from(v, f, sub, base + f->offset, err, errlen);
        if (rc != ORBIT_OK)
            break;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    if (rc == ORBIT_OK) {
        for (unsigned i = 0; i < d->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &d->fields[i];
            if (f->label != PROTOBUF_C_LABEL_REQUIRED)
                continue;
            bool missing =
                (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
                    ? *(void **)(base + f->offset) == NULL ||
                          (f->type == PROTOBUF_C_TYPE_STRING && !json_object_get(j, f->name))
                    : !json_object_get(j, f->name);
            if (missing) {
                snprintf(err, errlen, "%s%s%s: required field missing", path, *path ? "." : "",
                         f->name);
                rc = ORBIT_EINVAL;
                break;
            }
        }
    }
    if (rc != ORBIT_OK) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return ORBIT_OK;
}

int orbit_json_to_pb(const json_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
                     char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    return message_from(j, d, "", out, err, errlen);
}
