/* orbit_err: string table for the project's error codes. */
#include "orbit_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *orbit_strerror(int code)
{
    switch (code) {
    case ORBIT_OK: return "ok";
    case ORBIT_ENOMEM: return "out of memory";
    case ORBIT_EINVAL: return "invalid argument";
    case ORBIT_ETRUNC: return "truncated frame";
    case ORBIT_EMAGIC: return "bad magic";
    case ORBIT_EVERSION: return "unsupported protocol version";
    case ORBIT_ETYPE: return "unknown message type";
    case ORBIT_EDECODE: return "undecodable message body";
    case ORBIT_ETOOBIG: return "frame too large";
    case ORBIT_EIO: return "i/o error";
    case ORBIT_ENOTFOUND: return "not found";
    case ORBIT_EAGAIN: return "try again";
    case ORBIT_ETIMEDOUT: return "timed out";
    case ORBIT_EUNAVAIL: return "not available";
    case ORBIT_ENOTLEADER: return "not the leader";
    case ORBIT_ELEADERLOST: return "leadership lost; the outcome is unknown";
    case ORBIT_ESHUTDOWN: return "shutting down";
    case ORBIT_ECOMPACTED: return "compacted";
    case ORBIT_ECORRUPT: return "corrupt data";
    default: return "unknown error";
    }
}

void orbit_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
