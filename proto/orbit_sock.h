/* orbit_sock: the one place where Orbit creates and configures ZeroMQ
 * sockets — endpoints, high-water marks, ZMQ_MAXMSGSIZE, reconnect backoff
 * with a ceiling, keepalive, and the hook where CURVE keys are applied.
 *
 * Thread rules: a socket belongs to the thread that created it. */
#ifndef ORBIT_SOCK_H
#define ORBIT_SOCK_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

/* Which link a socket serves; each has its own defaults. */
typedef enum {
    ORBIT_LINK_LEAF,   /* leaf/simulator <-> rack shard: many small frames */
    ORBIT_LINK_TREE,   /* shard <-> parent shard or root: few large reports */
    ORBIT_LINK_CLIENT, /* orbitctl, schedulers <-> root */
} orbit_link_t;

/* Security hook: when curve is set, the socket is a CURVE server (bind side)
 * or client (connect side) with the given certificates. Until the security
 * issue lands every link runs plain, and curve stays NULL. */
typedef struct {
    zcert_t *own;              /* this process's certificate (borrowed) */
    const char *server_public; /* Z85 public key of the server, connect side */
} orbit_sock_curve_t;

typedef struct {
    int64_t max_msg_size;     /* ZMQ_MAXMSGSIZE, bytes */
    int sndhwm, rcvhwm;       /* messages */
    int reconnect_ivl_ms;     /* first reconnect delay */
    int reconnect_ivl_max_ms; /* backoff ceiling (libzmq doubles up to it) */
    int linger_ms;
    bool immediate;                  /* do not queue to peers that are not connected */
    const orbit_sock_curve_t *curve; /* NULL: plain */
} orbit_sock_opts_t;

/* Fill o with the defaults of a link kind. */
void orbit_sock_opts_default(orbit_sock_opts_t *o, orbit_link_t link);

/* New socket of ZeroMQ type (ZMQ_ROUTER, ZMQ_DEALER, ...) configured with o
 * and bound to every endpoint of the comma-separated list. On failure returns
 * NULL and writes a one-line reason into err (size errlen).
 * Errors (in err): bad or busy endpoint, unusable options. */
zsock_t *orbit_sock_bind(int type, const char *endpoints, const orbit_sock_opts_t *o, char *err,
                         size_t errlen);

/* Same, connecting to one endpoint. */
zsock_t *orbit_sock_connect(int type, const char *endpoint, const orbit_sock_opts_t *o, char *err,
                            size_t errlen);

/* Split a comma-separated endpoint list into at most max malloc'd strings
 * (out[0..*n-1]; free each with free()). what names the list in errors
 * ("root", "upstream"). Returns 0, or -1 with a one-line reason in err and
 * nothing allocated (too many, a malformed one, or none at all). */
int orbit_endpoints_split(const char *list, const char *what, char **out, int max, int *n,
                          char *err, size_t errlen);

/* Check that s is a syntactically valid tcp:// ipc:// or inproc:// endpoint
 * (tcp needs host:port with a port in 1..65535). */
bool orbit_endpoint_valid(const char *s);

#endif
