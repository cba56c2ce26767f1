/* shard_pending: bounded ring of forwarded requests. */
#include "shard_pending.h"

#include <string.h>

void orbit_pending_init(orbit_pending_table_t *t)
{
    memset(t, 0, sizeof *t);
    t->next_id = 1;
}

uint64_t orbit_pending_add(orbit_pending_table_t *t, const orbit_pending_t *p)
{
    uint64_t id = t->next_id++;
    orbit_pending_t *s = &t->slots[id % ORBIT_PENDING_SLOTS];
    if (s->id)
        t->overwritten++;
    *s = *p;
    s->id = id;
    return id;
}

bool orbit_pending_take(orbit_pending_table_t *t, uint64_t id, orbit_pending_t *out)
{
    orbit_pending_t *s = &t->slots[id % ORBIT_PENDING_SLOTS];
    if (!id || s->id != id)
        return false;
    *out = *s;
    s->id = 0;
    return true;
}

bool orbit_pending_expire(orbit_pending_table_t *t, int64_t now, orbit_pending_t *out)
{
    for (size_t i = 0; i < ORBIT_PENDING_SLOTS; i++) {
        orbit_pending_t *s = &t->slots[i];
        if (s->id && s->deadline_ms <= now) {
            *out = *s;
            s->id = 0;
            t->expired++;
            return true;
        }
    }
    return false;
}
