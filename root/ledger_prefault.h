/* ledger_prefault: a thread that faults in the pages just past the end of
 * a ledger's LMDB data file before a transaction writes them.
 *
 * The environment is mapped with MDB_WRITEMAP and LMDB sizes the file to
 * the whole map, so every page past the last one in use is a hole. The
 * first write to a hole faults, and the kernel reads it: it allocates a
 * page-cache folio (readahead makes it a large one) and zero-fills it. In
 * the VMs this runs on, guest memory freed earlier has been handed back to
 * the host, so that first touch is slow: `perf` showed the leader's apply
 * spending 15–25 ms in one such fault ~20 times in an 8 s run, the 256-
 * proposer p99, and ~8 % of all CPU zero-filling. With this thread the
 * zero-fill happens off the apply path: it keeps a window past the last
 * page populated for reading (MADV_POPULATE_READ), and the transaction's
 * write fault then only makes a cached page writable.
 *
 * The window starts at 1 MiB and doubles, up to 32 MiB, each time a commit
 * reaches into its second half, so a ledger that hardly grows (tests, an
 * idle cluster) costs a megabyte of page cache, and one that grows fast
 * stays ahead. Populating for reading dirties nothing: no zeros are written
 * back, and what lies past the last page in use is, as before, not part of
 * the state. A kernel without MADV_POPULATE_READ (before 5.14), or any
 * other failure, stops the thread: the ledger then runs as it did without
 * it (`orbit_ledger_prefault_stats` says so).
 *
 * Thread rules: note() from the one thread that commits write transactions
 * on the environment; start/stop around the environment's open and close
 * (stop before mdb_env_close: the thread reads the map). */
#ifndef ORBIT_LEDGER_PREFAULT_H
#define ORBIT_LEDGER_PREFAULT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orbit_ledger_prefault orbit_ledger_prefault_t;

typedef struct {
    uint64_t populated_bytes; /* faulted in by the thread, in all */
    size_t window_bytes;      /* kept populated past the last page in use */
    bool failed;              /* the kernel refused: the thread stopped */
} orbit_ledger_prefault_stats_t;

/* Start the thread for env (opened with MDB_WRITEMAP). NULL when it cannot
 * start (out of memory or threads): the ledger runs without it. */
orbit_ledger_prefault_t *orbit_ledger_prefault_start(MDB_env *env);
/* The environment's last page in use now (after a write commit). */
void orbit_ledger_prefault_note(orbit_ledger_prefault_t *p);
orbit_ledger_prefault_stats_t orbit_ledger_prefault_stats(orbit_ledger_prefault_t *p);
/* Join the thread and free; NULL-safe. */
void orbit_ledger_prefault_stop(orbit_ledger_prefault_t **pp);

#endif
