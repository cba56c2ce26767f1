/* leaf_log: a transitional alias; the leaf logs through orbit_log now. */
#ifndef ORBIT_LEAF_LOG_H
#define ORBIT_LEAF_LOG_H

/* Kept only until tools/orbit_sim_main.c stops including it (its one call
 * is redundant: orbit_cli_parse already set orbit_log_level, which the leaf
 * modules read). Delete this file then; nothing in leaf/ uses it. */
#include "orbit_log.h"

typedef orbit_log_level_t orbit_leaf_log_level_t;

static inline void orbit_leaf_log_set_level(orbit_leaf_log_level_t level)
{
    orbit_log_level = level;
}

#endif
