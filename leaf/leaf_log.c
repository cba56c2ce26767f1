/* leaf_log: process-wide log threshold for the leaf's modules. */
#include "leaf_log.h"

#include <stdatomic.h>
#include <string.h>

#include "orbit_err.h"

static atomic_int log_level = ORBIT_LEAF_LOG_INFO;

void orbit_leaf_log_set_level(orbit_leaf_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

bool orbit_leaf_log_enabled(orbit_leaf_log_level_t level)
{
    return (int)level <= atomic_load(&log_level);
}

int orbit_leaf_log_parse(const char *text, orbit_leaf_log_level_t *level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (!text)
        return ORBIT_EINVAL;
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *level = (orbit_leaf_log_level_t)i;
            return ORBIT_OK;
        }
    }
    return ORBIT_EINVAL;
}
