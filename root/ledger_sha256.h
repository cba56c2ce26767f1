/* ledger_sha256: a small self-contained SHA-256 (FIPS 180-4) for the ledger's
 * state hash and history chain.
 *
 * Thread rules: none (a context belongs to its caller). */
#ifndef ORBIT_LEDGER_SHA256_H
#define ORBIT_LEDGER_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes; /* total fed so far */
    uint8_t buf[64];
    size_t used; /* bytes waiting in buf */
} orbit_sha256_t;

/* Start a digest. */
void orbit_sha256_init(orbit_sha256_t *s);
/* Feed len bytes of data (data may be NULL when len is 0). */
void orbit_sha256_update(orbit_sha256_t *s, const void *data, size_t len);
/* Finish into out; s must be initialised again before reuse. */
void orbit_sha256_final(orbit_sha256_t *s, uint8_t out[32]);

#endif
