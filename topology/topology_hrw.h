/* topology_hrw: rendezvous (highest-random-weight) hashing of racks over
 * shards — the pure functions behind failover order and rebalancing
 * suggestions. No model here: callers pass the shard names.
 *
 * The weight of (rack, shard) is FNV-1a 64 over the bytes of rack, one 0x00
 * byte and the bytes of shard, then the splitmix64 finalizer. It uses only
 * byte values and fixed 64-bit constants, so every platform, build and
 * version computes the same order; leaves, shards and orbitctl must agree on
 * it, and tests pin a few values. Higher weight ranks first; equal weights
 * (never seen in practice) rank by strcmp of the shard names, so the order
 * is total and does not depend on the order the names are given in.
 *
 * Why rendezvous: removing a shard from the set changes the winner only of
 * racks it won, and adding one changes the winner only of racks the new one
 * wins (about 1/(N+1) of them for N shards).
 *
 * Thread rules: none (pure functions; nothing is kept). */
#ifndef ORBIT_TOPOLOGY_HRW_H
#define ORBIT_TOPOLOGY_HRW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The weight of shard for rack (both NUL-terminated; NULL counts as ""). */
uint64_t orbit_topology_hrw_weight(const char *rack, const char *shard);

/* True when shard a ranks before shard b for rack (higher weight, then
 * smaller name). */
bool orbit_topology_hrw_before(const char *rack, const char *a, const char *b);

/* The winner for rack among shards[0..n): its index in *winner. The array
 * is read, not kept.
 * Errors: ORBIT_EINVAL (NULL rack, shards or winner with n > 0, or a NULL
 * name), ORBIT_ENOTFOUND (n == 0); *winner unchanged on failure. */
int orbit_topology_hrw_pick(const char *rack, const char *const *shards, size_t n, size_t *winner);

/* Sort shards[0..n) in place into rendezvous order for rack (the winner
 * first). Only the pointers move; the names are not copied.
 * Errors: ORBIT_EINVAL (NULL argument or name), ORBIT_ENOMEM; the array is
 * unchanged on failure. */
int orbit_topology_hrw_rank(const char *rack, const char **shards, size_t n);

#endif
