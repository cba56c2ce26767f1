/* ledger_prefault: a thread that makes the pages just past the end of a
 * ledger's LMDB data file ready for a transaction to write: in the page
 * cache, and mapped writable in LMDB's map.
 *
 * The environment is mapped with MDB_WRITEMAP and LMDB sizes the file to
 * the whole map, so every page past the last one in use is a hole, and a
 * ledger under load grows by ~1 KB a proposal. The first write to such a
 * page faults, and two things make that dear here:
 * - the kernel reads a hole in with readahead from the fault, in large
 *   folios (up to 2 MiB) that it zero-fills without a preemption point.
 *   `perf` and a SCHED_FIFO probe caught a CPU held 16-25 ms at a time,
 *   ~12 times in 4 s at 256 proposers (p99 31-37 ms);
 * - every fault is a trap, and traps are dear in the VMs this runs on:
 *   ~12 % of all CPU at 256 proposers was write faults in apply, ~10 µs
 *   each (~0.2 a proposal on every replica).
 * This thread reads the pages ahead with readahead(2) on the file, in
 * 64 KiB calls (page-sized folios, a preemption point between calls), and
 * then maps them writable in LMDB's own map with MADV_POPULATE_WRITE (one
 * call for 16 pages, no trap each), so the transaction's write finds its
 * page ready. No byte changes: the pages past the last page in use stay
 * zeros and, as before, not part of the state. Mapping them writable does
 * mark them dirty (and reserves their blocks), so writeback may write those
 * zeros, at most a window's worth; a page cleaned by writeback before apply
 * writes it takes its write fault again, as it would have anyway. At start
 * the pages in use are handed to the kernel to read in the background
 * (POSIX_FADV_WILLNEED): with readahead off on the map (below), a cold page
 * after a reboot would otherwise be a 4 KiB read of its own.
 *
 * That only works with readahead on LMDB's map off (the ledger opens its
 * environment with MDB_NORDAHEAD, which is MADV_RANDOM on the map): a
 * fault's readahead leaves a mark on a folio ahead, and populating a marked
 * folio starts asynchronous readahead in large folios, which leaves a mark
 * further on. Populating then zero-filled 2 MiB folios on and on, and the
 * probe's 18-27 ms stalls came back (p99 28-45 ms).
 *
 * Measured at 256 proposers, four alternating runs each (Release, 2 cores):
 * 43,823-45,417 commitments/s and p99 18.5-19.9 ms, against 38,403-41,287
 * and 21.7-24.5 ms reading ahead only; `orbit-bench apply` faults 13,400
 * times instead of 88,900 for 500,000 proposals.
 *
 * The window starts at 1 MiB and doubles, up to 32 MiB, each time the
 * thread has to refill it (less than half of it left ahead of a commit):
 * a ledger that does not grow (tests, an idle cluster) keeps a megabyte
 * ready, and one that has grown by ~16 MiB keeps 32 MiB, more than a
 * follower's batch commit at full load (~2.5 MB). If the kernel refuses
 * readahead, the thread logs it once and stops, and the ledger runs as it
 * did without it; if it refuses to map pages ahead (a kernel before 5.14)
 * or LMDB's map is not found in /proc/self/maps, it logs that once and
 * reads ahead only.
 *
 * Thread rules: note() from the one thread that commits write transactions
 * on the environment; start/stop around the environment's open and close
 * (stop before mdb_env_close: the thread uses its descriptor and map). */
#ifndef ORBIT_LEDGER_PREFAULT_H
#define ORBIT_LEDGER_PREFAULT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orbit_ledger_prefault orbit_ledger_prefault_t;

typedef struct {
    uint64_t populated_bytes; /* read ahead by the thread, in all */
    uint64_t mapped_bytes;    /* of which mapped writable in LMDB's map */
    bool map_found;           /* LMDB's map was found in /proc/self/maps */
    bool mapping;             /* ... and the kernel maps ahead (not refused) */
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
