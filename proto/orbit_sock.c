/* orbit_sock: socket creation and configuration for every Orbit link. */
#include "orbit_sock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void orbit_sock_opts_default(orbit_sock_opts_t *o, orbit_link_t link)
{
    memset(o, 0, sizeof *o);
    o->linger_ms = 0;
    o->reconnect_ivl_ms = 100;
    o->reconnect_ivl_max_ms = 2000;
    o->immediate = true;
    switch (link) {
    case ORBIT_LINK_LEAF:
        /* A restarted shard must see its leaves again within a report
         * interval or two: cap the backoff at one second. */
        o->reconnect_ivl_max_ms = 1000;
        o->max_msg_size = 4 << 20;
        o->sndhwm = 10000;
        o->rcvhwm = 10000;
        break;
    case ORBIT_LINK_TREE:
        o->max_msg_size = 256 << 20;
        o->sndhwm = 1000;
        o->rcvhwm = 1000;
        break;
    case ORBIT_LINK_CLIENT:
        o->max_msg_size = 256 << 20;
        o->sndhwm = 1000;
        o->rcvhwm = 1000;
        break;
    }
}

static int apply(zsock_t *s, const orbit_sock_opts_t *o, bool server, char *err, size_t errlen)
{
    void *h = zsock_resolve(s);
    int64_t mm = o->max_msg_size;
    if (zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &mm, sizeof mm) != 0)
        goto fail;
    zsock_set_sndhwm(s, o->sndhwm);
    zsock_set_rcvhwm(s, o->rcvhwm);
    zsock_set_linger(s, o->linger_ms);
    zsock_set_reconnect_ivl(s, o->reconnect_ivl_ms);
    zsock_set_reconnect_ivl_max(s, o->reconnect_ivl_max_ms);
    zsock_set_immediate(s, o->immediate ? 1 : 0);
    zsock_set_tcp_keepalive(s, 1);
    zsock_set_tcp_keepalive_idle(s, 30);
    /* A ROUTER otherwise drops a message for an unknown or full peer
     * silently; mandatory routing makes the send fail (EHOSTUNREACH or
     * EAGAIN), so orbit_wire_send can report it and the caller count it. */
    if (zsock_type(s) == ZMQ_ROUTER)
        zsock_set_router_mandatory(s, 1);
    if (o->curve) {
        zcert_apply(o->curve->own, s);
        if (server)
            zsock_set_curve_server(s, 1);
        else
            zsock_set_curve_serverkey(s, o->curve->server_public);
    }
    return 0;
fail:
    snprintf(err, errlen, "socket option: %s", zmq_strerror(errno));
    return -1;
}

bool orbit_endpoint_valid(const char *s)
{
    if (!s)
        return false;
    if (!strncmp(s, "ipc://", 6) || !strncmp(s, "inproc://", 9))
        return strlen(s) > (s[0] == 'i' && s[1] == 'p' ? 6u : 9u);
    if (strncmp(s, "tcp://", 6) != 0)
        return false;
    const char *host = s + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    if (colon[1] == '*' && colon[2] == '\0')
        return true; /* an ephemeral port (bind side) */
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0')
        return false;
    return port >= 1 && port <= 65535;
}

zsock_t *orbit_sock_bind(int type, const char *endpoints, const orbit_sock_opts_t *o, char *err,
                         size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    zsock_t *s = zsock_new(type);
    if (!s) {
        snprintf(err, errlen, "cannot create socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (apply(s, o, true, err, errlen) != 0)
        goto fail;
    char *list = strdup(endpoints ? endpoints : "");
    if (!list) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int bound = 0;
    for (char *save = NULL, *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        if (!orbit_endpoint_valid(ep) || zsock_bind(s, "%s", ep) < 0) {
            snprintf(err, errlen, "cannot listen on '%s': %s", ep,
                     orbit_endpoint_valid(ep) ? zmq_strerror(errno) : "malformed endpoint");
            free(list);
            goto fail;
        }
        bound++;
    }
    free(list);
    if (!bound) {
        snprintf(err, errlen, "no endpoint to listen on");
        goto fail;
    }
    return s;
fail:
    zsock_destroy(&s);
    return NULL;
}

zsock_t *orbit_sock_connect(int type, const char *endpoint, const orbit_sock_opts_t *o, char *err,
                            size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!orbit_endpoint_valid(endpoint)) {
        snprintf(err, errlen, "malformed endpoint '%s'", endpoint ? endpoint : "");
        return NULL;
    }
    zsock_t *s = zsock_new(type);
    if (!s) {
        snprintf(err, errlen, "cannot create socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (apply(s, o, false, err, errlen) != 0 || zsock_connect(s, "%s", endpoint) < 0) {
        if (!*err)
            snprintf(err, errlen, "cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

int orbit_endpoints_split(const char *list, const char *what, char **out, int max, int *n,
                          char *err, size_t errlen)
{
    char *copy = strdup(list ? list : "");
    *n = 0;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (char *save = NULL, *ep = strtok_r(copy, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        if (*n == max || !orbit_endpoint_valid(ep) || !(out[*n] = strdup(ep))) {
            if (*n == max)
                snprintf(err, errlen, "at most %d %s endpoints", max, what);
            else
                snprintf(err, errlen, "malformed %s endpoint '%s'", what, ep);
            goto fail;
        }
        (*n)++;
    }
    if (!*n) {
        snprintf(err, errlen, "no %s endpoint", what);
        goto fail;
    }
    free(copy);
    return 0;
fail:
    while (*n > 0)
        free(out[--*n]);
    free(copy);
    return -1;
}
