/* orbit_json: generic conversion between protobuf-c messages and JSON
 * (jansson), driven by the message descriptors: field names as keys, enums
 * as their names, repeated fields as arrays, oneofs as the one member set,
 * 64-bit integers as JSON integers. Used by orbitctl to read proposals from
 * files and print ledger objects, and by the root to answer `get`.
 *
 * Thread rules: none (pure functions). */
#ifndef ORBIT_JSON_H
#define ORBIT_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* New JSON object describing m (present fields only). NULL on ENOMEM. */
json_t *orbit_json_from_pb(const ProtobufCMessage *m);

/* Build a message of type d from JSON object j. Unknown keys, wrong types,
 * out-of-range integers, unknown enum names and missing required fields are
 * rejected with a one-line reason naming the field path in err. On success
 * *out is malloc'd: free with protobuf_c_message_free_unpacked(*out, NULL).
 * Errors: ORBIT_EINVAL (nothing allocated), ORBIT_ENOMEM. */
int orbit_json_to_pb(const json_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
                     char *err, size_t errlen);

#endif
