/* orbit_cli: the command-line contract shared by every Orbit binary:
 * --help, --version, --config FILE (czmq ZPL; flags override it),
 * --log-level, long options with values, and one-line errors.
 *
 * Values are kept as strings in a czmq hash (option name -> value); typed
 * getters validate ranges and report "--name: reason". */
#ifndef ORBIT_CLI_H
#define ORBIT_CLI_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name; /* without the leading "--" */
    const char *arg;  /* metavariable ("MS"), or NULL for a switch */
    const char *help;
    bool repeat; /* may be given several times: values joined with ',' */
} orbit_opt_t;

typedef struct {
    const char *prog;        /* "orbit-shard" */
    const char *summary;     /* one line on what it is */
    const char *usage;       /* "[options]" or "view summary|nodes ..." */
    const char *section;     /* ZPL section holding the same keys ("shard") */
    const orbit_opt_t *opts; /* terminated by a zeroed entry */
} orbit_cli_t;

/* Parse argv. Returns 0 with *values set (destroy with zhashx_destroy) and
 * *first_positional the index of the first non-option argument; 1 when
 * --help or --version was printed (exit 0); -1 with a one-line reason in err
 * (exit 2). --log-level is applied to orbit_log_level. */
int orbit_cli_parse(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                    int *first_positional, char *err, size_t errlen);

/* Same, but options and positional arguments may be interleaved (as in
 * "orbitctl view nodes --status alive"): positionals are collected in pos
 * (up to maxpos, pointers into argv) and counted in *npos. */
int orbit_cli_parse_mixed(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                          char **pos, int maxpos, int *npos, char *err, size_t errlen);

/* Raw value or NULL. */
const char *orbit_cli_str(zhashx_t *values, const char *name);
/* Integer option within [min, max]; def when absent. Returns -1 with a reason in err. */
int orbit_cli_u32(zhashx_t *values, const char *name, uint32_t min, uint32_t max, uint32_t def,
                  uint32_t *out, char *err, size_t errlen);
bool orbit_cli_flag(zhashx_t *values, const char *name);

/* Exit with status 2 after printing "prog: reason" on stderr. */
void orbit_cli_die(const char *prog, const char *reason) __attribute__((noreturn));

#endif
