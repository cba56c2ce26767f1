/* orbit_log: log level and rate limiting. */
#include "orbit_log.h"

#include <string.h>

orbit_log_level_t orbit_log_level = ORBIT_LOG_INFO;

int orbit_log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

bool orbit_ratelimit_pass(orbit_ratelimit_t *rl, int64_t now, uint64_t *suppressed)
{
    if (!rl->burst)
        rl->burst = 5;
    if (now - rl->window_ms >= 1000) {
        rl->window_ms = now;
        rl->in_window = 0;
    }
    if (rl->in_window >= rl->burst) {
        rl->suppressed++;
        return false;
    }
    rl->in_window++;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
