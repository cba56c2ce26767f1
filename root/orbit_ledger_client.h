/* orbit_ledger_client: the C client of the Ephemeris (installed header).
 *
 * Talks to the root replicas over ZeroMQ (one DEALER per replica, created on
 * first use). A request goes to the replica believed to lead; a follower
 * answers "not leader" and the client moves on to the next replica and
 * remembers which one leads. Proposals are idempotent: a proposal is sent
 * with this client's client_id and a request_id fixed when it is created,
 * and every retry (after a timeout, a lost connection or a leader change)
 * reuses them, so the ledger returns the original outcome instead of
 * applying twice.
 *
 * Thread rules: a client belongs to one thread. A program that creates
 * clients in several threads calls zsys_init() once before starting them
 * (czmq's global set-up is not thread-safe). Replies are malloc'd
 * protobuf-c messages owned by the caller (free with
 * orbit__ledger__reply__free_unpacked(reply, NULL)). */
#ifndef ORBIT_LEDGER_CLIENT_H
#define ORBIT_LEDGER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"

typedef struct orbit_ledger_client orbit_ledger_client_t;

/* Client for the comma-separated root endpoints; client_id names this
 * client in the dedup table (NULL: "<hostname>-<pid>-<random>"). Copied.
 * Returns NULL with a one-line reason in err. */
orbit_ledger_client_t *orbit_ledger_client_new(const char *roots, const char *client_id, char *err,
                                               size_t errlen);
void orbit_ledger_client_destroy(orbit_ledger_client_t **pc);

/* The client id in use (valid while the client lives). */
const char *orbit_ledger_client_id(const orbit_ledger_client_t *c);

/* Send req (its request_id is set here; any oneof op) and wait for its
 * reply, following "not leader" answers and retrying on silence until
 * timeout_ms has passed in total. Proposals keep the (client_id,
 * request_id) of their Proposal: set them with orbit_ledger_client_stamp.
 * Errors: ORBIT_ETIMEDOUT (no replica answered in time), ORBIT_ENOMEM,
 * ORBIT_EIO. */
int orbit_ledger_client_call(orbit_ledger_client_t *c, Orbit__Ledger__Request *req, int timeout_ms,
                             Orbit__Ledger__Reply **reply);

/* orbit_ledger_client_call with the reply decoded by alloc (NULL: malloc),
 * typically an arena's (orbit_arena_allocator): a large reply then costs no
 * malloc per field. Free it with orbit__ledger__reply__free_unpacked(reply,
 * alloc), or, for an arena, by resetting the arena once it is no longer
 * read. */
int orbit_ledger_client_call_in(orbit_ledger_client_t *c, Orbit__Ledger__Request *req,
                                int timeout_ms, ProtobufCAllocator *alloc,
                                Orbit__Ledger__Reply **reply);

/* Number of replica endpoints, and one of them (i < count). */
int orbit_ledger_client_replicas(const orbit_ledger_client_t *c);
const char *orbit_ledger_client_endpoint(const orbit_ledger_client_t *c, int i);

/* Send req to replica i only (no leader following, one attempt): for
 * per-replica questions such as status.
 * Errors: ORBIT_ETIMEDOUT, ORBIT_ENOMEM, ORBIT_EIO, ORBIT_EINVAL (bad i). */
int orbit_ledger_client_call_one(orbit_ledger_client_t *c, int i, Orbit__Ledger__Request *req,
                                 int timeout_ms, Orbit__Ledger__Reply **reply);

/* Give proposal p this client's id and a fresh request id (once per logical
 * proposal; retries must keep them). */
void orbit_ledger_client_stamp(orbit_ledger_client_t *c, Orbit__Ledger__Proposal *p);

/* Convenience: propose commitment cm under precondition pre (may be NULL)
 * and return the outcome (copied into *outcome, free with
 * orbit__ledger__outcome__free_unpacked). A reply carrying an error (not an
 * outcome) is ORBIT_EIO with the error text in err.
 * Errors: those of orbit_ledger_client_call, ORBIT_EIO. */
int orbit_ledger_client_propose(orbit_ledger_client_t *c, Orbit__Ledger__Commitment *cm,
                                Orbit__Ledger__Precondition *pre, int timeout_ms,
                                Orbit__Ledger__Outcome **outcome, char *err, size_t errlen);

/* Convenience: read key ("placement/<capsule>", "topology", ...; see
 * orbit_ledger_get_json in ledger.h) linearizably, or from whichever replica
 * answers when stale. On ORBIT_OK *value is the object's JSON text
 * (malloc'd, free with free()) and *index (may be NULL) its last-changed
 * ledger index. ORBIT_ENOTFOUND: no such object (err untouched). Other
 * errors, with a one-line reason in err: those of orbit_ledger_client_call,
 * ORBIT_EIO (the replica answered an error), ORBIT_ENOMEM. */
int orbit_ledger_client_get(orbit_ledger_client_t *c, const char *key, bool stale, int timeout_ms,
                            char **value, uint64_t *index, char *err, size_t errlen);

#endif
