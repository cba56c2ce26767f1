/* orbit_wire: envelope, arena decoding, and single-message socket I/O. */
#include "orbit_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.pb-c.h"
#include "orbit_err.h"

static const ProtobufCMessageDescriptor *descriptor_of(orbit_msg_type_t type)
{
    switch (type) {
    case ORBIT_MSG_LEAF_BATCH: return &orbit__leaf_batch__descriptor;
    case ORBIT_MSG_LEAF_ACK: return &orbit__leaf_ack__descriptor;
    case ORBIT_MSG_SHARD_REPORT: return &orbit__shard_report__descriptor;
    case ORBIT_MSG_REPORT_ACK: return &orbit__report_ack__descriptor;
    case ORBIT_MSG_VIEW_QUERY: return &orbit__view_query__descriptor;
    case ORBIT_MSG_VIEW_REPLY: return &orbit__view_reply__descriptor;
    case ORBIT_MSG_DETAIL_REQUEST: return &orbit__detail_request__descriptor;
    case ORBIT_MSG_DETAIL_REPLY: return &orbit__detail_reply__descriptor;
    case ORBIT_MSG_LEDGER_REQUEST: return &orbit__ledger__request__descriptor;
    case ORBIT_MSG_LEDGER_REPLY: return &orbit__ledger__reply__descriptor;
    default: return NULL;
    }
}

const char *orbit_msg_type_name(int type)
{
    static const char *names[] = {"unknown",      "leaf-batch",     "leaf-ack",    "shard-report",
                                  "report-ack",   "view-query",     "view-reply",  "detail-request",
                                  "detail-reply", "ledger-request", "ledger-reply"};
    if (type <= 0 || type >= ORBIT_MSG_TYPE_END)
        return names[0];
    return names[type];
}

/* ------------------------------------------------------------------ arena */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    max_align_t data[];
} arena_chunk_t;

struct orbit_arena {
    ProtobufCAllocator pb; /* first, so the allocator_data points at us */
    arena_chunk_t *head;   /* current chunk; older ones follow */
    size_t chunk;
};

static arena_chunk_t *chunk_new(size_t size)
{
    arena_chunk_t *c = malloc(sizeof(*c) + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

static void *arena_alloc(void *data, size_t size)
{
    orbit_arena_t *a = data;
    size = (size + 15) & ~(size_t)15;
    arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = size > a->chunk ? size : a->chunk;
        arena_chunk_t *n = chunk_new(want);
        if (!n)
            return NULL;
        n->next = c;
        a->head = n;
        c = n;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void arena_free(void *data, void *ptr)
{
    (void)data; /* released all at once by orbit_arena_reset */
    (void)ptr;
}

orbit_arena_t *orbit_arena_new(size_t chunk)
{
    orbit_arena_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->chunk = chunk < 1024 ? 1024 : chunk;
    a->pb.alloc = arena_alloc;
    a->pb.free = arena_free;
    a->pb.allocator_data = a;
    return a;
}

void orbit_arena_destroy(orbit_arena_t **pa)
{
    if (!pa || !*pa)
        return;
    arena_chunk_t *c = (*pa)->head;
    while (c) {
        arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    free(*pa);
    *pa = NULL;
}

/* The most an arena grows its chunk size to on its own (see reset). */
#define ARENA_GROW_MAX (32u << 20)

void orbit_arena_reset(orbit_arena_t *a)
{
    /* One chunk held what was asked: keep it, and a steady workload never
     * touches malloc. Several: what was asked is larger than a chunk, so
     * the next chunk is made as large as all of them together (up to
     * ARENA_GROW_MAX), and the next message of that size fits in one. */
    arena_chunk_t *head = a->head;
    if (!head)
        return;
    if (!head->next) {
        head->used = 0;
        return;
    }
    size_t total = 0;
    arena_chunk_t *largest = head;
    for (arena_chunk_t *c = head; c; c = c->next) {
        total += c->size;
        if (c->size > largest->size)
            largest = c;
    }
    /* Past the cap the largest chunk is kept, so that a workload that big
     * does not map and unmap it on every cycle. */
    arena_chunk_t *keep = total > ARENA_GROW_MAX ? largest : NULL;
    for (arena_chunk_t *c = head; c;) {
        arena_chunk_t *n = c->next;
        if (c != keep)
            free(c);
        c = n;
    }
    a->head = keep;
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    size_t grown = total < ARENA_GROW_MAX ? total : ARENA_GROW_MAX;
    if (grown > a->chunk)
        a->chunk = grown; /* never shrinks: an arena made with a larger chunk keeps it */
}

void *orbit_arena_alloc(orbit_arena_t *a, size_t size)
{
    return arena_alloc(a, size);
}

char *orbit_arena_strdup(orbit_arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

int orbit_arena_labels(orbit_arena_t *a, const char *packed, Orbit__Label ***out, size_t *n)
{
    size_t count = 0;
    for (const char *p = packed; *p; p++)
        count += *p == '\n';
    *out = NULL;
    *n = 0;
    if (!count)
        return ORBIT_OK;
    Orbit__Label **ptrs = arena_alloc(a, count * sizeof *ptrs);
    Orbit__Label *ls = arena_alloc(a, count * sizeof *ls);
    char *text = orbit_arena_strdup(a, packed);
    if (!ptrs || !ls || !text)
        return ORBIT_ENOMEM;
    size_t i = 0;
    for (char *line = text; *line && i < count;) {
        char *eol = strchr(line, '\n');
        if (!eol)
            break; /* an unterminated last line is not a label */
        char *eq = memchr(line, '=', (size_t)(eol - line));
        *eol = '\0';
        if (eq) {
            *eq = '\0';
            orbit__label__init(&ls[i]);
            ls[i].key = line;
            ls[i].value = eq + 1;
            ptrs[i] = &ls[i];
            i++;
        }
        line = eol + 1;
    }
    *out = ptrs;
    *n = i;
    return ORBIT_OK;
}

ProtobufCAllocator *orbit_arena_allocator(orbit_arena_t *a)
{
    return &a->pb;
}

size_t orbit_arena_capacity(const orbit_arena_t *a)
{
    size_t n = 0;
    for (const arena_chunk_t *c = a->head; c; c = c->next)
        n += c->size;
    return n;
}

/* --------------------------------------------------------------- envelope */

int orbit_wire_peek(const uint8_t *buf, size_t len, orbit_msg_type_t *type)
{
    if (!buf || len < ORBIT_WIRE_HDR)
        return ORBIT_ETRUNC;
    if (buf[0] != ORBIT_WIRE_MAGIC)
        return ORBIT_EMAGIC;
    if (buf[1] != ORBIT_WIRE_MAJOR)
        return ORBIT_EVERSION;
    if (!descriptor_of((orbit_msg_type_t)buf[3]))
        return ORBIT_ETYPE;
    *type = (orbit_msg_type_t)buf[3];
    return ORBIT_OK;
}

int orbit_wire_decode(const uint8_t *buf, size_t len, orbit_msg_type_t expect,
                      ProtobufCAllocator *alloc, orbit_msg_type_t *type, ProtobufCMessage **out)
{
    orbit_msg_type_t t;
    int rc = orbit_wire_peek(buf, len, &t);
    if (rc != ORBIT_OK)
        return rc;
    if (expect && t != expect)
        return ORBIT_ETYPE;
    ProtobufCMessage *m = protobuf_c_message_unpack(descriptor_of(t), alloc, len - ORBIT_WIRE_HDR,
                                                    buf + ORBIT_WIRE_HDR);
    if (!m)
        return ORBIT_EDECODE;
    if (type)
        *type = t;
    *out = m;
    return ORBIT_OK;
}

static void put_header(uint8_t *p, orbit_msg_type_t type)
{
    p[0] = ORBIT_WIRE_MAGIC;
    p[1] = ORBIT_WIRE_MAJOR;
    p[2] = ORBIT_WIRE_MINOR;
    p[3] = (uint8_t)type;
}

int orbit_wire_encode(orbit_msg_type_t type, const ProtobufCMessage *msg, uint8_t **buf,
                      size_t *len)
{
    if (!msg || descriptor_of(type) != msg->descriptor)
        return ORBIT_ETYPE;
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *p = malloc(ORBIT_WIRE_HDR + n);
    if (!p)
        return ORBIT_ENOMEM;
    put_header(p, type);
    protobuf_c_message_pack(msg, p + ORBIT_WIRE_HDR);
    *buf = p;
    *len = ORBIT_WIRE_HDR + n;
    return ORBIT_OK;
}

ProtobufCMessage *orbit_wire_copy(const ProtobufCMessage *m)
{
    return orbit_wire_copy_in(m, NULL);
}

ProtobufCMessage *orbit_wire_copy_in(const ProtobufCMessage *m, ProtobufCAllocator *alloc)
{
    uint8_t small[1024];
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = n <= sizeof small ? small : malloc(n);
    if (!b)
        return NULL;
    protobuf_c_message_pack(m, b);
    ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, alloc, n, b);
    if (b != small)
        free(b);
    return c;
}

/* ------------------------------------------------------------- raw fields */

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

bool orbit_pb_slices(const uint8_t *msg, size_t len, uint32_t field, orbit_pb_slice_t *out,
                     size_t max, size_t *n)
{
    const uint8_t *p = msg, *end = msg + len;
    while (p < end) {
        uint64_t tag, v;
        if (!get_varint(&p, end, &tag))
            return false;
        switch (tag & 7) {
        case 0:
            if (!get_varint(&p, end, &v))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 2:
            if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            if (tag >> 3 == field) {
                if (*n >= max)
                    return false;
                out[*n].p = p;
                out[(*n)++].len = (size_t)v;
            }
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        default: return false; /* groups (3, 4) and 6, 7 */
        }
    }
    return true;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t orbit_pb_varint_field_size(uint32_t field, uint64_t v)
{
    return varint_size((uint64_t)field << 3) + varint_size(v);
}

size_t orbit_pb_bytes_field_size(uint32_t field, size_t len)
{
    return varint_size((uint64_t)field << 3 | 2) + varint_size(len) + len;
}

size_t orbit_pb_put_varint_field(uint8_t *p, uint32_t field, uint64_t v)
{
    size_t n = put_varint(p, (uint64_t)field << 3);
    return n + put_varint(p + n, v);
}

size_t orbit_pb_put_bytes_field(uint8_t *p, uint32_t field, const void *body, size_t len)
{
    size_t n = put_varint(p, (uint64_t)field << 3 | 2);
    n += put_varint(p + n, len);
    if (len)
        memcpy(p + n, body, len);
    return n + len;
}

uint32_t orbit_pb_field_number(const ProtobufCMessageDescriptor *d, const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    return f ? f->id : 0;
}

/* ------------------------------------------------------------- socket I/O */

int orbit_wire_send(zsock_t *sock, const uint8_t *rid, size_t rid_len, orbit_msg_type_t type,
                    const ProtobufCMessage *msg)
{
    if (!msg || descriptor_of(type) != msg->descriptor)
        return ORBIT_ETYPE;
    void *s = zsock_resolve(sock);
    size_t n = protobuf_c_message_get_packed_size(msg);
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, ORBIT_WIRE_HDR + n) != 0)
        return ORBIT_ENOMEM;
    uint8_t *p = zmq_msg_data(&m);
    put_header(p, type);
    protobuf_c_message_pack(msg, p + ORBIT_WIRE_HDR);
    if (rid) {
        if (zmq_send(s, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return errno == EAGAIN || errno == EHOSTUNREACH ? ORBIT_EAGAIN : ORBIT_EIO;
        }
    }
    if (zmq_msg_send(&m, s, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&m);
        return e == EAGAIN || e == EHOSTUNREACH ? ORBIT_EAGAIN : ORBIT_EIO;
    }
    return ORBIT_OK;
}

void orbit_rx_init(orbit_rx_t *rx)
{
    rx->rid_len = 0;
    rx->has_body = 0;
}

void orbit_rx_close(orbit_rx_t *rx)
{
    if (rx->has_body)
        zmq_msg_close(&rx->body);
    rx->has_body = 0;
}

static int more(void *s)
{
    int v = 0;
    size_t sz = sizeof v;
    zmq_getsockopt(s, ZMQ_RCVMORE, &v, &sz);
    return v;
}

static void drain(void *s)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (more(s) && zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0)
        ;
    zmq_msg_close(&m);
}

int orbit_wire_recv(zsock_t *sock, int router, orbit_rx_t *rx)
{
    void *s = zsock_resolve(sock);
    orbit_rx_close(rx);
    rx->rid_len = 0;
    if (router) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            return errno == EAGAIN ? ORBIT_EAGAIN : ORBIT_EIO;
        }
        size_t n = zmq_msg_size(&id);
        if (n > sizeof rx->rid)
            n = sizeof rx->rid; /* libzmq ids are at most 255 bytes */
        memcpy(rx->rid, zmq_msg_data(&id), n);
        rx->rid_len = n;
        zmq_msg_close(&id);
        if (!more(s))
            return ORBIT_EDECODE;
    }
    zmq_msg_init(&rx->body);
    if (zmq_msg_recv(&rx->body, s, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&rx->body);
        return e == EAGAIN ? ORBIT_EAGAIN : ORBIT_EIO;
    }
    rx->has_body = 1;
    if (more(s)) {
        drain(s);
        orbit_rx_close(rx);
        return ORBIT_EDECODE;
    }
    return ORBIT_OK;
}
