/* orbit_names: the naming rules of the ledger's vocabulary, shared by the
 * ledger (which enforces them on apply), the topology model and the tools
 * (which refuse bad names before proposing anything).
 *
 *   plain names  [A-Za-z0-9._-], 1..ORBIT_NAME_LEN_MAX bytes: node, rack,
 *                shard, principal, mission, module
 *   ids          plain characters plus ':' and '/', 1..ORBIT_NAME_LEN_MAX:
 *                capsule, gang, identity, lease holder and resource,
 *                cluster id; client ids the same up to ORBIT_CLIENT_ID_MAX
 *   text         printable ASCII without spaces, 1..max bytes: endpoints */
#ifndef ORBIT_NAMES_H
#define ORBIT_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define ORBIT_NAME_LEN_MAX  63
#define ORBIT_CLIENT_ID_MAX 127
#define ORBIT_ENDPOINT_MAX  255

bool orbit_name_plain_ok(const char *s);
bool orbit_name_id_ok(const char *s);
bool orbit_name_client_ok(const char *s);
/* Printable ASCII without spaces, 1..max bytes (NULL: false). */
bool orbit_text_ok(const char *s, size_t max);

#endif
