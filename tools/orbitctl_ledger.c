/* orbitctl_ledger: `orbitctl ledger status|propose|get|watch|members`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "orbit_cli.h"
#include "orbit_err.h"
#include "ledger.h"
#include "orbit_json.h"
#include "orbit_ledger_client.h"
#include "orbitctl.h"

static const char *role_name(uint32_t r)
{
    static const char *names[] = {"standby", "voter", "spare"};
    return r < 3 ? names[r] : "unknown";
}

static int role_parse(const char *s)
{
    for (uint32_t i = 0; i < 3; i++)
        if (!strcmp(s, role_name(i)))
            return (int)i;
    return -1;
}

/* ----------------------------------------------------------------- status */

/* Ask every replica for its own view; the leader's answer gives the term and
 * commit index, each replica's gives its applied and commit indexes. */
static int cmd_status(orbit_ledger_client_t *c, int timeout, char *err, size_t errlen)
{
    int n = orbit_ledger_client_replicas(c);
    json_t *replicas = json_array();
    const Orbit__Ledger__Status *leader = NULL;
    Orbit__Ledger__Reply *replies[8] = {NULL};
    int answered = 0;
    for (int i = 0; i < n && i < 8; i++) {
        Orbit__Ledger__StatusRequest sr = ORBIT__LEDGER__STATUS_REQUEST__INIT;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_STATUS;
        req.status = &sr;
        if (orbit_ledger_client_call_one(c, i, &req, timeout, &replies[i]) != ORBIT_OK ||
            !replies[i]->status) {
            json_array_append_new(replicas,
                                  json_pack("{s:s,s:b}", "endpoint",
                                            orbit_ledger_client_endpoint(c, i), "reachable", 0));
            continue;
        }
        answered++;
        const Orbit__Ledger__Status *s = replies[i]->status;
        if (s->has_leader_id && s->leader_id == s->id)
            leader = s;
        json_array_append_new(
            replicas,
            json_pack("{s:s,s:b,s:i,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?}", "endpoint",
                      orbit_ledger_client_endpoint(c, i), "reachable", 1, "id", (int)s->id,
                      "leader", s->has_leader_id && s->leader_id == s->id, "term",
                      (json_int_t)s->term, "commit_index", (json_int_t)s->commit_index,
                      "applied_index", (json_int_t)s->applied_index, "ledger_index",
                      (json_int_t)s->ledger_index, "raft_snapshot_index",
                      (json_int_t)s->raft_snapshot_index, "apply_held", (json_int_t)s->apply_held,
                      "apply_batches", (json_int_t)s->apply_batches, "apply_failures",
                      (json_int_t)s->apply_failures, "state_hash", s->state_hash));
    }
    int status = 0;
    if (!answered) {
        snprintf(err, errlen, "no root replica answered");
        status = 1;
    } else if (json_out) {
        json_t *members = json_array();
        if (leader)
            for (size_t k = 0; k < leader->n_replicas; k++)
                json_array_append_new(members,
                                      json_pack("{s:i,s:s,s:s}", "id", (int)leader->replicas[k]->id,
                                                "address", leader->replicas[k]->address, "role",
                                                role_name(leader->replicas[k]->role)));
        dump(json_pack("{s:o,s:I,s:I,s:I,s:o,s:o}", "leader",
                       leader ? json_integer(leader->id) : json_null(), "term",
                       (json_int_t)(leader ? leader->term : 0), "commit_index",
                       (json_int_t)(leader ? leader->commit_index : 0), "ledger_index",
                       (json_int_t)(leader ? leader->ledger_index : 0), "replicas", replicas,
                       "members", members));
        replicas = NULL;
    } else {
        if (leader)
            printf("leader %u (%s), term %" PRIu64 ", commit index %" PRIu64
                   ", ledger index %" PRIu64 "\n",
                   leader->id, leader->leader_address ? leader->leader_address : "?", leader->term,
                   leader->commit_index, leader->ledger_index);
        else
            printf("no leader right now\n");
        printf("%-26s %4s %-8s %8s %14s %14s %14s\n", "ENDPOINT", "ID", "ROLE", "TERM", "COMMIT",
               "APPLIED", "SNAPSHOT");
        for (int i = 0; i < n && i < 8; i++) {
            const Orbit__Ledger__Status *s = replies[i] ? replies[i]->status : NULL;
            if (!s) {
                printf("%-26s    - unreachable\n", orbit_ledger_client_endpoint(c, i));
                continue;
            }
            printf("%-26s %4u %-8s %8" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n",
                   orbit_ledger_client_endpoint(c, i), s->id,
                   s->has_leader_id && s->leader_id == s->id ? "leader" : "follower", s->term,
                   s->commit_index, s->applied_index, s->raft_snapshot_index);
        }
    }
    json_decref(replicas);
    for (int i = 0; i < 8; i++)
        if (replies[i])
            orbit__ledger__reply__free_unpacked(replies[i], NULL);
    return status;
}

/* Send req and return the reply, or NULL with the transport failure or the
 * replica's error in err (the reply is then already freed). */
static Orbit__Ledger__Reply *ask(orbit_ledger_client_t *c, Orbit__Ledger__Request *req, int timeout,
                                 char *err, size_t errlen)
{
    Orbit__Ledger__Reply *r = NULL;
    int rc = orbit_ledger_client_call(c, req, timeout, &r);
    if (rc != ORBIT_OK) {
        snprintf(err, errlen, "no replica answered: %s", orbit_strerror(rc));
        return NULL;
    }
    if (r->error) {
        snprintf(err, errlen, "%s", r->error);
        orbit__ledger__reply__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

/* ---------------------------------------------------------------- propose */

static void print_outcome(const Orbit__Ledger__Outcome *o)
{
    if (json_out) {
        dump(orbit_json_from_pb(&o->base));
        return;
    }
    char line[512];
    orbitctl_outcome_line(o, line, sizeof line);
    puts(line);
}

/* FILE (or - for stdin) holds {"commitment": {...}, "precondition": {...}}. */
static int cmd_propose(orbit_ledger_client_t *c, const char *file, int timeout, char *err,
                       size_t errlen)
{
    json_error_t je;
    json_t *j = !strcmp(file, "-") ? json_loadf(stdin, 0, &je) : json_load_file(file, 0, &je);
    if (!j) {
        snprintf(err, errlen, "%s:%d: %s", file, je.line, je.text);
        return 2;
    }
    int status = 2;
    ProtobufCMessage *cm = NULL, *pre = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        if (strcmp(key, "commitment") && strcmp(key, "precondition")) {
            snprintf(err, errlen, "%s: unknown field '%s' (commitment, precondition)", file, key);
            goto out;
        }
    }
    json_t *jc = json_object_get(j, "commitment");
    if (!jc) {
        snprintf(err, errlen, "%s: no \"commitment\"", file);
        goto out;
    }
    char why[256];
    if (orbit_json_to_pb(jc, &orbit__ledger__commitment__descriptor, &cm, why, sizeof why)) {
        snprintf(err, errlen, "%s: commitment.%s", file, why);
        goto out;
    }
    json_t *jp = json_object_get(j, "precondition");
    if (jp &&
        orbit_json_to_pb(jp, &orbit__ledger__precondition__descriptor, &pre, why, sizeof why)) {
        snprintf(err, errlen, "%s: precondition.%s", file, why);
        goto out;
    }
    Orbit__Ledger__Outcome *o = NULL;
    if (orbit_ledger_client_propose(c, (Orbit__Ledger__Commitment *)cm,
                                    (Orbit__Ledger__Precondition *)pre, timeout, &o, err,
                                    errlen) != ORBIT_OK) {
        status = 1;
        goto out;
    }
    print_outcome(o);
    status = o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED ? 0 : 1;
    if (status)
        snprintf(err, errlen, "not committed");
    orbit__ledger__outcome__free_unpacked(o, NULL);
out:
    if (cm)
        protobuf_c_message_free_unpacked(cm, NULL);
    if (pre)
        protobuf_c_message_free_unpacked(pre, NULL);
    json_decref(j);
    return status;
}

/* -------------------------------------------------------------- get/watch */

static int cmd_get(orbit_ledger_client_t *c, const char *key, bool stale, int timeout, char *err,
                   size_t errlen)
{
    char *value = NULL;
    uint64_t index = 0;
    int rc = orbit_ledger_client_get(c, key, stale, timeout, &value, &index, err, errlen);
    if (rc == ORBIT_ENOTFOUND)
        snprintf(err, errlen, "%s: not found", key);
    if (rc != ORBIT_OK)
        return 1;
    if (json_out)
        printf("{\"key\":\"%s\",\"index\":%" PRIu64 ",\"value\":%s}\n", key, index, value);
    else
        printf("%s (last changed at ledger index %" PRIu64 ")\n%s\n", key, index, value);
    free(value);
    return 0;
}

/* Write the whole state (a compact LMDB copy) to DIR/data.mdb. */
static int cmd_snapshot(orbit_ledger_client_t *c, const char *dir, bool stale, int timeout,
                        char *err, size_t errlen)
{
    Orbit__Ledger__SnapshotRequest sr = ORBIT__LEDGER__SNAPSHOT_REQUEST__INIT;
    sr.has_stale = true;
    sr.stale = stale;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_SNAPSHOT;
    req.snapshot = &sr;
    Orbit__Ledger__Reply *r = ask(c, &req, timeout, err, errlen);
    if (!r)
        return 1;
    int status = 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = NULL;
    if (!r->has_snapshot) {
        snprintf(err, errlen, "reply without a snapshot");
    } else if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || !(f = fopen(path, "wb")) ||
               fwrite(r->snapshot.data, 1, r->snapshot.len, f) != r->snapshot.len) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    } else {
        status = 0;
        if (json_out)
            printf("{\"dir\":\"%s\",\"bytes\":%zu,\"ledger_index\":%" PRIu64 "}\n", dir,
                   r->snapshot.len, r->snapshot_ledger_index);
        else
            printf("snapshot up to ledger index %" PRIu64 " (%zu bytes) written to %s; read it "
                   "with: orbitctl ledger get KEY --snapshot %s\n",
                   r->snapshot_ledger_index, r->snapshot.len, path, dir);
    }
    if (f && fclose(f) != 0 && status == 0) {
        snprintf(err, errlen, "cannot write %s", path);
        status = 1;
    }
    orbit__ledger__reply__free_unpacked(r, NULL);
    return status;
}

/* `get KEY --snapshot DIR`: read from a snapshot written by cmd_snapshot. */
static int get_from_snapshot(const char *dir, const char *key, char *err, size_t errlen)
{
    orbit_ledger_t *l = NULL;
    if (orbit_ledger_open(dir, &l, err, errlen) != ORBIT_OK)
        return 1;
    char *json = NULL;
    uint64_t index = 0;
    int rc = orbit_ledger_get_json(l, key, &json, &index);
    int status = 0;
    if (rc != ORBIT_OK) {
        snprintf(err, errlen, "%s: %s", key,
                 rc == ORBIT_ENOTFOUND ? "not found" : orbit_strerror(rc));
        status = 1;
    } else if (json_out) {
        printf("{\"key\":\"%s\",\"index\":%" PRIu64 ",\"value\":%s}\n", key, index, json);
    } else {
        printf("%s (last changed at ledger index %" PRIu64 ", from snapshot %s)\n%s\n", key, index,
               dir, json);
    }
    free(json);
    orbit_ledger_close(&l);
    return status;
}

static int cmd_watch(orbit_ledger_client_t *c, zhashx_t *v, int timeout, char *err, size_t errlen)
{
    const char *from = orbit_cli_str(v, "from");
    uint64_t next = 1;
    if (from) {
        char *end;
        next = strtoull(from, &end, 10);
        if (*end || from[0] == '-') {
            snprintf(err, errlen, "--from must be a ledger index");
            return 2;
        }
    }
    const char *prefix = orbit_cli_str(v, "prefix");
    bool follow = orbit_cli_flag(v, "follow");
    while (!zsys_interrupted) {
        Orbit__Ledger__WatchRequest w = ORBIT__LEDGER__WATCH_REQUEST__INIT;
        w.from_index = next;
        w.prefix = (char *)prefix;
        w.has_stale = true;
        w.stale = orbit_cli_flag(v, "stale");
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_WATCH;
        req.watch = &w;
        Orbit__Ledger__Reply *r = ask(c, &req, timeout, err, errlen);
        if (!r)
            return 1;
        if (r->has_compacted_index) {
            /* Never a silent gap: say so, and resume after the snapshot. */
            fprintf(stderr,
                    "orbitctl: ledger history up to index %" PRIu64
                    " is compacted into a snapshot; read the state with `orbitctl ledger get` "
                    "and resume from %" PRIu64 "\n",
                    r->compacted_index, r->compacted_index + 1);
            if (json_out)
                printf("{\"compacted\":%" PRIu64 "}\n", r->compacted_index);
            next = r->compacted_index + 1;
            orbit__ledger__reply__free_unpacked(r, NULL);
            continue;
        }
        for (size_t i = 0; i < r->n_items; i++) {
            const Orbit__Ledger__Committed *it = r->items[i];
            if (json_out) {
                dump(orbit_json_from_pb(&it->base));
            } else {
                json_t *cj = orbit_json_from_pb(&it->proposal->commitment->base);
                char *text = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
                printf("%" PRIu64 " %" PRId64 " %s\n", it->index, it->time_ms, text ? text : "?");
                free(text);
                json_decref(cj);
            }
        }
        fflush(stdout);
        bool more = r->n_items > 0;
        if (r->has_next_index && r->next_index > next)
            next = r->next_index;
        orbit__ledger__reply__free_unpacked(r, NULL);
        if (!more) {
            if (!follow)
                break;
            zclock_sleep(200);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- members */

static int cmd_members(orbit_ledger_client_t *c, char **pos, int npos, int timeout, char *err,
                       size_t errlen)
{
    if (npos == 2)
        return cmd_status(c, timeout, err, errlen);
    Orbit__Ledger__MemberChange m = ORBIT__LEDGER__MEMBER_CHANGE__INIT;
    const char *op = pos[2];
    char *end;
    if (npos < 4 || !(m.id = (uint32_t)strtoul(pos[3], &end, 10)) || *end || m.id > 255) {
        snprintf(err, errlen, "members add ID HOST:PORT | remove ID | assign ID ROLE");
        return 2;
    }
    if (!strcmp(op, "add") && npos == 5) {
        m.op = ORBIT__LEDGER__MEMBER_CHANGE__OP__ADD;
        m.address = pos[4];
    } else if (!strcmp(op, "remove") && npos == 4) {
        m.op = ORBIT__LEDGER__MEMBER_CHANGE__OP__REMOVE;
    } else if (!strcmp(op, "assign") && npos == 5 && role_parse(pos[4]) >= 0) {
        m.op = ORBIT__LEDGER__MEMBER_CHANGE__OP__ASSIGN;
        m.has_role = true;
        m.role = (uint32_t)role_parse(pos[4]);
    } else {
        snprintf(err, errlen,
                 "members add ID HOST:PORT | remove ID | assign ID voter|standby|spare");
        return 2;
    }
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_MEMBER;
    req.member = &m;
    Orbit__Ledger__Reply *r = ask(c, &req, timeout, err, errlen);
    if (!r)
        return 1;
    printf(json_out ? "{\"ok\":true}\n" : "membership change committed\n");
    orbit__ledger__reply__free_unpacked(r, NULL);
    return 0;
}

int orbitctl_ledger(zhashx_t *v, char **pos, int npos, char *err, size_t errlen)
{
    if (npos < 2) {
        snprintf(err, errlen,
                 "ledger needs status, propose FILE, get KEY, watch, snapshot DIR or members");
        return 2;
    }
    uint32_t timeout;
    if (orbit_cli_u32(v, "timeout-ms", 1, 600000, 5000, &timeout, err, errlen))
        return 2;
    const char *what = pos[1];
    int need =
        !strcmp(what, "propose") || !strcmp(what, "get") || !strcmp(what, "snapshot") ? 3 : 2;
    if (strcmp(what, "status") && strcmp(what, "propose") && strcmp(what, "get") &&
        strcmp(what, "watch") && strcmp(what, "members") && strcmp(what, "snapshot")) {
        snprintf(err, errlen, "unknown ledger command '%s'", what);
        return 2;
    }
    if (npos < need || (npos > need && strcmp(what, "members"))) {
        snprintf(err, errlen, npos < need ? "ledger %s needs an argument" : "unexpected '%s'",
                 npos < need ? what : pos[need]);
        return 2;
    }
    if (!strcmp(what, "get") && orbit_cli_str(v, "snapshot"))
        return get_from_snapshot(orbit_cli_str(v, "snapshot"), pos[2], err, errlen);
    const char *roots = orbit_cli_str(v, "root");
    orbit_ledger_client_t *c = orbit_ledger_client_new(roots ? roots : DEFAULT_ROOTS,
                                                       orbit_cli_str(v, "client-id"), err, errlen);
    if (!c)
        return 2;
    int status;
    if (!strcmp(what, "status"))
        status = cmd_status(c, (int)timeout, err, errlen);
    else if (!strcmp(what, "propose"))
        status = cmd_propose(c, pos[2], (int)timeout, err, errlen);
    else if (!strcmp(what, "get"))
        status = cmd_get(c, pos[2], orbit_cli_flag(v, "stale"), (int)timeout, err, errlen);
    else if (!strcmp(what, "watch"))
        status = cmd_watch(c, v, (int)timeout, err, errlen);
    else if (!strcmp(what, "snapshot"))
        status = cmd_snapshot(c, pos[2], orbit_cli_flag(v, "stale"), (int)timeout, err, errlen);
    else
        status = cmd_members(c, pos, npos, (int)timeout, err, errlen);
    orbit_ledger_client_destroy(&c);
    return status;
}
