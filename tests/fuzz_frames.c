/* fuzz_frames: test tool that throws a bounded burst of hostile traffic at a
 * shard or root endpoint — random bytes, bad envelopes (magic, version,
 * type), truncated and mutated valid batches (with capsules), multi-frame
 * messages, absurd values, hostile capsule lists, replays and an oversized
 * frame — then checks that at least one well-formed batch is still answered.
 * Exit 0 when the daemon answered.
 *
 * usage: fuzz_frames ENDPOINT COUNT [SEED] */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_node.h"
#include "orbit_sock.h"
#include "orbit_wire.h"

static uint64_t rng;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Ways to make a node's capsule list hostile (HOSTILE_NONE: a valid one). */
enum {
    HOSTILE_NONE,
    HOSTILE_DUP_ID,
    HOSTILE_STATE,
    HOSTILE_ID_CHAR,
    HOSTILE_LONG_REASON,
    HOSTILE_TOO_MANY,
    HOSTILE_NO_SET_FLAG,
    HOSTILE_COUNT
};

/* A valid one-node batch with two capsules (or a hostile capsule list),
 * encoded with its envelope. */
static uint8_t *capsule_batch(const char *node, uint64_t seq, bool full, int64_t used,
                              uint32_t gpus, int hostile, size_t *len)
{
    orbit_node_state_t s;
    orbit_node_state_init(&s);
    snprintf(s.name, sizeof s.name, "%s", node);
    s.incarnation = 7;
    s.sampled_ms = zclock_time();
    s.interval_ms = 1000;
    s.cpu_capacity_m = 8000;
    s.cpu_used_m = used;
    s.mem_capacity = 1 << 30;
    s.mem_used = 1 << 20;
    s.gpu_capacity = gpus;
    orbit_capsule_t caps[2] = {{.id = "fuzz/web/0", .state = ORBIT_CAPSULE_RUNNING, .since_ms = 5},
                               {.id = "fuzz/web/1",
                                .state = ORBIT_CAPSULE_FAILED,
                                .reason = "command not found: fuzz",
                                .since_ms = 6}};
    orbit_node_state_set_capsules(&s, caps, 2);
    Orbit__NodeDelta d = ORBIT__NODE_DELTA__INIT;
    void *scratch = NULL;
    orbit_node_delta_fill(&d, &s, NULL, seq, &scratch);
    d.has_full = true;
    d.full = full;
    /* Hostile lists are built by hand: orbit_node_state_set_capsules refuses them. */
    enum { MANY = ORBIT_CAPSULES_MAX + 1 };
    static Orbit__CapsuleHealth hs[MANY], *hp[MANY];
    static char ids[MANY][32], reason[ORBIT_CAPSULE_REASON_MAX + 8];
    if (hostile != HOSTILE_NONE) {
        size_t n = hostile == HOSTILE_TOO_MANY ? MANY : 2;
        for (size_t i = 0; i < n; i++) {
            orbit__capsule_health__init(&hs[i]);
            snprintf(ids[i], sizeof ids[i], "fuzz/m/%zu", i);
            hs[i].id = ids[i];
            hs[i].state = ORBIT__CAPSULE_STATE__CAPSULE_RUNNING;
            hp[i] = &hs[i];
        }
        switch (hostile) {
        case HOSTILE_DUP_ID: hs[1].id = ids[0]; break;
        case HOSTILE_STATE: hs[1].state = (Orbit__CapsuleState)99; break;
        case HOSTILE_ID_CHAR: hs[1].id = "fuzz web 1"; break;
        case HOSTILE_LONG_REASON:
            memset(reason, 'r', sizeof reason - 1);
            reason[sizeof reason - 1] = '\0';
            hs[1].reason = reason;
            break;
        case HOSTILE_NO_SET_FLAG: d.has_capsules_set = d.capsules_set = false; break;
        default: break;
        }
        d.n_capsules = n;
        d.capsules = hp;
    }
    Orbit__NodeDelta *list[1] = {&d};
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = seq;
    b.n_deltas = 1;
    b.deltas = list;
    uint8_t *buf = NULL;
    orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &buf, len);
    free(scratch);
    orbit_node_state_close(&s);
    return buf;
}

static uint8_t *valid_batch(const char *node, uint64_t seq, bool full, int64_t used, uint32_t gpus,
                            size_t *len)
{
    return capsule_batch(node, seq, full, used, gpus, HOSTILE_NONE, len);
}

static void send_raw(zsock_t *s, const uint8_t *buf, size_t len, int more)
{
    zmq_send(zsock_resolve(s), buf, len, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz_frames ENDPOINT COUNT [SEED]\n");
        return 2;
    }
    long count = atol(argv[2]);
    rng = argc > 3 ? strtoull(argv[3], NULL, 10) | 1 : 88172645463325252ULL;
    char err[256];
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    o.immediate = false;
    o.sndhwm = 100000;
    zsock_t *s = orbit_sock_connect(ZMQ_DEALER, argv[1], &o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "fuzz_frames: %s\n", err);
        return 2;
    }
    uint8_t buf[2048];
    for (long i = 0; i < count; i++) {
        size_t len = next_rand() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)next_rand();
        switch (i % 10) {
        case 0: break; /* pure garbage */
        case 1:        /* valid envelope, garbage body */
            if (len >= 4) {
                buf[0] = ORBIT_WIRE_MAGIC;
                buf[1] = ORBIT_WIRE_MAJOR;
                buf[3] = ORBIT_MSG_LEAF_BATCH;
            }
            break;
        case 2: /* unknown major version */
            if (len >= 4) {
                buf[0] = ORBIT_WIRE_MAGIC;
                buf[1] = 9;
            }
            break;
        case 3: /* unknown type */
            if (len >= 4) {
                buf[0] = ORBIT_WIRE_MAGIC;
                buf[1] = ORBIT_WIRE_MAJOR;
                buf[3] = 200;
            }
            break;
        case 4: { /* truncated valid batch */
            size_t n;
            uint8_t *v = valid_batch("fuzz-a", 1, true, 100, 0, &n);
            len = n ? next_rand() % n : 0;
            memcpy(buf, v, len);
            free(v);
            break;
        }
        case 5: { /* mutated valid batch */
            size_t n;
            uint8_t *v = valid_batch("fuzz-b", (uint64_t)i + 1, true, 100, 0, &n);
            memcpy(buf, v, n);
            len = n;
            free(v);
            for (int k = 0; k < 3 && len > 4; k++)
                buf[4 + next_rand() % (len - 4)] ^= (uint8_t)(1u << (next_rand() % 8));
            break;
        }
        case 6: /* multi-frame message */
            send_raw(s, buf, len / 2, 1);
            send_raw(s, buf + len / 2, len - len / 2, 0);
            continue;
        case 7: { /* absurd values: negative usage, a million GPUs, hostile capsules */
            size_t n;
            uint8_t *v = (i / 10) % 3 == 2
                             ? capsule_batch("fuzz-e", (uint64_t)i + 1, true, 100, 0,
                                             1 + (int)(next_rand() % (HOSTILE_COUNT - 1)), &n)
                             : valid_batch("fuzz-c", (uint64_t)i + 1, true, (i & 1) ? -5 : 100,
                                           (i & 1) ? 0 : 1000000, &n);
            /* Sent as built: a list of too many capsules outgrows buf. */
            send_raw(s, v, n, 0);
            free(v);
            continue;
        }
        case 8: { /* replay of an old sequence number */
            size_t n;
            uint8_t *v = valid_batch("fuzz-d", 1, false, 100, 0, &n);
            memcpy(buf, v, n);
            len = n;
            free(v);
            break;
        }
        default: len = next_rand() % 4; break; /* shorter than an envelope */
        }
        send_raw(s, buf, len, 0);
    }
    /* One frame above ZMQ_MAXMSGSIZE: libzmq drops the connection, the daemon
     * never sees it. Sent on its own socket so the check below still works. */
    zsock_t *big = orbit_sock_connect(ZMQ_DEALER, argv[1], &o, err, sizeof err);
    if (big) {
        size_t n = 5u << 20;
        uint8_t *huge = calloc(1, n);
        if (huge) {
            huge[0] = ORBIT_WIRE_MAGIC;
            huge[1] = ORBIT_WIRE_MAJOR;
            huge[3] = ORBIT_MSG_LEAF_BATCH;
            send_raw(big, huge, n, 0);
            free(huge);
        }
        zclock_sleep(200);
        zsock_destroy(&big);
    }
    /* The daemon must still answer a well-formed batch. */
    size_t n;
    uint8_t *v = valid_batch("fuzz-alive", 1, true, 100, 0, &n);
    int answered = 0;
    orbit_rx_t rx;
    orbit_rx_init(&rx);
    zpoller_t *p = zpoller_new(s, NULL);
    int64_t deadline = zclock_mono() + 10000;
    send_raw(s, v, n, 0);
    while (!answered && zclock_mono() < deadline) {
        if (!zpoller_wait(p, 500))
            continue;
        while (orbit_wire_recv(s, 0, &rx) == ORBIT_OK) {
            ProtobufCMessage *m = NULL;
            if (orbit_wire_decode(orbit_rx_data(&rx), orbit_rx_size(&rx), ORBIT_MSG_LEAF_ACK, NULL,
                                  NULL, &m) != ORBIT_OK)
                continue;
            Orbit__LeafAck *ack = (Orbit__LeafAck *)m;
            if (ack->batch_id == 1 && ack->verdict == ORBIT__VERDICT__OK && ack->n_nodes == 0)
                answered = 1;
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    free(v);
    orbit_rx_close(&rx);
    zpoller_destroy(&p);
    zsock_destroy(&s);
    printf("fuzz_frames: sent %ld hostile frames; daemon %s\n", count,
           answered ? "still answers" : "DID NOT ANSWER");
    return answered ? 0 : 1;
}
