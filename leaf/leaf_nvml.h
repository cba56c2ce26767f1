/* leaf_nvml: this node's GPUs through NVML, loaded at run time with dlopen. */
#ifndef ORBIT_LEAF_NVML_H
#define ORBIT_LEAF_NVML_H

#include <stdbool.h>
#include <stdint.h>

#include "orbit_node.h"

#define ORBIT_LEAF_NVML_DEFAULT_LIB "libnvidia-ml.so.1"

/* A GPU collector. When the library cannot be loaded or nvmlInit fails the
 * collector reports zero GPUs (logged once at info) and retries the load
 * every ORBIT_LEAF_NVML_RETRY samples, so a driver that comes up after the
 * leaf is picked up without a restart.
 *
 * Per GPU: index, UUID, temperature, utilisation, memory used/total, power,
 * aggregate ECC counts (corrected, uncorrected), the last XID seen through
 * NVML events (see below), and health from orbit_gpu_health_derive. A query
 * that fails for one GPU leaves that field 0 and does not affect the others;
 * a GPU that answers "GPU is lost" (or whose handle cannot be had) is
 * reported failed. Values are clamped to the bounds orbit_node_delta_validate
 * accepts.
 *
 * XIDs age out. An XID is reported as last_xid only for a window after the
 * sample that drained its event, then last_xid goes back to 0 (and health
 * is derived without it):
 * - a non-critical XID (orbit_gpu_health_derive: degraded) for
 *   xid_window_s, default ORBIT_LEAF_XID_WINDOW_S (10 minutes);
 * - a critical XID (orbit_gpu_health_derive: failed, e.g. 48, 79) for
 *   xid_critical_window_s, default ORBIT_LEAF_XID_CRITICAL_WINDOW_S (1 hour).
 * A new XID of the same kind replaces the older one and starts its window
 * again. A critical XID in its window is reported over any non-critical
 * one, so a minor XID cannot hide a failure; once it ages out, a
 * non-critical XID still in its own window is reported. An XID is counted
 * from the sample that drains it ("now" as given to
 * orbit_leaf_nvml_sample), and a window includes its start, not its end.
 * Reloading NVML (after a failed load) forgets every XID.
 *
 * Thread rules: NVML is process-global; use one collector per process, from
 * one thread. */
typedef struct orbit_leaf_nvml orbit_leaf_nvml_t;

#define ORBIT_LEAF_NVML_RETRY            60
#define ORBIT_LEAF_XID_WINDOW_S          600u  /* non-critical XID: 10 minutes */
#define ORBIT_LEAF_XID_CRITICAL_WINDOW_S 3600u /* critical XID: 1 hour */

/* New collector loading lib_path (copied; NULL means
 * ORBIT_LEAF_NVML_DEFAULT_LIB) now, with the XID windows in seconds (0 means
 * the default). Returns NULL only when out of memory. */
orbit_leaf_nvml_t *orbit_leaf_nvml_new(const char *lib_path, uint32_t xid_window_s,
                                       uint32_t xid_critical_window_s);

/* Shut NVML down, unload it, free the collector; NULL-safe, clears *pn. */
void orbit_leaf_nvml_destroy(orbit_leaf_nvml_t **pn);

/* True when NVML is loaded and initialised. */
bool orbit_leaf_nvml_available(const orbit_leaf_nvml_t *n);

/* GPUs NVML reported at initialisation (0 when unavailable). */
uint32_t orbit_leaf_nvml_count(const orbit_leaf_nvml_t *n);

/* Sample every GPU into s: gpu_capacity = device count and the GPU list
 * (replaced). Drains pending XID events first; now_ms is the caller's
 * monotonic clock (zclock_mono), which times the XID windows.
 * Errors: ORBIT_ENOMEM (s unchanged). */
int orbit_leaf_nvml_sample(orbit_leaf_nvml_t *n, orbit_node_state_t *s, int64_t now_ms);

#endif
