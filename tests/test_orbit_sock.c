/* test_orbit_sock: endpoint syntax, link defaults applied to the socket, and
 * the one-line errors of bind and connect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "orbit_sock.h"

typedef struct {
    zsock_t *a, *b;
    char err[256];
    char ep[64];
} sock_fx_t;

static int sock_setup(void **state)
{
    static sock_fx_t fx;
    static int counter;
    memset(&fx, 0, sizeof fx);
    snprintf(fx.ep, sizeof fx.ep, "inproc://test-sock-%d-%d", (int)getpid(), counter++);
    *state = &fx;
    return 0;
}

static int sock_teardown(void **state)
{
    sock_fx_t *fx = *state;
    zsock_destroy(&fx->a);
    zsock_destroy(&fx->b);
    return 0;
}

static void test_endpoint_valid(void **state)
{
    (void)state;
    static const char *good[] = {
        "tcp://127.0.0.1:7400",  "tcp://localhost:1",    "tcp://*:65535",
        "tcp://[::1]:80",        "tcp://127.0.0.1:*",    "tcp://eth0:9000",
        "ipc:///tmp/orbit.sock", "inproc://orbit-shard", "tcp://host.example:443",
    };
    static const char *bad[] = {
        "",          "tcp://",        "tcp://host", "tcp://host:",  "tcp://:80",
        "tcp://h:0", "tcp://h:65536", "tcp://h:-1", "tcp://h:80x",  "tcp://h:**",
        "ipc://",    "inproc://",     "udp://h:80", "127.0.0.1:80", "TCP://h:80",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!orbit_endpoint_valid(good[i]))
            fail_msg("'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (orbit_endpoint_valid(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
    assert_false(orbit_endpoint_valid(NULL));
}

static void test_defaults_per_link(void **state)
{
    (void)state;
    orbit_sock_opts_t leaf, tree, client;
    orbit_sock_opts_default(&leaf, ORBIT_LINK_LEAF);
    orbit_sock_opts_default(&tree, ORBIT_LINK_TREE);
    orbit_sock_opts_default(&client, ORBIT_LINK_CLIENT);
    /* Every link bounds message size and queues, and backs off with a
     * ceiling (libzmq's default never backs off). */
    const orbit_sock_opts_t *all[] = {&leaf, &tree, &client};
    for (int i = 0; i < 3; i++) {
        assert_true(all[i]->max_msg_size > 0);
        assert_true(all[i]->sndhwm > 0 && all[i]->rcvhwm > 0);
        assert_true(all[i]->reconnect_ivl_ms > 0);
        assert_true(all[i]->reconnect_ivl_max_ms > all[i]->reconnect_ivl_ms);
        assert_null(all[i]->curve);
    }
    /* Leaf frames are small; reports may be large. */
    assert_true(leaf.max_msg_size < tree.max_msg_size);
}

static void test_bind_applies_options(void **state)
{
    sock_fx_t *fx = *state;
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    o.sndhwm = 123;
    o.rcvhwm = 456;
    o.reconnect_ivl_max_ms = 3210;
    fx->a = orbit_sock_bind(ZMQ_ROUTER, fx->ep, &o, fx->err, sizeof fx->err);
    assert_non_null(fx->a);
    assert_string_equal(fx->err, "");
    assert_int_equal(zsock_sndhwm(fx->a), 123);
    assert_int_equal(zsock_rcvhwm(fx->a), 456);
    assert_int_equal(zsock_reconnect_ivl_max(fx->a), 3210);
    assert_int_equal(zsock_linger(fx->a), o.linger_ms);
    int64_t mm = 0;
    size_t sz = sizeof mm;
    assert_int_equal(zmq_getsockopt(zsock_resolve(fx->a), ZMQ_MAXMSGSIZE, &mm, &sz), 0);
    assert_int_equal(mm, o.max_msg_size);
    fx->b = orbit_sock_connect(ZMQ_DEALER, fx->ep, &o, fx->err, sizeof fx->err);
    assert_non_null(fx->b);
    assert_int_equal(zsock_immediate(fx->b), 1);
    assert_int_equal(zsock_reconnect_ivl(fx->b), o.reconnect_ivl_ms);
}

static void test_bind_list_and_wildcard_port(void **state)
{
    sock_fx_t *fx = *state;
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_TREE);
    char list[160];
    snprintf(list, sizeof list, "%s-a,%s-b,tcp://127.0.0.1:*", fx->ep, fx->ep);
    fx->a = orbit_sock_bind(ZMQ_ROUTER, list, &o, fx->err, sizeof fx->err);
    if (!fx->a)
        fail_msg("bind '%s': %s", list, fx->err);
    /* Both inproc endpoints answer. */
    char ep[80];
    snprintf(ep, sizeof ep, "%s-b", fx->ep);
    fx->b = orbit_sock_connect(ZMQ_DEALER, ep, &o, fx->err, sizeof fx->err);
    assert_non_null(fx->b);
    assert_int_equal(zstr_send(fx->b, "hello"), 0);
    zsock_set_rcvtimeo(fx->a, 2000);
    zmsg_t *m = zmsg_recv(fx->a);
    assert_non_null(m);
    assert_int_equal(zmsg_size(m), 2);
    zmsg_destroy(&m);
    /* The ephemeral TCP port was bound. */
    char *last = zsock_last_endpoint(fx->a); /* ours to free */
    assert_non_null(last);
    assert_non_null(strstr(last, "tcp://127.0.0.1:"));
    assert_null(strchr(last, '*'));
    zstr_free(&last);
}

static void test_bind_errors(void **state)
{
    sock_fx_t *fx = *state;
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    assert_null(orbit_sock_bind(ZMQ_ROUTER, "tcp://nohost", &o, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, "cannot listen on 'tcp://nohost': malformed endpoint");
    assert_null(orbit_sock_bind(ZMQ_ROUTER, "", &o, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, "no endpoint to listen on");
    assert_null(orbit_sock_bind(ZMQ_ROUTER, NULL, &o, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, "no endpoint to listen on");
    /* Busy: the second bind of the same endpoint fails with a reason, and
     * a list with one bad endpoint fails as a whole. */
    fx->a = orbit_sock_bind(ZMQ_ROUTER, fx->ep, &o, fx->err, sizeof fx->err);
    assert_non_null(fx->a);
    char list[160];
    snprintf(list, sizeof list, "%s-other,%s", fx->ep, fx->ep);
    assert_null(orbit_sock_bind(ZMQ_ROUTER, list, &o, fx->err, sizeof fx->err));
    char want[128];
    snprintf(want, sizeof want, "cannot listen on '%s': ", fx->ep);
    assert_memory_equal(fx->err, want, strlen(want));
    assert_true(strlen(fx->err) > strlen(want));
    assert_null(strchr(fx->err, '\n'));
}

static void test_connect_errors(void **state)
{
    sock_fx_t *fx = *state;
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_CLIENT);
    assert_null(orbit_sock_connect(ZMQ_DEALER, "tcp://h:0", &o, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, "malformed endpoint 'tcp://h:0'");
    assert_null(orbit_sock_connect(ZMQ_DEALER, NULL, &o, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, "malformed endpoint ''");
    /* Connecting needs no listener yet (ZeroMQ reconnects). */
    fx->b = orbit_sock_connect(ZMQ_DEALER, "tcp://127.0.0.1:9", &o, fx->err, sizeof fx->err);
    assert_non_null(fx->b);
    assert_string_equal(fx->err, "");
}

static void test_endpoints_split(void **state)
{
    (void)state;
    char *eps[3];
    int n = -1;
    char err[128];
    assert_int_equal(orbit_endpoints_split("tcp://127.0.0.1:1,tcp://127.0.0.1:2", "root", eps, 3,
                                           &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(eps[1], "tcp://127.0.0.1:2");
    free(eps[0]);
    free(eps[1]);
    /* Too many, a malformed one, none: refused with nothing left allocated
     * (ASan would report a leak). */
    assert_int_equal(orbit_endpoints_split("tcp://a:1,tcp://a:2,tcp://a:3,tcp://a:4", "root", eps,
                                           3, &n, err, sizeof err),
                     -1);
    assert_string_equal(err, "at most 3 root endpoints");
    assert_int_equal(n, 0);
    assert_int_equal(
        orbit_endpoints_split("tcp://a:1,tcp://nope", "upstream", eps, 3, &n, err, sizeof err), -1);
    assert_string_equal(err, "malformed upstream endpoint 'tcp://nope'");
    assert_int_equal(orbit_endpoints_split(",,", "root", eps, 3, &n, err, sizeof err), -1);
    assert_string_equal(err, "no root endpoint");
    assert_int_equal(orbit_endpoints_split(NULL, "root", eps, 3, &n, err, sizeof err), -1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, sock_setup, sock_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_valid),
        cmocka_unit_test(test_endpoints_split),
        cmocka_unit_test(test_defaults_per_link),
        T(test_bind_applies_options),
        T(test_bind_list_and_wildcard_port),
        T(test_bind_errors),
        T(test_connect_errors),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
