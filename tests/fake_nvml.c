/* fake_nvml: a stand-in for libnvidia-ml.so driven by FAKE_NVML_* environment variables. */
/*
 * Read at every nvmlInit_v2 (so a test sets the environment, then creates
 * its collector):
 *   FAKE_NVML_INIT_FAIL=1          nvmlInit_v2 fails (driver not loaded)
 *   FAKE_NVML_GPUS=n               device count (default 2, at most 80)
 *   FAKE_NVML_TEMP=t | i:t,...     temperature in C (default 40 + i)
 *   FAKE_NVML_UTIL=p | i:p,...     utilisation % (default 10 x i)
 *   FAKE_NVML_POWER_MW=w | i:w,... power (default 100000 + i)
 *   FAKE_NVML_MEM_USED=b | i:b,... bytes used (default (i + 1) GiB of 80 GiB)
 *   FAKE_NVML_XID=i:xid,...        a critical-XID event per GPU, delivered once
 *   FAKE_NVML_ECC_CORRECTED=i:n,...   aggregate corrected ECC errors
 *   FAKE_NVML_ECC_UNCORRECTED=i:n,... aggregate uncorrected ECC errors
 *   FAKE_NVML_ECC_UNSUPPORTED=1    ECC queries answer NOT_SUPPORTED
 *   FAKE_NVML_LOST=i,...           every query on GPU i answers GPU_IS_LOST
 *   FAKE_NVML_HANDLE_FAIL=i,...    no handle for GPU i
 *   FAKE_NVML_NO_EVENTS=1          nvmlEventSetCreate answers NOT_SUPPORTED
 * A value without "i:" applies to every GPU.
 *
 * And one hook that is not NVML, for tests that find it with dlsym:
 *   fake_nvml_inject_xid(i, xid)   an XID event for GPU i, delivered by the
 *                                  next nvmlEventSetWait
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaf_nvml_abi.h"

#define FAKE_MAX 80
#define GIB      (1024ull * 1024 * 1024)

struct nvmlDevice_st {
    unsigned index;
    unsigned long long temp, util, power, mem_used, ecc_c, ecc_u, xid;
    bool lost, no_handle, xid_pending;
};

struct nvmlEventSet_st {
    int unused;
};

static struct nvmlDevice_st devs[FAKE_MAX];
static struct nvmlEventSet_st the_set;
static unsigned ngpus;
static int inits;
static bool ecc_unsupported, no_events;

/* Apply "v" (to all) or "i:v,i:v" to field at offset off of every device. */
static void env_values(const char *name, size_t off, bool flag_only)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return;
    char *copy = strdup(v);
    if (!copy)
        return;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        unsigned long long val = flag_only ? 1 : strtoull(colon ? colon + 1 : item, NULL, 10);
        unsigned lo = 0, hi = FAKE_MAX;
        if (colon || flag_only) {
            lo = (unsigned)strtoul(item, NULL, 10);
            hi = lo + 1;
        }
        for (unsigned i = lo; i < hi && i < FAKE_MAX; i++) {
            char *field = (char *)&devs[i] + off;
            if (flag_only)
                *(bool *)field = true;
            else
                *(unsigned long long *)field = val;
        }
    }
    free(copy);
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && !strcmp(v, "1");
}

static nvmlReturn_t check(nvmlDevice_t d)
{
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    if (!d || d < devs || d >= devs + ngpus)
        return NVML_ERROR_INVALID_ARGUMENT;
    return d->lost ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void)
{
    if (env_flag("FAKE_NVML_INIT_FAIL"))
        return 9; /* NVML_ERROR_DRIVER_NOT_LOADED */
    memset(devs, 0, sizeof devs);
    const char *n = getenv("FAKE_NVML_GPUS");
    ngpus = n ? (unsigned)strtoul(n, NULL, 10) : 2;
    if (ngpus > FAKE_MAX)
        ngpus = FAKE_MAX;
    for (unsigned i = 0; i < FAKE_MAX; i++) {
        devs[i].index = i;
        devs[i].temp = 40 + i;
        devs[i].util = (10 * i) % 101;
        devs[i].power = 100000 + i;
        devs[i].mem_used = (i + 1) * GIB;
    }
    env_values("FAKE_NVML_TEMP", offsetof(struct nvmlDevice_st, temp), false);
    env_values("FAKE_NVML_UTIL", offsetof(struct nvmlDevice_st, util), false);
    env_values("FAKE_NVML_POWER_MW", offsetof(struct nvmlDevice_st, power), false);
    env_values("FAKE_NVML_MEM_USED", offsetof(struct nvmlDevice_st, mem_used), false);
    env_values("FAKE_NVML_XID", offsetof(struct nvmlDevice_st, xid), false);
    env_values("FAKE_NVML_ECC_CORRECTED", offsetof(struct nvmlDevice_st, ecc_c), false);
    env_values("FAKE_NVML_ECC_UNCORRECTED", offsetof(struct nvmlDevice_st, ecc_u), false);
    env_values("FAKE_NVML_LOST", offsetof(struct nvmlDevice_st, lost), true);
    env_values("FAKE_NVML_HANDLE_FAIL", offsetof(struct nvmlDevice_st, no_handle), true);
    ecc_unsupported = env_flag("FAKE_NVML_ECC_UNSUPPORTED");
    no_events = env_flag("FAKE_NVML_NO_EVENTS");
    inits++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    inits--;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    *count = ngpus;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= ngpus || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (devs[index].no_handle)
        return NVML_ERROR_UNKNOWN;
    *device = &devs[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    snprintf(uuid, length, "GPU-00000000-0000-0000-0000-0000000000%02u", device->index);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned int *temp)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    if (sensor != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    *temp = (unsigned)device->temp;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    util->gpu = (unsigned)device->util;
    util->memory = (unsigned)device->util / 2;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    memory->total = 80 * GIB;
    memory->used = device->mem_used;
    memory->free = memory->total > memory->used ? memory->total - memory->used : 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power_mw)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    *power_mw = (unsigned)device->power;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t error_type,
                                         nvmlEccCounterType_t counter_type,
                                         unsigned long long *count)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    if (ecc_unsupported)
        return NVML_ERROR_NOT_SUPPORTED;
    if (counter_type != NVML_AGGREGATE_ECC && counter_type != NVML_VOLATILE_ECC)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (error_type == NVML_MEMORY_ERROR_TYPE_CORRECTED)
        *count = device->ecc_c;
    else if (error_type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED)
        *count = device->ecc_u;
    else
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    if (no_events)
        return NVML_ERROR_NOT_SUPPORTED;
    *set = &the_set;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long event_types,
                                      nvmlEventSet_t set)
{
    nvmlReturn_t rc = check(device);
    if (rc != NVML_SUCCESS)
        return rc;
    if (set != &the_set)
        return NVML_ERROR_INVALID_ARGUMENT;
    if ((event_types & nvmlEventTypeXidCriticalError) && device->xid)
        device->xid_pending = true;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    (void)timeout_ms;
    if (!inits)
        return NVML_ERROR_UNINITIALIZED;
    if (set != &the_set)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < ngpus; i++) {
        if (devs[i].xid_pending) {
            devs[i].xid_pending = false;
            memset(data, 0, sizeof *data);
            data->device = &devs[i];
            data->eventType = nvmlEventTypeXidCriticalError;
            data->eventData = devs[i].xid;
            data->gpuInstanceId = 0xFFFFFFFFu;
            data->computeInstanceId = 0xFFFFFFFFu;
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_TIMEOUT;
}

int fake_nvml_inject_xid(unsigned index, unsigned long long xid);

int fake_nvml_inject_xid(unsigned index, unsigned long long xid)
{
    if (!inits || index >= ngpus)
        return -1;
    devs[index].xid = xid;
    devs[index].xid_pending = true;
    return 0;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    return set == &the_set ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
