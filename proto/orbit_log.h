/* orbit_log: log levels over czmq's zsys logging, and a rate limiter so that
 * a flood of bad input produces a trickle of log lines (counters keep the
 * exact numbers). */
#ifndef ORBIT_LOG_H
#define ORBIT_LOG_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    ORBIT_LOG_ERROR = 0,
    ORBIT_LOG_WARN,
    ORBIT_LOG_INFO,
    ORBIT_LOG_DEBUG
} orbit_log_level_t;

extern orbit_log_level_t orbit_log_level;

/* Parse "error|warn|info|debug"; -1 if unknown. */
int orbit_log_level_parse(const char *s);

#define orbit_error(...) zsys_error(__VA_ARGS__)
#define orbit_warn(...)                                                                            \
    do {                                                                                           \
        if (orbit_log_level >= ORBIT_LOG_WARN)                                                     \
            zsys_warning(__VA_ARGS__);                                                             \
    } while (0)
#define orbit_info(...)                                                                            \
    do {                                                                                           \
        if (orbit_log_level >= ORBIT_LOG_INFO)                                                     \
            zsys_info(__VA_ARGS__);                                                                \
    } while (0)
#define orbit_debug(...)                                                                           \
    do {                                                                                           \
        if (orbit_log_level >= ORBIT_LOG_DEBUG)                                                    \
            zsys_debug(__VA_ARGS__);                                                               \
    } while (0)

/* At most `burst` lines per second; suppressed lines are counted and
 * reported with the next line that passes. */
typedef struct {
    int64_t window_ms;
    uint32_t in_window, burst;
    uint64_t suppressed;
} orbit_ratelimit_t;

/* True if a line may be logged now; *suppressed receives how many were
 * dropped since the last line that passed. */
bool orbit_ratelimit_pass(orbit_ratelimit_t *rl, int64_t now_ms, uint64_t *suppressed);

#endif
