/* ledger_sha256: a small self-contained SHA-256 (FIPS 180-4) for the ledger's
 * state hash and history chain: portable C, or the x86 SHA extensions when
 * the CPU has them (the same digests; test_ledger compares the two).
 *
 * Thread rules: none (a context belongs to its caller). */
#ifndef ORBIT_LEDGER_SHA256_H
#define ORBIT_LEDGER_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes; /* total fed so far */
    uint8_t buf[64];
    size_t used; /* bytes waiting in buf */
    bool accel;  /* the CPU's SHA extensions (chosen at init) */
} orbit_sha256_t;

/* Start a digest. */
void orbit_sha256_init(orbit_sha256_t *s);
/* Feed len bytes of data (data may be NULL when len is 0). */
void orbit_sha256_update(orbit_sha256_t *s, const void *data, size_t len);
/* Finish into out; s must be initialised again before reuse. */
void orbit_sha256_final(orbit_sha256_t *s, uint8_t out[32]);

/* Whether digests started now use the CPU's SHA extensions (x86 SHA-NI). */
bool orbit_sha256_accelerated(void);
/* Tests: use the portable code even where the extensions exist. */
void orbit_sha256_force_portable(bool on);

#endif
