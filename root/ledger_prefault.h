/* ledger_prefault: a thread that reads the pages just past the end of a
 * ledger's LMDB data file into the page cache before a transaction writes
 * them.
 *
 * The environment is mapped with MDB_WRITEMAP and LMDB sizes the file to
 * the whole map, so every page past the last one in use is a hole. The
 * first write to a hole faults, and the kernel reads it: it allocates a
 * page-cache folio and zero-fills it. Two things make that costly here:
 * - readahead from a fault allocates large folios (up to 2 MiB), and the
 *   kernel zero-fills a folio without a preemption point. `perf` and a
 *   SCHED_FIFO probe caught a CPU held 16–25 ms at a time, ~12 times in 4 s
 *   at 256 proposers: the probe itself could not run, and neither could the
 *   replicas (the 256-proposer p99 was 31–37 ms);
 * - in the VMs this runs on, guest memory freed earlier has been handed back
 *   to the host, so a first touch is slow: ~8 % of all CPU was this zeroing,
 *   inside apply, and ~20 ms for a 2 MiB folio.
 * This thread reads the pages ahead with readahead(2) on the file, in 64 KiB
 * calls: page-sized folios, a preemption point between calls, nothing
 * mapped. The transaction's fault then finds its page cached and only maps
 * it. With it the probe saw no stall over 5 ms, and the 256-proposer p99
 * was the lowest of the three ways measured in one sitting (22.9–28.6 ms,
 * against 31.7–40.9 populating through a mapping of its own, which left
 * the large folios, and 30.0–37.8 without this thread).
 *
 * The price: page-sized folios mean one write fault per page in apply (a
 * large folio is made writable in one), and faults are dear in this VM:
 * `orbit-bench apply --batch 150` takes ~7.2 µs a proposal with this thread
 * against ~5.5 without it and ~4.9 populating large folios ahead. Mapping
 * the pages writable ahead as well (MADV_POPULATE_WRITE on LMDB's own map)
 * removed 60 % of the faults but raised the p99, and was left out.
 *
 * The window starts at 1 MiB and doubles, up to 32 MiB, each time the
 * thread has to refill it (less than half of it left ahead of a commit):
 * a ledger that does not grow (tests, an idle cluster) keeps a megabyte of
 * page cache ahead, and one that has grown by ~16 MiB keeps 32 MiB, more
 * than a follower's batch commit at full load (~2.5 MB). Reading dirties
 * nothing: what lies past the last page in use is, as before, not part of
 * the state. If the kernel refuses, the thread logs it once and stops, and
 * the ledger runs as it did without it.
 *
 * Thread rules: note() from the one thread that commits write transactions
 * on the environment; start/stop around the environment's open and close
 * (stop before mdb_env_close: the thread reads through its descriptor). */
#ifndef ORBIT_LEDGER_PREFAULT_H
#define ORBIT_LEDGER_PREFAULT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orbit_ledger_prefault orbit_ledger_prefault_t;

typedef struct {
    uint64_t populated_bytes; /* read ahead by the thread, in all */
    size_t window_bytes;      /* kept populated past the last page in use */
    size_t ahead_bytes;       /* populated past the last page in use now */
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
