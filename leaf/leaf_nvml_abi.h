/* leaf_nvml_abi: the subset of NVML's C ABI that the leaf calls (no nvml.h needed). */
#ifndef ORBIT_LEAF_NVML_ABI_H
#define ORBIT_LEAF_NVML_ABI_H

/* Layouts and values follow NVIDIA's nvml.h (API version 11/12). Enums are
 * passed as int-sized values on every ABI NVML ships for. The prototypes are
 * declared so that a fake library (tests/fake_nvml.c) is type-checked against
 * them; the leaf itself resolves every symbol with dlsym and never links
 * them. */

typedef int nvmlReturn_t;
#define NVML_SUCCESS                0
#define NVML_ERROR_UNINITIALIZED    1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED    3
#define NVML_ERROR_NOT_FOUND        6
#define NVML_ERROR_TIMEOUT          10
#define NVML_ERROR_GPU_IS_LOST      15
#define NVML_ERROR_UNKNOWN          999

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

typedef struct {
    unsigned int gpu;    /* percent of time a kernel was running */
    unsigned int memory; /* percent of time device memory was read or written */
} nvmlUtilization_t;

typedef struct {
    unsigned long long total; /* bytes */
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData; /* the XID for XID events; 999 = unknown XID */
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

typedef int nvmlTemperatureSensors_t;
#define NVML_TEMPERATURE_GPU 0
typedef int nvmlMemoryErrorType_t;
#define NVML_MEMORY_ERROR_TYPE_CORRECTED   0
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
typedef int nvmlEccCounterType_t;
#define NVML_VOLATILE_ECC  0
#define NVML_AGGREGATE_ECC 1

#define nvmlEventTypeXidCriticalError   0x0000000000000008ULL
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned int *temp);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power_mw);
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t error_type,
                                         nvmlEccCounterType_t counter_type,
                                         unsigned long long *count);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long event_types,
                                      nvmlEventSet_t set);
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                 unsigned int timeout_ms);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);

#endif
