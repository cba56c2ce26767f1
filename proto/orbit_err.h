/* orbit_err: the project's error codes (one negative range) and their strings. */
#ifndef ORBIT_ERR_H
#define ORBIT_ERR_H

#include <stddef.h>

enum {
    ORBIT_OK = 0,
    ORBIT_ENOMEM = -1001,      /* out of memory */
    ORBIT_EINVAL = -1002,      /* invalid argument or input value */
    ORBIT_ETRUNC = -1003,      /* frame shorter than its envelope */
    ORBIT_EMAGIC = -1004,      /* frame does not start with the Orbit magic */
    ORBIT_EVERSION = -1005,    /* unsupported major protocol version */
    ORBIT_ETYPE = -1006,       /* unknown message type */
    ORBIT_EDECODE = -1007,     /* protobuf body does not decode */
    ORBIT_ETOOBIG = -1008,     /* frame larger than allowed */
    ORBIT_EIO = -1009,         /* system or socket error (errno kept) */
    ORBIT_ENOTFOUND = -1010,   /* no such object */
    ORBIT_EAGAIN = -1011,      /* would block / try later */
    ORBIT_ETIMEDOUT = -1012,   /* no answer in time */
    ORBIT_EUNAVAIL = -1013,    /* facility not available on this machine */
    ORBIT_ENOTLEADER = -1014,  /* this replica is not the leader (ask it for a hint) */
    ORBIT_ELEADERLOST = -1015, /* leadership lost before the outcome was known */
    ORBIT_ESHUTDOWN = -1016,   /* shutting down */
    ORBIT_ECOMPACTED = -1017,  /* history below the compacted index is gone (load a snapshot) */
    ORBIT_ECORRUPT = -1018,    /* stored data fails its own checks (bad version or record) */
};

/* Static description of an Orbit error code (or "unknown error"). */
const char *orbit_strerror(int code);

/* printf into a caller's error buffer; does nothing when err is NULL or
 * errlen 0 (the convention of every "char *err, size_t errlen" pair). */
void orbit_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
