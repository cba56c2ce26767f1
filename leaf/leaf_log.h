/* leaf_log: the leaf's log threshold in front of czmq's zsys logging. */
#ifndef ORBIT_LEAF_LOG_H
#define ORBIT_LEAF_LOG_H

#include <czmq.h>
#include <stdbool.h>

typedef enum {
    ORBIT_LEAF_LOG_ERROR = 0,
    ORBIT_LEAF_LOG_WARN = 1,
    ORBIT_LEAF_LOG_INFO = 2,
    ORBIT_LEAF_LOG_DEBUG = 3,
} orbit_leaf_log_level_t;

/* Set the process-wide threshold (default: info). Meant to be called once at
 * start-up; reading it from any thread afterwards is safe (atomic). */
void orbit_leaf_log_set_level(orbit_leaf_log_level_t level);

/* True when messages of this level are printed. */
bool orbit_leaf_log_enabled(orbit_leaf_log_level_t level);

/* Parse "error", "warn", "info" or "debug" into *level.
 * Errors: ORBIT_EINVAL (anything else; *level unchanged). */
int orbit_leaf_log_parse(const char *text, orbit_leaf_log_level_t *level);

#define LEAF_LOG_AT(level, fn, ...)                                                                \
    do {                                                                                           \
        if (orbit_leaf_log_enabled(level))                                                         \
            fn(__VA_ARGS__);                                                                       \
    } while (0)
#define LEAF_ERROR(...) LEAF_LOG_AT(ORBIT_LEAF_LOG_ERROR, zsys_error, __VA_ARGS__)
#define LEAF_WARN(...)  LEAF_LOG_AT(ORBIT_LEAF_LOG_WARN, zsys_warning, __VA_ARGS__)
#define LEAF_INFO(...)  LEAF_LOG_AT(ORBIT_LEAF_LOG_INFO, zsys_info, __VA_ARGS__)
#define LEAF_DEBUG(...) LEAF_LOG_AT(ORBIT_LEAF_LOG_DEBUG, zsys_debug, __VA_ARGS__)

#endif
