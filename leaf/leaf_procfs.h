/* leaf_procfs: this node's CPU, memory, load, PSI pressure and boot identity, read from procfs. */
#ifndef ORBIT_LEAF_PROCFS_H
#define ORBIT_LEAF_PROCFS_H

#include <stddef.h>
#include <stdint.h>

#include "orbit_node.h"

/* A collector bound to one proc root. It keeps the previous CPU counters
 * (usage is a rate between two samples) and the boot identity.
 *
 * Files read, relative to the root: stat, meminfo, loadavg,
 * pressure/{cpu,memory,io}, sys/kernel/random/boot_id.
 *
 * Thread rules: one collector belongs to one thread. */
typedef struct orbit_leaf_procfs orbit_leaf_procfs_t;

/* New collector reading below root (copied; NULL means "/proc"). Reads
 * nothing yet. Returns NULL when out of memory. */
orbit_leaf_procfs_t *orbit_leaf_procfs_new(const char *root);

/* Free the collector; NULL-safe, clears *pp. */
void orbit_leaf_procfs_destroy(orbit_leaf_procfs_t **pp);

/* Take one sample and write it into s: incarnation, cpu_capacity_m,
 * cpu_used_m, mem_capacity, mem_used, load1/5/15, pressure_available and
 * pressure. Other fields of s (name, labels, GPUs, times) are not touched.
 *
 * CPU capacity is online CPUs x 1000 (the "cpuN" lines of stat); CPU usage is
 * busy/total jiffies between this sample and the previous one x capacity, so
 * the first sample reports 0 used. Memory: capacity MemTotal, used MemTotal -
 * MemAvailable, in bytes. Load and pressure avg10 in hundredths. Pressure
 * files that are absent or unreadable (old kernel, psi=0) give
 * pressure_available = false; that is not an error. The incarnation is
 * computed once per boot id (see orbit_leaf_procfs_incarnation), so a jitter
 * of btime between reads does not look like a reboot.
 *
 * On failure s is unchanged and a one-line reason is written to err (size
 * errlen; may be NULL/0).
 * Errors: ORBIT_EIO (stat, meminfo or loadavg missing, unreadable or
 * malformed). */
int orbit_leaf_procfs_sample(orbit_leaf_procfs_t *p, orbit_node_state_t *s, char *err,
                             size_t errlen);

/* The incarnation of a boot: (btime << 16) | FNV-1a-32 of boot_id folded to
 * 16 bits. A later boot (larger btime) always has a larger incarnation. */
uint64_t orbit_leaf_procfs_incarnation(uint64_t btime, const char *boot_id);

/* Parse a non-negative decimal "12.34" (at most two decimals are kept, the
 * rest truncated) into hundredths (1234) without floating point. *end, when
 * not NULL, receives the first unparsed character.
 * Errors: ORBIT_EINVAL (no digits, or the value does not fit 32 bits). */
int orbit_leaf_procfs_parse_centi(const char *text, const char **end, uint32_t *out);

#endif
