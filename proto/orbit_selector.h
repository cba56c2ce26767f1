/* orbit_selector: node selectors — "only nodes carrying these labels" — as
 * a mission module states them (ModuleSpec.node_selector) and a scheduler
 * matches them against a node's labels (packed "k=v\n", orbit_node.h).
 *
 * Text form: "k=v[,k=v...]", keys strictly increasing (sorted, unique),
 * keys 1..ORBIT_LABEL_KEY_MAX and values 1..ORBIT_LABEL_VALUE_MAX bytes of
 * [A-Za-z0-9._/:-], at most ORBIT_SELECTOR_MAX bytes; "" selects every
 * node.
 *
 * Thread rules: none; pure functions. */
#ifndef ORBIT_SELECTOR_H
#define ORBIT_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#define ORBIT_SELECTOR_MAX 1024

/* True when sel is a valid selector ("" included); otherwise *reason (may
 * be NULL) gets a short static reason. NULL is not valid. */
bool orbit_selector_valid(const char *sel, const char **reason);

/* True when every k=v of sel is among the packed labels ("k=v\n"...). sel
 * must be valid; NULL or "" matches every node. */
bool orbit_selector_matches(const char *sel, const char *labels);

#endif
