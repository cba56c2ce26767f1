/* orbitctl_mission: `orbitctl mission submit|status|scale|stop` and
 * `orbitctl quota grant|show`, and the contract of a mission in the ledger.
 *
 * ---------------------------------------------------------------- file
 * A mission file is one JSON object, read strictly (unknown fields anywhere,
 * duplicate keys, wrong types and out-of-range numbers are refused before
 * anything is proposed):
 *   {"mission": NAME, "principal": NAME,
 *    "modules": [{"name": NAME, "command": ["argv0", "arg", ...],
 *                 "count": N, "resources": {"cpu_m": M, "mem": B, "gpus": G},
 *                 "priority": P, "gang": BOOL,
 *                 "node_selector": {"label": "value", ...}}, ...]}
 * NAME follows the ledger's plain-name rule ([A-Za-z0-9._-], 1..63 bytes).
 * count is 1..ORBIT_LEDGER_COUNT_MAX; resources within the ledger's bounds
 * (an absent resource is 0); priority an int32 (default 0); gang defaults to
 * false. Module names are unique within the mission. node_selector (absent:
 * any node) admits only nodes carrying every label given; it is stored as
 * ModuleSpec.node_selector, "k=v,..." sorted by key (orbit_selector.h).
 *
 * ---------------------------------------------------------------- command
 * "command" is an argv array (at least one string, the first not empty, no
 * NUL bytes), run directly (execvp), never through a shell. In the ledger,
 * ModuleSpec.command holds that array as compact JSON text, ASCII-only
 * (non-ASCII as \uXXXX escapes), e.g. ["sleep","600"]: a reader (the leaf,
 * a scheduler) parses ModuleSpec.command as a JSON array of strings and
 * executes element 0 with the whole array as argv. At most
 * ORBIT_LEDGER_COMMAND_MAX bytes once encoded.
 *
 * ---------------------------------------------------------------- capsules
 * Module M of mission X with count N has the capsules "X/M/0" .. "X/M/N-1"
 * (capsule id = mission/module/index); their placements are
 * placement/<capsule> in the ledger. Submit and scale refuse a count whose
 * last capsule id would exceed the id length limit (63 bytes).
 *
 * ---------------------------------------------------------------- commands
 * submit FILE [--no-view-check]: validate the file; check that the
 *   principal has a quota grant (get principal/<p>) and that every module
 *   fits on at least one node of the root view (largest CPU, memory and GPU
 *   capacity of any node its selector admits, whatever its status; an
 *   empty view fits nothing, a selector no node matches is refused),
 *   unless --no-view-check; then one ModuleAdjustment per module (every field
 *   set), in file order.
 * status MISSION [--module NAME ...]: each module's desired state (get
 *   module/<m>/<x>) and the placement of each of its capsules (node or
 *   pending). Without --module the modules are found by a ledger watch from
 *   index 1 with prefix "module/<m>/" (a module revoked since is reported as
 *   stopped); if that history was compacted, name them with --module.
 * scale MISSION MODULE COUNT: a ModuleAdjustment setting count (0 allowed)
 *   only, so the other stored fields stay; fenced with unchanged_since on
 *   module/<m>/<x> at the index read, so a concurrent change is a conflict.
 * stop MISSION [--module NAME ...]: a Revocation of each named module, or of
 *   every module still in the ledger (found as for status).
 * quota grant PRINCIPAL --cpu-m N --mem BYTES --gpus N [--priority P]
 *   [--until-ms T]: a QuotaGrant (until_ms: ledger time in ms since the
 *   epoch, 0 = no end). quota show PRINCIPAL: grant, usage, priority.
 *
 * Exit status: 0 done, 1 refused (bad file, failed check, proposal not
 * committed, remote failure), 2 usage. Errors are one line in err. */
#ifndef ORBITCTL_MISSION_H
#define ORBITCTL_MISSION_H

#include <czmq.h>
#include <stddef.h>

/* `orbitctl mission ...` (pos[0] == "mission"). */
int orbitctl_mission(zhashx_t *v, char **pos, int npos, char *err, size_t errlen);

/* `orbitctl quota ...` (pos[0] == "quota"). */
int orbitctl_quota(zhashx_t *v, char **pos, int npos, char *err, size_t errlen);

#endif
