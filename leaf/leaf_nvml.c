/* leaf_nvml: GPU collector over a dlopen'ed NVML. */
#include "leaf_nvml.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaf_nvml_abi.h"
#include "orbit_err.h"
#include "orbit_log.h"

/* Events drained per sample: enough for a burst, bounded so that a flapping
 * GPU cannot stall the leaf's loop. */
#define XID_EVENTS_PER_SAMPLE 64

typedef struct {
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    nvmlReturn_t (*count)(unsigned int *);
    nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*temperature)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int *);
    nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*power)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*ecc)(nvmlDevice_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t,
                        unsigned long long *);
    nvmlReturn_t (*event_set_create)(nvmlEventSet_t *);
    nvmlReturn_t (*register_events)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
    nvmlReturn_t (*event_wait)(nvmlEventSet_t, nvmlEventData_t *, unsigned int);
    nvmlReturn_t (*event_set_free)(nvmlEventSet_t);
} api_t;

/* The latest XID of one kind and when it was drained. */
typedef struct {
    uint32_t xid; /* 0: none in its window */
    int64_t seen_ms;
} xid_mark_t;

enum { XID_MINOR, XID_CRITICAL, XID_KINDS };

typedef struct {
    nvmlDevice_t handle; /* NULL: could not be had */
    xid_mark_t xids[XID_KINDS];
    char uuid[ORBIT_UUID_MAX];
} gpu_slot_t;

struct orbit_leaf_nvml {
    char *path;
    void *lib;
    bool ready;
    bool logged; /* the "no NVML" line was printed */
    uint32_t samples_since_try;
    int64_t xid_window_ms[XID_KINDS];
    api_t api;
    nvmlEventSet_t events;
    uint32_t ngpus;
    gpu_slot_t *slots;
    orbit_gpu_t *scratch;
};

/* dlsym into a function pointer without an object-to-function cast. */
static bool resolve(void *lib, const char *name, const char *fallback, void *fn, size_t size)
{
    void *p = dlsym(lib, name);
    if (!p && fallback)
        p = dlsym(lib, fallback);
    memcpy(fn, &p, size);
    return p != NULL;
}
#define RESOLVE(n, field, name, fallback)                                                          \
    resolve((n)->lib, name, fallback, &(n)->api.field, sizeof((n)->api.field))

static void unload(orbit_leaf_nvml_t *n)
{
    if (n->events && n->api.event_set_free)
        n->api.event_set_free(n->events);
    n->events = NULL;
    if (n->ready && n->api.shutdown)
        n->api.shutdown();
    n->ready = false;
    if (n->lib)
        dlclose(n->lib);
    n->lib = NULL;
    free(n->slots);
    free(n->scratch);
    n->slots = NULL;
    n->scratch = NULL;
    n->ngpus = 0;
    memset(&n->api, 0, sizeof n->api);
}

/* Log the first failure at info (a CPU-only node is normal), later ones at
 * debug. */
static void unavailable(orbit_leaf_nvml_t *n, const char *what, const char *detail)
{
    if (!n->logged)
        orbit_info("nvml: %s (%s): reporting no GPUs", what, detail ? detail : "?");
    else
        orbit_debug("nvml: %s (%s)", what, detail ? detail : "?");
    n->logged = true;
    unload(n);
}

static void load(orbit_leaf_nvml_t *n)
{
    char code[32];
    n->samples_since_try = 0;
    n->lib = dlopen(n->path, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        unavailable(n, "library not loadable", dlerror());
        return;
    }
    bool ok = RESOLVE(n, init, "nvmlInit_v2", "nvmlInit") &&
              RESOLVE(n, shutdown, "nvmlShutdown", NULL) &&
              RESOLVE(n, count, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount") &&
              RESOLVE(n, handle, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    if (!ok) {
        unavailable(n, "library lacks nvmlInit/nvmlDeviceGetCount", n->path);
        return;
    }
    /* Optional: a missing query leaves its field 0. */
    RESOLVE(n, uuid, "nvmlDeviceGetUUID", NULL);
    RESOLVE(n, temperature, "nvmlDeviceGetTemperature", NULL);
    RESOLVE(n, utilization, "nvmlDeviceGetUtilizationRates", NULL);
    RESOLVE(n, memory, "nvmlDeviceGetMemoryInfo", NULL);
    RESOLVE(n, power, "nvmlDeviceGetPowerUsage", NULL);
    RESOLVE(n, ecc, "nvmlDeviceGetTotalEccErrors", NULL);
    RESOLVE(n, event_set_create, "nvmlEventSetCreate", NULL);
    RESOLVE(n, register_events, "nvmlDeviceRegisterEvents", NULL);
    RESOLVE(n, event_wait, "nvmlEventSetWait_v2", "nvmlEventSetWait");
    RESOLVE(n, event_set_free, "nvmlEventSetFree", NULL);

    nvmlReturn_t rc = n->api.init();
    if (rc != NVML_SUCCESS) {
        snprintf(code, sizeof code, "nvmlInit returned %d", rc);
        unavailable(n, "initialisation failed", code);
        return;
    }
    n->ready = true;
    unsigned int count = 0;
    rc = n->api.count(&count);
    if (rc != NVML_SUCCESS) {
        snprintf(code, sizeof code, "nvmlDeviceGetCount returned %d", rc);
        unavailable(n, "cannot count devices", code);
        return;
    }
    if (count > ORBIT_GPUS_MAX) {
        orbit_warn("nvml: %u devices, reporting the first %d", count, ORBIT_GPUS_MAX);
        count = ORBIT_GPUS_MAX;
    }
    if (count) {
        n->slots = calloc(count, sizeof *n->slots);
        n->scratch = calloc(count, sizeof *n->scratch);
        if (!n->slots || !n->scratch) {
            unavailable(n, "out of memory", NULL);
            return;
        }
    }
    n->ngpus = count;
    if (n->api.event_set_create && n->api.register_events && n->api.event_wait &&
        n->api.event_set_create(&n->events) != NVML_SUCCESS)
        n->events = NULL;
    for (uint32_t i = 0; i < count; i++) {
        gpu_slot_t *g = &n->slots[i];
        if (n->api.handle(i, &g->handle) != NVML_SUCCESS) {
            g->handle = NULL;
            continue;
        }
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "";
        if (n->api.uuid && n->api.uuid(g->handle, uuid, sizeof uuid) == NVML_SUCCESS) {
            /* Longer UUIDs are cut to the wire's limit on purpose. */
            size_t len = strnlen(uuid, sizeof g->uuid - 1);
            memcpy(g->uuid, uuid, len);
            g->uuid[len] = '\0';
        }
        /* XID events are unsupported on some boards; the GPU is still
         * reported. */
        if (n->events)
            n->api.register_events(g->handle, nvmlEventTypeXidCriticalError, n->events);
    }
    orbit_info("nvml: %u GPU(s) via %s", count, n->path);
}

orbit_leaf_nvml_t *orbit_leaf_nvml_new(const char *lib_path, uint32_t xid_window_s,
                                       uint32_t xid_critical_window_s)
{
    orbit_leaf_nvml_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->xid_window_ms[XID_MINOR] =
        1000 * (int64_t)(xid_window_s ? xid_window_s : ORBIT_LEAF_XID_WINDOW_S);
    n->xid_window_ms[XID_CRITICAL] =
        1000 *
        (int64_t)(xid_critical_window_s ? xid_critical_window_s : ORBIT_LEAF_XID_CRITICAL_WINDOW_S);
    n->path = strdup(lib_path ? lib_path : ORBIT_LEAF_NVML_DEFAULT_LIB);
    if (!n->path) {
        free(n);
        return NULL;
    }
    load(n);
    return n;
}

void orbit_leaf_nvml_destroy(orbit_leaf_nvml_t **pn)
{
    if (!pn || !*pn)
        return;
    unload(*pn);
    free((*pn)->path);
    free(*pn);
    *pn = NULL;
}

bool orbit_leaf_nvml_available(const orbit_leaf_nvml_t *n)
{
    return n && n->ready;
}

uint32_t orbit_leaf_nvml_count(const orbit_leaf_nvml_t *n)
{
    return n && n->ready ? n->ngpus : 0;
}

/* Critical means what orbit_gpu_health_derive fails a GPU for, so that the
 * list lives in one place. */
static int xid_kind(uint32_t xid)
{
    orbit_gpu_t g;
    memset(&g, 0, sizeof g);
    g.last_xid = xid;
    return orbit_gpu_health_derive(&g) == ORBIT_GPU_FAILED ? XID_CRITICAL : XID_MINOR;
}

static void drain_xids(orbit_leaf_nvml_t *n, int64_t now_ms)
{
    if (!n->events)
        return;
    for (int k = 0; k < XID_EVENTS_PER_SAMPLE; k++) {
        nvmlEventData_t ev;
        memset(&ev, 0, sizeof ev);
        if (n->api.event_wait(n->events, &ev, 0) != NVML_SUCCESS)
            break; /* NVML_ERROR_TIMEOUT: nothing pending */
        if (!(ev.eventType & nvmlEventTypeXidCriticalError) || !ev.eventData)
            continue;
        for (uint32_t i = 0; i < n->ngpus; i++) {
            if (n->slots[i].handle && n->slots[i].handle == ev.device) {
                uint32_t xid = ev.eventData > UINT32_MAX ? 999 : (uint32_t)ev.eventData;
                xid_mark_t *m = &n->slots[i].xids[xid_kind(xid)];
                if (xid != m->xid)
                    orbit_warn("nvml: GPU %u reported XID %u", i, xid);
                m->xid = xid;
                m->seen_ms = now_ms;
                break;
            }
        }
    }
}

/* The XID to report for a slot at now_ms: the critical one in its window,
 * else the non-critical one in its window, else 0. */
static uint32_t current_xid(orbit_leaf_nvml_t *n, uint32_t i, int64_t now_ms)
{
    gpu_slot_t *slot = &n->slots[i];
    for (int kind = 0; kind < XID_KINDS; kind++) {
        xid_mark_t *m = &slot->xids[kind];
        if (m->xid && now_ms - m->seen_ms >= n->xid_window_ms[kind]) {
            orbit_info("nvml: GPU %u: XID %u is over %" PRId64 " s old; no longer reported", i,
                       m->xid, n->xid_window_ms[kind] / 1000);
            m->xid = 0;
        }
    }
    return slot->xids[XID_CRITICAL].xid ? slot->xids[XID_CRITICAL].xid : slot->xids[XID_MINOR].xid;
}

static void sample_one(orbit_leaf_nvml_t *n, uint32_t i, orbit_gpu_t *g, int64_t now_ms)
{
    gpu_slot_t *slot = &n->slots[i];
    memset(g, 0, sizeof *g);
    g->index = i;
    uint32_t xid = current_xid(n, i, now_ms);
    if (!slot->handle && n->api.handle(i, &slot->handle) != NVML_SUCCESS)
        slot->handle = NULL;
    if (!slot->handle) {
        g->health = ORBIT_GPU_FAILED;
        return;
    }
    bool lost = false;
    nvmlReturn_t rc;
    memcpy(g->uuid, slot->uuid, sizeof g->uuid);
    if (n->api.temperature) {
        unsigned int t = 0;
        rc = n->api.temperature(slot->handle, NVML_TEMPERATURE_GPU, &t);
        if (rc == NVML_SUCCESS)
            g->temp_c = t > 200 ? 200 : (int32_t)t;
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
    }
    if (n->api.utilization) {
        nvmlUtilization_t u = {0, 0};
        rc = n->api.utilization(slot->handle, &u);
        if (rc == NVML_SUCCESS)
            g->util_pct = u.gpu > 100 ? 100 : u.gpu;
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
    }
    if (n->api.memory) {
        nvmlMemory_t m = {0, 0, 0};
        rc = n->api.memory(slot->handle, &m);
        if (rc == NVML_SUCCESS) {
            uint64_t total = m.total, used = m.used;
            if (total > (uint64_t)ORBIT_GPU_MEM_MAX)
                total = (uint64_t)ORBIT_GPU_MEM_MAX;
            g->mem_total = total;
            g->mem_used = used > total ? total : used;
        }
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
    }
    if (n->api.power) {
        unsigned int mw = 0;
        rc = n->api.power(slot->handle, &mw);
        if (rc == NVML_SUCCESS)
            g->power_mw = mw > 10u * 1000 * 1000 ? 10u * 1000 * 1000 : mw;
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
    }
    if (n->api.ecc) {
        unsigned long long c = 0;
        /* Consumer boards answer NOT_SUPPORTED: no ECC means 0 errors. */
        rc = n->api.ecc(slot->handle, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, &c);
        if (rc == NVML_SUCCESS)
            g->ecc_corrected = c;
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
        c = 0;
        rc = n->api.ecc(slot->handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC, &c);
        if (rc == NVML_SUCCESS)
            g->ecc_uncorrected = c;
        lost |= rc == NVML_ERROR_GPU_IS_LOST;
    }
    g->last_xid = xid;
    g->health = lost ? ORBIT_GPU_FAILED : orbit_gpu_health_derive(g);
}

int orbit_leaf_nvml_sample(orbit_leaf_nvml_t *n, orbit_node_state_t *s, int64_t now_ms)
{
    if (!n->ready && ++n->samples_since_try >= ORBIT_LEAF_NVML_RETRY)
        load(n);
    if (!n->ready || !n->ngpus) {
        int rc = orbit_node_state_set_gpus(s, NULL, 0);
        if (rc == ORBIT_OK)
            s->gpu_capacity = 0;
        return rc;
    }
    drain_xids(n, now_ms);
    for (uint32_t i = 0; i < n->ngpus; i++)
        sample_one(n, i, &n->scratch[i], now_ms);
    int rc = orbit_node_state_set_gpus(s, n->scratch, n->ngpus);
    if (rc == ORBIT_OK)
        s->gpu_capacity = n->ngpus;
    return rc;
}
