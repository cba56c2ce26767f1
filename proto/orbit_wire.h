/* orbit_wire: the versioned envelope around every Orbit message, decoding
 * with a reusable arena, and send/receive of one message over a ZeroMQ socket.
 *
 * Frame layout: byte 0 magic (0xB7), byte 1 major version, byte 2 minor
 * version, byte 3 message type, then the protobuf body. A reader accepts any
 * minor version of its major (new fields are ignored by protobuf) and rejects
 * other majors with ORBIT_EVERSION, so callers can count them.
 *
 * Thread rules: an arena and an orbit_rx_t belong to one thread. */
#ifndef ORBIT_WIRE_H
#define ORBIT_WIRE_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orbit.pb-c.h"

#define ORBIT_WIRE_MAGIC     0xB7
#define ORBIT_WIRE_MAJOR     1
#define ORBIT_WIRE_MINOR     0
#define ORBIT_WIRE_HDR       4
#define ORBIT_ROUTING_ID_MAX 256

typedef enum {
    ORBIT_MSG_LEAF_BATCH = 1,
    ORBIT_MSG_LEAF_ACK = 2,
    ORBIT_MSG_SHARD_REPORT = 3,
    ORBIT_MSG_REPORT_ACK = 4,
    ORBIT_MSG_VIEW_QUERY = 5,
    ORBIT_MSG_VIEW_REPLY = 6,
    ORBIT_MSG_DETAIL_REQUEST = 7,
    ORBIT_MSG_DETAIL_REPLY = 8,
    ORBIT_MSG_LEDGER_REQUEST = 9, /* ledger.proto: orbit.ledger.Request */
    ORBIT_MSG_LEDGER_REPLY = 10,  /* ledger.proto: orbit.ledger.Reply */
    ORBIT_MSG_TYPE_END
} orbit_msg_type_t;

/* Name of a message type ("leaf-batch", ...) or "unknown". */
const char *orbit_msg_type_name(int type);

/* --- arena: bump allocator handed to protobuf-c so that decoding a message
 * costs a few pointer increments and freeing it costs one reset. */
typedef struct orbit_arena orbit_arena_t;

/* New arena whose chunks are at least chunk bytes. NULL on ENOMEM. */
orbit_arena_t *orbit_arena_new(size_t chunk);
/* Free the arena and everything allocated from it; NULL-safe, clears *pa. */
void orbit_arena_destroy(orbit_arena_t **pa);
/* Forget every allocation. The only chunk is kept for reuse; when more than
 * one was needed they are freed and the next chunk is made as large as all
 * of them (up to 32 MiB), so that a steady workload settles on one chunk.
 * Past 32 MiB in all, the largest chunk is kept instead. */
void orbit_arena_reset(orbit_arena_t *a);
/* The protobuf-c allocator view of the arena (valid while the arena lives). */
ProtobufCAllocator *orbit_arena_allocator(orbit_arena_t *a);
/* size bytes (16-aligned) from the arena; NULL on ENOMEM. */
void *orbit_arena_alloc(orbit_arena_t *a, size_t size);
/* Copy of s in the arena; NULL on ENOMEM. */
char *orbit_arena_strdup(orbit_arena_t *a, const char *s);
/* Split packed "k=v\n" labels into an arena array of Orbit__Label pointers.
 * Errors: ORBIT_ENOMEM. */
int orbit_arena_labels(orbit_arena_t *a, const char *packed, Orbit__Label ***out, size_t *n);
/* Total bytes the arena currently holds from malloc. */
size_t orbit_arena_capacity(const orbit_arena_t *a);

/* Validate the envelope of buf and return its type in *type.
 * Errors: ORBIT_ETRUNC, ORBIT_EMAGIC, ORBIT_EVERSION, ORBIT_ETYPE. */
int orbit_wire_peek(const uint8_t *buf, size_t len, orbit_msg_type_t *type);

/* Validate the envelope, check the type is `expect` (0: any), decode the body
 * with alloc (NULL: protobuf-c's default malloc allocator) into *out, the
 * message of that type (free with protobuf_c_message_free_unpacked, or by
 * resetting the arena). *type receives the type when not NULL.
 * Errors: those of orbit_wire_peek, ORBIT_ETYPE (not `expect`), ORBIT_EDECODE. */
int orbit_wire_decode(const uint8_t *buf, size_t len, orbit_msg_type_t expect,
                      ProtobufCAllocator *alloc, orbit_msg_type_t *type, ProtobufCMessage **out);

/* Encode msg with its envelope into a malloc'd buffer (*buf, *len).
 * Errors: ORBIT_ENOMEM, ORBIT_ETYPE (msg's descriptor is not that of type). */
int orbit_wire_encode(orbit_msg_type_t type, const ProtobufCMessage *msg, uint8_t **buf,
                      size_t *len);

/* A deep copy of m (pack and unpack: every part owned by the copy; free it
 * with protobuf_c_message_free_unpacked(copy, NULL)). NULL when out of
 * memory. */
ProtobufCMessage *orbit_wire_copy(const ProtobufCMessage *m);
/* The same, the copy made with alloc (NULL: malloc; an arena's: one reset
 * or destroy frees it). NULL when out of memory. */
ProtobufCMessage *orbit_wire_copy_in(const ProtobufCMessage *m, ProtobufCAllocator *alloc);

/* --- raw fields: embedded messages passed through as their encoded bytes,
 * without being decoded and encoded again (the ledger leader queues the
 * proposals of a request this way and frames them into an entry). */
typedef struct {
    const uint8_t *p;
    size_t len;
} orbit_pb_slice_t;

/* The bodies of every length-delimited occurrence of field number `field`
 * in the encoded message msg[0..len), in order, appended to out[*n..max);
 * *n grows by their count. Other fields are skipped. false when msg is not
 * well-formed protobuf (a truncated field, a group, a bad wire type) or has
 * more than max - *n such fields (then *n and out are unspecified). */
bool orbit_pb_slices(const uint8_t *msg, size_t len, uint32_t field, orbit_pb_slice_t *out,
                     size_t max, size_t *n);
/* Bytes that a varint field, or a length-delimited field of len bytes,
 * takes encoded (tag, length and body). */
size_t orbit_pb_varint_field_size(uint32_t field, uint64_t v);
size_t orbit_pb_bytes_field_size(uint32_t field, size_t len);
/* Encode it at p (room for the size above); returns the bytes written. */
size_t orbit_pb_put_varint_field(uint8_t *p, uint32_t field, uint64_t v);
size_t orbit_pb_put_bytes_field(uint8_t *p, uint32_t field, const void *body, size_t len);
/* The number of the field called name in message descriptor d; 0 if none. */
uint32_t orbit_pb_field_number(const ProtobufCMessageDescriptor *d, const char *name);

/* Send one message; on a ROUTER socket rid/rid_len name the peer (else pass
 * NULL, 0). Never blocks: a full queue or an unroutable peer answers
 * ORBIT_EAGAIN and the message is dropped (the caller counts it).
 * Errors: ORBIT_EAGAIN, ORBIT_ENOMEM, ORBIT_ETYPE, ORBIT_EIO. */
int orbit_wire_send(zsock_t *sock, const uint8_t *rid, size_t rid_len, orbit_msg_type_t type,
                    const ProtobufCMessage *msg);

/* One received message: the routing id (ROUTER sockets only) and the body. */
typedef struct {
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len;
    zmq_msg_t body;
    int has_body;
} orbit_rx_t;

void orbit_rx_init(orbit_rx_t *rx);
void orbit_rx_close(orbit_rx_t *rx);

/* Receive one message without blocking into rx (previous body released).
 * router: expect a routing-id frame first. A message with a missing or extra
 * frame is drained completely and answered with ORBIT_EDECODE, so one bad peer
 * cannot desynchronise the socket.
 * Errors: ORBIT_EAGAIN (nothing queued), ORBIT_EDECODE, ORBIT_EIO. */
int orbit_wire_recv(zsock_t *sock, int router, orbit_rx_t *rx);

static inline const uint8_t *orbit_rx_data(orbit_rx_t *rx)
{
    return (const uint8_t *)zmq_msg_data(&rx->body);
}
static inline size_t orbit_rx_size(orbit_rx_t *rx)
{
    return zmq_msg_size(&rx->body);
}

#endif
