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
 * aggregate ECC counts (corrected, uncorrected), the last critical XID seen
 * through NVML events (sticky for the life of the collector), and health
 * from orbit_gpu_health_derive. A query that fails for one GPU leaves that
 * field 0 and does not affect the others; a GPU that answers "GPU is lost"
 * (or whose handle cannot be had) is reported failed. Values are clamped to
 * the bounds orbit_node_delta_validate accepts.
 *
 * Thread rules: NVML is process-global; use one collector per process, from
 * one thread. */
typedef struct orbit_leaf_nvml orbit_leaf_nvml_t;

#define ORBIT_LEAF_NVML_RETRY 60

/* New collector loading lib_path (copied; NULL means
 * ORBIT_LEAF_NVML_DEFAULT_LIB) now. Returns NULL only when out of memory. */
orbit_leaf_nvml_t *orbit_leaf_nvml_new(const char *lib_path);

/* Shut NVML down, unload it, free the collector; NULL-safe, clears *pn. */
void orbit_leaf_nvml_destroy(orbit_leaf_nvml_t **pn);

/* True when NVML is loaded and initialised. */
bool orbit_leaf_nvml_available(const orbit_leaf_nvml_t *n);

/* GPUs NVML reported at initialisation (0 when unavailable). */
uint32_t orbit_leaf_nvml_count(const orbit_leaf_nvml_t *n);

/* Sample every GPU into s: gpu_capacity = device count and the GPU list
 * (replaced). Drains pending XID events first.
 * Errors: ORBIT_ENOMEM (s unchanged). */
int orbit_leaf_nvml_sample(orbit_leaf_nvml_t *n, orbit_node_state_t *s);

#endif
