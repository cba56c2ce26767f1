/* orbit_bench_placement: the ledger benchmarks' proposal. */
#include "orbit_bench_placement.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

void orbit_bench_placement_build(orbit_bench_placement_t *x, uint32_t run, uint32_t proposer,
                                 uint64_t seq, uint32_t node_no)
{
    snprintf(x->capsule, sizeof x->capsule,
             "mission-bench-training.module-worker.r%u-p%04u-c%08" PRIu64, run, proposer, seq);
    snprintf(x->node, sizeof x->node, "zone-%u.rack-%03u.node-%05u", node_no % 4, node_no / 40,
             node_no);
    orbit__ledger__resources__init(&x->env);
    x->env.has_cpu_m = x->env.has_mem = x->env.has_gpus = true;
    x->env.cpu_m = 250;
    x->env.mem = 512ll << 20;
    x->env.gpus = 0;
    orbit__ledger__placement__init(&x->pl);
    x->pl.capsule = x->capsule;
    x->pl.node = x->node;
    x->pl.envelope = &x->env;
    x->pl.has_epoch = true;
    x->pl.epoch = 1;
    orbit__ledger__commitment__init(&x->cm);
    x->cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
    x->cm.placement = &x->pl;
    orbit__ledger__resources__init(&x->cap);
    x->cap.has_cpu_m = x->cap.has_mem = x->cap.has_gpus = true;
    x->cap.cpu_m = 100000000; /* the ledger's bounds */
    x->cap.mem = 1ll << 50;
    x->cap.gpus = 8;
    orbit__ledger__node_fits__init(&x->fits);
    x->fits.node = x->node;
    x->fits.capacity = &x->cap;
    x->fl[0] = &x->fits;
    orbit__ledger__precondition__init(&x->pre);
    x->pre.n_node_fits = 1;
    x->pre.node_fits = x->fl;
    orbit__ledger__proposal__init(&x->p);
    x->p.commitment = &x->cm;
    x->p.precondition = &x->pre;
}
