/* ledger_nodes: which capsules are placed on each node, kept in memory.
 *
 * Derived from the placements table (each placement names its node), so it
 * is not stored and not part of the state hash. Kept in LMDB (storage
 * formats 2-4) the index cost ~40 % of apply's CPU: each placement inserted
 * a key under a random node, and so dirtied a random page of a large tree in
 * every transaction. Here it is built from the placements when first asked
 * for (orbit_ledger_index_nodes), then kept current by apply: an entry's
 * changes are staged and take effect only once its transaction commits.
 *
 * Thread rules: the ledger's thread. */
#ifndef ORBIT_LEDGER_NODES_H
#define ORBIT_LEDGER_NODES_H

#include <czmq.h>
#include <stdbool.h>

typedef struct orbit_ledger_nodes orbit_ledger_nodes_t;

/* An empty index; NULL on ENOMEM. */
orbit_ledger_nodes_t *orbit_ledger_nodes_new(void);
void orbit_ledger_nodes_destroy(orbit_ledger_nodes_t **pn);

/* capsule is (add) or is no longer (!add) on node, now. Errors: ORBIT_ENOMEM. */
int orbit_ledger_nodes_set(orbit_ledger_nodes_t *n, bool add, const char *node,
                           const char *capsule);
/* The same, staged until commit (discard forgets what is staged); node and
 * capsule are borrowed and must stay valid until then.
 * Errors: ORBIT_ENOMEM (nothing staged). */
int orbit_ledger_nodes_stage(orbit_ledger_nodes_t *n, bool add, const char *node,
                             const char *capsule);
/* Apply what is staged, in order. Errors: ORBIT_ENOMEM (the index is then
 * incomplete: the caller drops it and builds it again). */
int orbit_ledger_nodes_commit(orbit_ledger_nodes_t *n);
void orbit_ledger_nodes_discard(orbit_ledger_nodes_t *n);

/* The capsules on node in name order, as a new list of borrowed strings
 * (valid until the next change; destroy the list); an empty list for a node
 * without any. NULL on ENOMEM. */
zlistx_t *orbit_ledger_nodes_list(orbit_ledger_nodes_t *n, const char *node);
/* Capsules in the index. */
size_t orbit_ledger_nodes_size(const orbit_ledger_nodes_t *n);

#endif
