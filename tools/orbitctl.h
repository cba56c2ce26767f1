/* orbitctl.h: what orbitctl's command files share. */
#ifndef ORBITCTL_H
#define ORBITCTL_H

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>

#include "ledger.pb-c.h"

/* The local constellation's root replicas (what the README's command starts). */
#define DEFAULT_ROOTS "tcp://127.0.0.1:7400,tcp://127.0.0.1:7401,tcp://127.0.0.1:7402"

extern bool json_out;

/* Print j compactly on one line and release it. */
void dump(json_t *j);

/* A ledger outcome as one human line ("committed at ledger index N",
 * "conflict: WHICH (observed ...)", "invalid: REASON"); true if committed. */
bool orbitctl_outcome_line(const Orbit__Ledger__Outcome *o, char *line, size_t len);

/* `orbitctl ledger ...`: returns the exit status (0, 1 remote failure, 2
 * usage) with a one-line reason in err when not 0. */
int orbitctl_ledger(zhashx_t *v, char **pos, int npos, char *err, size_t errlen);

/* `orbitctl topology show|plan|add-shard|remove-shard|move-rack`: returns
 * 0 (done), 1 (refused, conflicting change, remote failure or --wait timed
 * out), 2 (usage) or 3 (remove-shard without --wait: racks moved, the shard
 * still owns nodes and has not left yet), with a one-line reason in err
 * when not 0. */
int orbitctl_topology(zhashx_t *v, char **pos, int npos, char *err, size_t errlen);

#endif
