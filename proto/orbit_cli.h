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

/* How often an option may be given. false and true still read as
 * ORBIT_OPT_ONCE and ORBIT_OPT_REPEAT. */
typedef enum {
    ORBIT_OPT_ONCE = 0,   /* the last value wins; a flag replaces the file's value */
    ORBIT_OPT_REPEAT = 1, /* values joined with ','; flags replace the file's list */
    ORBIT_OPT_MERGE = 2,  /* values joined with ','; the file's list first, then the
                           * flags' (for KEY=VALUE lists where a later key wins) */
} orbit_opt_repeat_t;

typedef struct {
    const char *name; /* without the leading "--" */
    const char *arg;  /* metavariable ("MS"), or NULL for a switch */
    const char *help;
    orbit_opt_repeat_t repeat;
} orbit_opt_t;

typedef struct {
    const char *prog;        /* "orbit-shard" */
    const char *summary;     /* one line on what it is */
    const char *usage;       /* "[options]" or "view summary|nodes ..." */
    const char *section;     /* ZPL section holding the same keys ("shard") */
    const orbit_opt_t *opts; /* terminated by a zeroed entry */
} orbit_cli_t;

/* orbit_cli_parse's results when --help or --version was printed on stdout
 * (the caller exits 0). */
#define ORBIT_CLI_HELP    1
#define ORBIT_CLI_VERSION 2

/* Parse argv. Returns 0 with *values set (destroy with zhashx_destroy) and
 * *first_positional the index of the first non-option argument;
 * ORBIT_CLI_HELP or ORBIT_CLI_VERSION when the first of those flags was
 * reached (nothing after it is looked at); -1 with a one-line reason in err
 * (exit 2). --log-level (flag or file) is applied to orbit_log_level, and
 * only on success.
 *
 * The config file: the children of cli->section are option names (and
 * log-level) with values; a repeatable option may instead hold a section of
 * KEY = VALUE children, read as "KEY=VALUE" values in order. A switch reads
 * 1/true/yes as given, 0/false/no as not given. Errors: an unreadable file,
 * invalid ZPL, a key in the section that is not an option, a key without a
 * value, a switch with another value. Other sections are not looked at. */
int orbit_cli_parse(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                    int *first_positional, char *err, size_t errlen);

/* Same, but options and positional arguments may be interleaved (as in
 * "orbitctl view nodes --status alive"): positionals are collected in pos
 * (up to maxpos, pointers into argv) and counted in *npos. */
int orbit_cli_parse_mixed(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                          char **pos, int maxpos, int *npos, char *err, size_t errlen);

/* Raw value or NULL. */
const char *orbit_cli_str(zhashx_t *values, const char *name);
/* The values of a repeatable option one by one, in the order they were
 * given (for ORBIT_OPT_MERGE the file's first), for values that may hold ','
 * themselves (a value holding a newline reads as several): a new list of
 * strings (autofree) that the caller destroys with zlist_destroy, or NULL
 * when the option is absent or not repeatable (or out of memory). */
zlist_t *orbit_cli_list(zhashx_t *values, const char *name);
/* Integer option within [min, max] (decimal digits only); def when absent.
 * Returns -1 with a reason in err, *out untouched. */
int orbit_cli_u32(zhashx_t *values, const char *name, uint32_t min, uint32_t max, uint32_t def,
                  uint32_t *out, char *err, size_t errlen);
bool orbit_cli_flag(zhashx_t *values, const char *name);

/* Exit with status 2 after printing "prog: reason" on stderr. */
void orbit_cli_die(const char *prog, const char *reason) __attribute__((noreturn));

#endif
