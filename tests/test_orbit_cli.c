/* test_orbit_cli: the command-line contract shared by every binary — flags,
 * --flag=value, errors, repeatable options, ZPL config files overridden by
 * flags, typed getters, --log-level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "orbit_cli.h"
#include "orbit_log.h"

static const orbit_opt_t opts[] = {
    {"listen", "ENDPOINT", "where to listen", false},
    {"upstream", "ENDPOINT", "parents", true},
    {"interval-ms", "MS", "report interval", false},
    {"label", "K=V", "a label", true},
    {"json", NULL, "print JSON", false},
    {"tag", "K=V", "a tag; flags add to the file's", ORBIT_OPT_MERGE},
    {NULL, NULL, NULL, false},
};

static const orbit_cli_t cli = {
    .prog = "orbit-test",
    .summary = "a test program",
    .usage = "[options]",
    .section = "shard",
    .opts = opts,
};

typedef struct {
    zhashx_t *values;
    char err[256];
    char path[64]; /* config file, removed by teardown */
    orbit_log_level_t saved_level;
} cli_fx_t;

static int cli_setup(void **state)
{
    cli_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->saved_level = orbit_log_level;
    *state = fx;
    return 0;
}

static int cli_teardown(void **state)
{
    cli_fx_t *fx = *state;
    zhashx_destroy(&fx->values);
    if (fx->path[0])
        unlink(fx->path);
    orbit_log_level = fx->saved_level;
    free(fx);
    return 0;
}

/* Parse a NULL-terminated argument list (argv[0] is added). */
static int parse_v(cli_fx_t *fx, int *first, char **args)
{
    char *argv[32] = {"orbit-test"};
    int argc = 1;
    while (args[argc - 1]) {
        argv[argc] = args[argc - 1];
        argc++;
    }
    zhashx_destroy(&fx->values);
    fx->err[0] = '\0';
    int dummy;
    return orbit_cli_parse(&cli, argc, argv, &fx->values, first ? first : &dummy, fx->err,
                           sizeof fx->err);
}

#define PARSE(fx, first, ...) parse_v((fx), (first), (char *[]){__VA_ARGS__, NULL})

#define PARSE_FAILS(fx, substring, ...)                                                            \
    do {                                                                                           \
        assert_int_equal(PARSE((fx), NULL, __VA_ARGS__), -1);                                      \
        assert_null((fx)->values);                                                                 \
        if (!strstr((fx)->err, (substring)))                                                       \
            fail_msg("error '%s' does not mention '%s'", (fx)->err, (substring));                  \
    } while (0)

static void write_config(cli_fx_t *fx, const char *text)
{
    snprintf(fx->path, sizeof fx->path, "/tmp/test_orbit_cli_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_parse_flags(void **state)
{
    cli_fx_t *fx = *state;
    int first = 0;
    assert_int_equal(PARSE(fx, &first, "--listen", "tcp://127.0.0.1:7401", "--json",
                           "--interval-ms=250", "view", "summary"),
                     0);
    assert_non_null(fx->values);
    assert_string_equal(orbit_cli_str(fx->values, "listen"), "tcp://127.0.0.1:7401");
    assert_string_equal(orbit_cli_str(fx->values, "interval-ms"), "250");
    assert_true(orbit_cli_flag(fx->values, "json"));
    assert_false(orbit_cli_flag(fx->values, "upstream"));
    assert_null(orbit_cli_str(fx->values, "upstream"));
    assert_int_equal(first, 5); /* argv[5] == "view" */

    /* The last of a non-repeatable option wins; a value may hold '='. */
    assert_int_equal(PARSE(fx, &first, "--listen=a", "--listen", "b=c"), 0);
    assert_string_equal(orbit_cli_str(fx->values, "listen"), "b=c");
    assert_int_equal(first, 4);

    /* "--" ends the options; what follows is positional even if it looks
     * like an option. */
    assert_int_equal(PARSE(fx, &first, "--json", "--", "--listen"), 0);
    assert_int_equal(first, 3);
    assert_null(orbit_cli_str(fx->values, "listen"));

    /* An empty value is a value. */
    assert_int_equal(PARSE(fx, &first, "--listen="), 0);
    assert_string_equal(orbit_cli_str(fx->values, "listen"), "");
}

static void test_parse_errors(void **state)
{
    cli_fx_t *fx = *state;
    PARSE_FAILS(fx, "--listen needs a value", "--json", "--listen");
    PARSE_FAILS(fx, "unknown option '--bogus'", "--bogus");
    PARSE_FAILS(fx, "unknown option '--bogus'", "--bogus=1");
    PARSE_FAILS(fx, "unknown option", "--listenx", "a");
    PARSE_FAILS(fx, "--json takes no value", "--json=yes");
    PARSE_FAILS(fx, "--help takes no value", "--help=yes");
    PARSE_FAILS(fx, "--version takes no value", "--version=1");
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[0] = longname[1] = '-';
    longname[sizeof longname - 1] = '\0';
    PARSE_FAILS(fx, "unknown option", longname);
    /* Errors are one line. */
    assert_null(strchr(fx->err, '\n'));
}

static void test_repeatable_joined(void **state)
{
    cli_fx_t *fx = *state;
    assert_int_equal(PARSE(fx, NULL, "--label", "rack=r1", "--upstream", "tcp://a:1",
                           "--label=zone=z1", "--upstream=tcp://b:2", "--label", "gpu=h100"),
                     0);
    assert_string_equal(orbit_cli_str(fx->values, "label"), "rack=r1,zone=z1,gpu=h100");
    assert_string_equal(orbit_cli_str(fx->values, "upstream"), "tcp://a:1,tcp://b:2");
}

static void test_config_file_and_override(void **state)
{
    cli_fx_t *fx = *state;
    write_config(fx, "#   Orbit test configuration\n"
                     "shard\n"
                     "    listen = \"tcp://127.0.0.1:7999\"\n"
                     "    interval-ms = 500\n"
                     "    upstream = \"tcp://root:7400\"\n"
                     "    label\n"
                     "        rack = r7\n"
                     "        zone = z3\n"
                     "leaf\n"
                     "    json = 1\n");
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path, "--interval-ms", "250"), 0);
    /* The flag wins over the file ... */
    assert_string_equal(orbit_cli_str(fx->values, "interval-ms"), "250");
    /* ... the file fills in the rest ... */
    assert_string_equal(orbit_cli_str(fx->values, "listen"), "tcp://127.0.0.1:7999");
    assert_string_equal(orbit_cli_str(fx->values, "upstream"), "tcp://root:7400");
    /* ... a section of pairs becomes a repeatable list ... */
    assert_string_equal(orbit_cli_str(fx->values, "label"), "rack=r7,zone=z3");
    /* ... and other programs' sections are not ours. */
    assert_false(orbit_cli_flag(fx->values, "json"));

    /* A repeatable flag replaces the file's list rather than adding to it. */
    assert_int_equal(PARSE(fx, NULL, "--label", "rack=r1", "--config", fx->path), 0);
    assert_string_equal(orbit_cli_str(fx->values, "label"), "rack=r1");
    assert_string_equal(orbit_cli_str(fx->values, "interval-ms"), "500");

    uint32_t v = 0;
    assert_int_equal(
        orbit_cli_u32(fx->values, "interval-ms", 10, 60000, 1000, &v, fx->err, sizeof fx->err), 0);
    assert_int_equal(v, 500);
}

static void test_config_file_missing(void **state)
{
    cli_fx_t *fx = *state;
    PARSE_FAILS(fx, "cannot read config file '/nonexistent/orbit.cfg'", "--config",
                "/nonexistent/orbit.cfg");
    PARSE_FAILS(fx, "cannot read config file '/tmp': not a regular file", "--config", "/tmp");
}

static void test_config_file_strict(void **state)
{
    cli_fx_t *fx = *state;
    /* Every key of our section must be an option with a value; other
     * sections are not ours to judge. */
    write_config(fx, "shard\n    intervall-ms = 500\n");
    PARSE_FAILS(fx, "unknown key shard/intervall-ms", "--config", fx->path);
    assert_non_null(strstr(fx->err, fx->path));
    unlink(fx->path);
    write_config(fx, "shard\n    listen =\n");
    PARSE_FAILS(fx, "shard/listen has no value", "--config", fx->path);
    unlink(fx->path);
    write_config(fx, "shard\n    config = \"/etc/other.cfg\"\n");
    PARSE_FAILS(fx, "unknown key shard/config", "--config", fx->path);
    unlink(fx->path);
    write_config(fx, "shard\n    help = 1\n");
    PARSE_FAILS(fx, "unknown key shard/help", "--config", fx->path);
    unlink(fx->path);
    write_config(fx, "shard\n    listen = a\nleaf\n    anything = 1\n");
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path), 0);
    assert_string_equal(orbit_cli_str(fx->values, "listen"), "a");
    unlink(fx->path);
    /* Indentation must be four spaces: czmq refuses the file. */
    write_config(fx, "shard\n   listen = a\n");
    PARSE_FAILS(fx, "not valid ZPL", "--config", fx->path);
    assert_null(strchr(fx->err, '\n'));
}

static void test_config_file_switches(void **state)
{
    cli_fx_t *fx = *state;
    write_config(fx, "shard\n    json = yes\n");
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path), 0);
    assert_true(orbit_cli_flag(fx->values, "json"));
    unlink(fx->path);
    write_config(fx, "shard\n    json = 0\n");
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path), 0);
    assert_false(orbit_cli_flag(fx->values, "json"));
    /* A switch on the command line wins over "0" in the file. */
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path, "--json"), 0);
    assert_true(orbit_cli_flag(fx->values, "json"));
    unlink(fx->path);
    write_config(fx, "shard\n    json = maybe\n");
    PARSE_FAILS(fx, "shard/json must be 1 or 0, not 'maybe'", "--config", fx->path);
}

static void test_config_file_log_level(void **state)
{
    cli_fx_t *fx = *state;
    orbit_log_level = ORBIT_LOG_INFO;
    write_config(fx, "shard\n    log-level = debug\n");
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path), 0);
    assert_int_equal(orbit_log_level, ORBIT_LOG_DEBUG);
    /* The flag wins. */
    assert_int_equal(PARSE(fx, NULL, "--log-level", "warn", "--config", fx->path), 0);
    assert_int_equal(orbit_log_level, ORBIT_LOG_WARN);
    unlink(fx->path);
    write_config(fx, "shard\n    log-level = loud\n");
    PARSE_FAILS(fx, "--log-level must be error, warn, info or debug, not 'loud'", "--config",
                fx->path);
    assert_int_equal(orbit_log_level, ORBIT_LOG_WARN); /* untouched on failure */
}

/* The list of a repeatable option as "a|b|c". */
static void list_text(zhashx_t *values, const char *name, char *out, size_t size)
{
    zlist_t *list = orbit_cli_list(values, name);
    out[0] = '\0';
    if (!list) {
        snprintf(out, size, "(none)");
        return;
    }
    bool first = true;
    for (char *s = zlist_first(list); s; s = zlist_next(list), first = false)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", first ? "" : "|", s);
    zlist_destroy(&list);
}

static void test_merge_and_list(void **state)
{
    cli_fx_t *fx = *state;
    char text[256];
    write_config(fx, "shard\n"
                     "    tag\n"
                     "        rack = r1\n"
                     "        zone = z1\n"
                     "    label\n"
                     "        rack = r7\n");
    /* ORBIT_OPT_MERGE: the file's values first, then the flags'; a value
     * may hold ',' and still come back whole from orbit_cli_list. */
    assert_int_equal(PARSE(fx, NULL, "--tag", "rack=r9", "--config", fx->path, "--tag", "gpus=a,b",
                           "--label", "x=1,2"),
                     0);
    assert_string_equal(orbit_cli_str(fx->values, "tag"), "rack=r1,zone=z1,rack=r9,gpus=a,b");
    list_text(fx->values, "tag", text, sizeof text);
    assert_string_equal(text, "rack=r1|zone=z1|rack=r9|gpus=a,b");
    /* ORBIT_OPT_REPEAT: the flags' list replaces the file's. */
    list_text(fx->values, "label", text, sizeof text);
    assert_string_equal(text, "x=1,2");
    /* The file alone. */
    assert_int_equal(PARSE(fx, NULL, "--config", fx->path), 0);
    list_text(fx->values, "tag", text, sizeof text);
    assert_string_equal(text, "rack=r1|zone=z1");
    list_text(fx->values, "label", text, sizeof text);
    assert_string_equal(text, "rack=r7");
    /* Absent, or not repeatable: no list. */
    assert_int_equal(PARSE(fx, NULL, "--listen", "a,b"), 0);
    list_text(fx->values, "tag", text, sizeof text);
    assert_string_equal(text, "(none)");
    list_text(fx->values, "listen", text, sizeof text);
    assert_string_equal(text, "(none)");
    /* Empty values are kept in place. */
    assert_int_equal(PARSE(fx, NULL, "--tag=", "--tag", "a=1", "--tag="), 0);
    list_text(fx->values, "tag", text, sizeof text);
    assert_string_equal(text, "|a=1|");
}

static void test_u32(void **state)
{
    cli_fx_t *fx = *state;
    uint32_t v = 7;
    assert_int_equal(PARSE(fx, NULL, "--json"), 0);
    /* Absent: the default. */
    assert_int_equal(
        orbit_cli_u32(fx->values, "interval-ms", 10, 100, 42, &v, fx->err, sizeof fx->err), 0);
    assert_int_equal(v, 42);

    static const struct {
        const char *text;
        int ok;
        uint32_t want;
    } cases[] = {
        {"10", 1, 10}, {"100", 1, 100},      {"0050", 1, 50},
        {"9", 0, 0},   {"101", 0, 0},        {"-1", 0, 0},
        {"", 0, 0},    {"5x", 0, 0},         {"x5", 0, 0},
        {"1e2", 0, 0}, {"0x20", 0, 0},       {" 50", 0, 0},
        {"+50", 0, 0}, {"4294967306", 0, 0}, {"99999999999999999999999", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--interval-ms=%s", cases[i].text);
        assert_int_equal(PARSE(fx, NULL, arg), 0);
        v = 7;
        fx->err[0] = '\0';
        int rc = orbit_cli_u32(fx->values, "interval-ms", 10, 100, 42, &v, fx->err, sizeof fx->err);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(v, cases[i].want);
        } else {
            if (rc != -1)
                fail_msg("'%s' accepted as %u", cases[i].text, v);
            assert_int_equal(v, 7); /* untouched */
            assert_non_null(strstr(fx->err, "--interval-ms must be an integer in 10..100"));
        }
    }
    /* The full u32 range is usable. */
    assert_int_equal(PARSE(fx, NULL, "--interval-ms=4294967295"), 0);
    assert_int_equal(
        orbit_cli_u32(fx->values, "interval-ms", 0, UINT32_MAX, 0, &v, fx->err, sizeof fx->err), 0);
    assert_int_equal(v, UINT32_MAX);
}

static void test_log_level(void **state)
{
    cli_fx_t *fx = *state;
    orbit_log_level = ORBIT_LOG_INFO;
    PARSE_FAILS(fx, "--log-level must be error, warn, info or debug, not 'loud'", "--log-level",
                "loud");
    assert_int_equal(orbit_log_level, ORBIT_LOG_INFO); /* untouched */
    PARSE_FAILS(fx, "--log-level", "--log-level", "");
    PARSE_FAILS(fx, "--log-level needs a value", "--log-level");
    assert_int_equal(PARSE(fx, NULL, "--log-level", "debug"), 0);
    assert_int_equal(orbit_log_level, ORBIT_LOG_DEBUG);
    assert_int_equal(PARSE(fx, NULL, "--log-level=error"), 0);
    assert_int_equal(orbit_log_level, ORBIT_LOG_ERROR);
}

static void test_help_and_version(void **state)
{
    cli_fx_t *fx = *state;
    /* Both print and ask the caller to exit 0, whatever else is given. */
    assert_int_equal(PARSE(fx, NULL, "--listen", "x", "--help"), ORBIT_CLI_HELP);
    assert_null(fx->values);
    assert_int_equal(PARSE(fx, NULL, "--version", "--bogus"), ORBIT_CLI_VERSION);
    assert_null(fx->values);
    /* An error before them still wins. */
    PARSE_FAILS(fx, "unknown option", "--bogus", "--help");
}

static void test_parse_mixed_positionals(void **state)
{
    cli_fx_t *fx = *state;
    char *argv[] = {"orbitctl", "view", "--json", "nodes", "--label", "rack=r1", "n1"};
    char *pos[3] = {NULL, NULL, NULL};
    int npos = -1;
    assert_int_equal(
        orbit_cli_parse_mixed(&cli, 7, argv, &fx->values, pos, 3, &npos, fx->err, sizeof fx->err),
        0);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[0], "view");
    assert_string_equal(pos[1], "nodes");
    assert_string_equal(pos[2], "n1");
    assert_true(orbit_cli_flag(fx->values, "json"));
    assert_string_equal(orbit_cli_str(fx->values, "label"), "rack=r1");

    /* One positional too many is an error naming it. */
    zhashx_destroy(&fx->values);
    char *pos2[2];
    assert_int_equal(
        orbit_cli_parse_mixed(&cli, 7, argv, &fx->values, pos2, 2, &npos, fx->err, sizeof fx->err),
        -1);
    assert_null(fx->values);
    assert_non_null(strstr(fx->err, "too many arguments at 'n1'"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, cli_setup, cli_teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_flags),
        T(test_parse_errors),
        T(test_repeatable_joined),
        T(test_config_file_and_override),
        T(test_config_file_missing),
        T(test_config_file_strict),
        T(test_config_file_switches),
        T(test_config_file_log_level),
        T(test_merge_and_list),
        T(test_u32),
        T(test_log_level),
        T(test_help_and_version),
        T(test_parse_mixed_positionals),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
