/* orbit_bench_placement: the proposal the ledger benchmarks make — a
 * Placement of a distinct capsule (250 millicores, 512 MiB) on one node of
 * a simulated fleet, under node_fits with the ledger's bounds as capacity
 * (so only the check's cost, never a conflict). Every protobuf part lives in
 * the struct: building one allocates nothing.
 *
 * Thread rules: none; a struct belongs to its caller. */
#ifndef ORBIT_BENCH_PLACEMENT_H
#define ORBIT_BENCH_PLACEMENT_H

#include <stdint.h>

#include "ledger.pb-c.h"

typedef struct {
    char capsule[96], node[48];
    Orbit__Ledger__Resources env, cap;
    Orbit__Ledger__Placement pl;
    Orbit__Ledger__Commitment cm;
    Orbit__Ledger__NodeFits fits, *fl[1];
    Orbit__Ledger__Precondition pre;
    Orbit__Ledger__Proposal p; /* client_id and request_id left to the caller */
} orbit_bench_placement_t;

/* Fill x with the placement of capsule
 * "mission-bench-training.module-worker.r<run>-p<proposer>-c<seq>" on node
 * number node_no ("zone-<n%4>.rack-<n/40>.node-<n>"). */
void orbit_bench_placement_build(orbit_bench_placement_t *x, uint32_t run, uint32_t proposer,
                                 uint64_t seq, uint32_t node_no);

#endif
