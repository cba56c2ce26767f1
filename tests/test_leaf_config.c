/* test_leaf_config: orbit-leaf's flag and ZPL parsing, every bad flag included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "leaf_capsule.h"
#include "leaf_config.h"
#include "leaf_nvml.h"
#include "orbit_err.h"

#define MAXARGS 32

typedef struct {
    orbit_leaf_config_t cfg;
    char err[512];
    char file[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_config_close(&f->cfg);
    orbit_leaf_config_close(&f->cfg); /* idempotent */
    if (f->file[0])
        unlink(f->file);
    free(f);
    return 0;
}

/* Parse a NULL-terminated list of arguments (program name added). */
static int parse(fixture_t *f, ...)
{
    char *argv[MAXARGS];
    int argc = 0;
    argv[argc++] = "orbit-leaf";
    va_list ap;
    va_start(ap, f);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < MAXARGS - 1;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    orbit_leaf_config_close(&f->cfg);
    f->err[0] = '\0';
    return orbit_leaf_config_parse(argc, argv, &f->cfg, f->err, sizeof f->err);
}

/* Expect EINVAL with a one-line reason containing `want`. */
#define BAD(f, want, ...)                                                                          \
    do {                                                                                           \
        int rc_ = parse(f, __VA_ARGS__, (char *)NULL);                                             \
        if (rc_ != ORBIT_EINVAL)                                                                   \
            fail_msg("expected EINVAL, got %d", rc_);                                              \
        if (!strstr((f)->err, want))                                                               \
            fail_msg("reason '%s' lacks '%s'", (f)->err, want);                                    \
        assert_null(strchr((f)->err, '\n'));                                                       \
    } while (0)

#define SHARD "--shard", "tcp://127.0.0.1:7400"

static void minimal_with_defaults(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "--node", "n1", SHARD, (char *)NULL), ORBIT_OK);
    assert_string_equal(f->cfg.node, "n1");
    assert_int_equal(f->cfg.nshards, 1);
    assert_string_equal(f->cfg.shards[0], "tcp://127.0.0.1:7400");
    assert_int_equal(f->cfg.interval_ms, 1000);
    assert_int_equal(f->cfg.full_every, 30);
    assert_null(f->cfg.nvml_lib);
    assert_null(f->cfg.proc_root);
    assert_int_equal(f->cfg.log_level, ORBIT_LOG_INFO);
    assert_string_equal(f->cfg.labels, "");
    assert_int_equal(f->cfg.xid_window_s, ORBIT_LEAF_XID_WINDOW_S);
    assert_int_equal(f->cfg.xid_critical_window_s, ORBIT_LEAF_XID_CRITICAL_WINDOW_S);
    assert_null(f->cfg.config_file);
    assert_false(f->cfg.help || f->cfg.version);
}

static void every_flag(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "--node", "gpu-17.r1", "--shard",
                           "tcp://10.0.0.1:7400,ipc:///tmp/s.sock,inproc://x", "--label", "zone=z1",
                           "--label", "rack=r1", "--label=rack=r2", "--interval-ms", "10",
                           "--full-every=5", "--nvml-lib", "/opt/nvml.so", "--proc-root",
                           "/host/proc", "--log-level", "debug", (char *)NULL),
                     ORBIT_OK);
    assert_string_equal(f->cfg.node, "gpu-17.r1");
    assert_int_equal(f->cfg.nshards, 3);
    assert_string_equal(f->cfg.shards[1], "ipc:///tmp/s.sock");
    assert_string_equal(f->cfg.labels, "rack=r2\nzone=z1\n"); /* sorted, last wins */
    assert_int_equal(f->cfg.interval_ms, 10);
    assert_int_equal(f->cfg.full_every, 5);
    assert_string_equal(f->cfg.nvml_lib, "/opt/nvml.so");
    assert_string_equal(f->cfg.proc_root, "/host/proc");
    assert_int_equal(f->cfg.log_level, ORBIT_LOG_DEBUG);
    assert_int_equal(parse(f, SHARD, "--interval-ms", "3600000", (char *)NULL), ORBIT_OK);
    assert_int_equal(f->cfg.interval_ms, 3600000);
    assert_int_equal(
        parse(f, SHARD, "--xid-window-s", "30", "--xid-critical-window-s=604800", (char *)NULL),
        ORBIT_OK);
    assert_int_equal(f->cfg.xid_window_s, 30);
    assert_int_equal(f->cfg.xid_critical_window_s, 604800);
}

static void label_values_may_hold_commas(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, SHARD, "--label", "nics=ib0,ib1", "--label", "rack=r1", (char *)NULL),
                     ORBIT_OK);
    assert_string_equal(f->cfg.labels, "nics=ib0,ib1\nrack=r1\n");
    /* Each --label is still checked on its own. */
    BAD(f, "bad label 'r1'", SHARD, "--label", "rack=a", "--label", "r1");
}

static void node_defaults_to_host_name(void **state)
{
    fixture_t *f = *state;
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    int rc = parse(f, SHARD, (char *)NULL);
    if (orbit_name_valid(host)) {
        assert_int_equal(rc, ORBIT_OK);
        assert_string_equal(f->cfg.node, host);
    } else {
        assert_int_equal(rc, ORBIT_EINVAL);
        assert_non_null(strstr(f->err, "--node"));
    }
}

static void help_and_version(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "--help", (char *)NULL), ORBIT_OK);
    assert_true(f->cfg.help);
    assert_int_equal(parse(f, "--version", (char *)NULL), ORBIT_OK);
    assert_true(f->cfg.version);
    /* no --shard needed, other values not checked */
    assert_int_equal(parse(f, "--interval-ms", "1", "--version", (char *)NULL), ORBIT_OK);
    BAD(f, "takes no value", "--help=yes");
}

static void bad_flags(void **state)
{
    fixture_t *f = *state;
    BAD(f, "unknown option '--bogus'", SHARD, "--bogus");
    BAD(f, "unknown option '--shards'", "--shards", "tcp://127.0.0.1:1");
    BAD(f, "unexpected argument 'extra'", SHARD, "extra");
    BAD(f, "--shard needs a value", "--shard");
    BAD(f, "--node needs a value", SHARD, "--node");
    BAD(f, "--shard or --root is required", "--node", "n1");
    BAD(f, "--root and --shard exclude each other", SHARD, "--root", "tcp://127.0.0.1:7000",
        "--label", "rack=r1");
    BAD(f, "--root needs this node's rack", "--node", "n1", "--root", "tcp://127.0.0.1:7000");
    BAD(f, "--root needs this node's rack", "--root", "tcp://127.0.0.1:7000", "--label", "zone=z1");
    BAD(f, "--root: malformed endpoint 'tcp://nohost'", "--root", "tcp://127.0.0.1:1,tcp://nohost",
        "--label", "rack=r1");
    BAD(f, "--root needs a value", "--root");
}

static void write_file(fixture_t *f, const char *text);

static void root_mode(void **state)
{
    fixture_t *f = *state;
    char rack[32];
    assert_int_equal(parse(f, "--node", "n1", "--root", "tcp://127.0.0.1:7000,tcp://127.0.0.1:7001",
                           "--label", "rack=r7", (char *)NULL),
                     ORBIT_OK);
    assert_string_equal(f->cfg.roots, "tcp://127.0.0.1:7000,tcp://127.0.0.1:7001");
    assert_int_equal(f->cfg.nshards, 0);
    assert_true(orbit_leaf_config_rack(&f->cfg, rack, sizeof rack));
    assert_string_equal(rack, "r7");
    /* The same from the file. */
    write_file(f, "leaf\n"
                  "    node = n2\n"
                  "    root = \"tcp://127.0.0.1:7000\"\n"
                  "    label\n"
                  "        rack = r3\n");
    assert_int_equal(parse(f, "--config", f->file, (char *)NULL), ORBIT_OK);
    assert_string_equal(f->cfg.roots, "tcp://127.0.0.1:7000");
    assert_true(orbit_leaf_config_rack(&f->cfg, NULL, 0));
    /* A file's root and a flag's shard: both modes, refused. */
    BAD(f, "exclude each other", "--config", f->file, SHARD);
    /* --shard mode has no rack requirement. */
    assert_int_equal(parse(f, SHARD, (char *)NULL), ORBIT_OK);
    assert_false(orbit_leaf_config_rack(&f->cfg, rack, sizeof rack));
}

#define ROOT "--root", "tcp://127.0.0.1:7000", "--label", "rack=r1"

static void capsule_options(void **state)
{
    fixture_t *f = *state;
    /* --root runs capsules by default, with the runner's defaults. */
    assert_int_equal(parse(f, "--node", "n1", ROOT, (char *)NULL), ORBIT_OK);
    assert_true(f->cfg.capsules);
    assert_null(f->cfg.capsule_log_dir);
    assert_null(f->cfg.cgroup_parent);
    assert_false(f->cfg.no_cgroups);
    assert_int_equal(f->cfg.stop_grace_ms, ORBIT_LEAF_CAPSULE_GRACE_MS);
    /* --shard never does (no ledger to read placements from). */
    assert_int_equal(parse(f, "--node", "n1", SHARD, (char *)NULL), ORBIT_OK);
    assert_false(f->cfg.capsules);
    assert_int_equal(parse(f, "--node", "n1", ROOT, "--no-capsules", (char *)NULL), ORBIT_OK);
    assert_false(f->cfg.capsules);
    assert_int_equal(parse(f, "--node", "n1", ROOT, "--capsule-log-dir", "/tmp", "--cgroup-parent",
                           "orbit-test.slice", "--no-cgroups", "--stop-grace-ms", "250",
                           (char *)NULL),
                     ORBIT_OK);
    assert_true(f->cfg.capsules);
    assert_string_equal(f->cfg.capsule_log_dir, "/tmp");
    assert_string_equal(f->cfg.cgroup_parent, "orbit-test.slice");
    assert_true(f->cfg.no_cgroups);
    assert_int_equal(f->cfg.stop_grace_ms, 250);
    /* The same from the file. */
    write_file(f, "leaf\n"
                  "    node = n2\n"
                  "    root = \"tcp://127.0.0.1:7000\"\n"
                  "    capsule-log-dir = /tmp\n"
                  "    no-cgroups = true\n"
                  "    stop-grace-ms = 1000\n"
                  "    label\n"
                  "        rack = r3\n");
    assert_int_equal(parse(f, "--config", f->file, (char *)NULL), ORBIT_OK);
    assert_true(f->cfg.capsules);
    assert_string_equal(f->cfg.capsule_log_dir, "/tmp");
    assert_true(f->cfg.no_cgroups);
    assert_int_equal(f->cfg.stop_grace_ms, 1000);
    /* Refused. */
    BAD(f, "--capsule-log-dir needs --root", SHARD, "--capsule-log-dir", "/tmp");
    BAD(f, "--no-cgroups needs --root", SHARD, "--no-cgroups");
    BAD(f, "--stop-grace-ms needs --root", SHARD, "--stop-grace-ms", "100");
    BAD(f, "--cgroup-parent needs --root", SHARD, "--cgroup-parent", "x.slice");
    BAD(f, "--stop-grace-ms", ROOT, "--stop-grace-ms", "0");
    BAD(f, "--stop-grace-ms", ROOT, "--stop-grace-ms", "600001");
    BAD(f, "is not a directory", ROOT, "--capsule-log-dir", "/nonexistent/logs");
    BAD(f, "is not a directory", ROOT, "--capsule-log-dir", "/dev/null");
    BAD(f, "--capsule-log-dir: empty path", ROOT, "--capsule-log-dir", "");
    BAD(f, "--cgroup-parent: empty path", ROOT, "--cgroup-parent", "");
}

static void bad_intervals(void **state)
{
    fixture_t *f = *state;
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "9");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "3600001");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "-5");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "10x");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", "99999999999999999999");
    BAD(f, "--full-every", SHARD, "--full-every", "0");
    BAD(f, "--full-every", SHARD, "--full-every", "100001");
    BAD(f, "--interval-ms", SHARD, "--interval-ms", " 50");
    BAD(f, "--xid-window-s", SHARD, "--xid-window-s", "0");
    BAD(f, "--xid-window-s", SHARD, "--xid-window-s", "604801");
    BAD(f, "--xid-critical-window-s", SHARD, "--xid-critical-window-s", "0");
}

static void bad_endpoints(void **state)
{
    fixture_t *f = *state;
    BAD(f, "malformed endpoint 'tcp://nohost'", "--shard", "tcp://nohost");
    BAD(f, "malformed endpoint 'udp://1.2.3.4:5'", "--shard", "udp://1.2.3.4:5");
    BAD(f, "malformed endpoint 'tcp://h:70000'", "--shard", "tcp://h:1,tcp://h:70000");
    BAD(f, "malformed endpoint ''", "--shard", "tcp://h:1,");
    BAD(f, "more than", "--shard",
        "tcp://h:1,tcp://h:2,tcp://h:3,tcp://h:4,tcp://h:5,tcp://h:6,tcp://h:7,tcp://h:8,"
        "tcp://h:9,tcp://h:10,tcp://h:11,tcp://h:12,tcp://h:13,tcp://h:14,tcp://h:15,tcp://h:16,"
        "tcp://h:17");
}

static void bad_names_and_labels(void **state)
{
    fixture_t *f = *state;
    BAD(f, "invalid node name", SHARD, "--node", "bad name");
    BAD(f, "invalid node name", SHARD, "--node", "");
    BAD(f, "invalid node name", SHARD, "--node",
        "a234567890123456789012345678901234567890123456789012345678901234");
    BAD(f, "bad label 'rack'", SHARD, "--label", "rack");
    BAD(f, "bad label '=r1'", SHARD, "--label", "=r1");
    BAD(f, "bad label 'rack='", SHARD, "--label", "rack=");
    BAD(f, "bad label", SHARD, "--label", "rack=a\tb");
    BAD(f, "--log-level", SHARD, "--log-level", "loud");
    BAD(f, "--nvml-lib", SHARD, "--nvml-lib", "");
    BAD(f, "--proc-root", SHARD, "--proc-root", "");
}

static void write_file(fixture_t *f, const char *text)
{
    snprintf(f->file, sizeof f->file, "/tmp/orbit-leaf-cfg-XXXXXX");
    int fd = mkstemp(f->file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void config_file_then_flags(void **state)
{
    fixture_t *f = *state;
    write_file(f, "leaf\n"
                  "    node = from-file\n"
                  "    shard = \"tcp://127.0.0.1:7400,tcp://127.0.0.1:7401\"\n"
                  "    interval-ms = 500\n"
                  "    xid-window-s = 120\n"
                  "    log-level = warn\n"
                  "    label\n"
                  "        rack = r1\n"
                  "        zone = z1\n");
    assert_int_equal(parse(f, "--config", f->file, (char *)NULL), ORBIT_OK);
    assert_string_equal(f->cfg.node, "from-file");
    assert_int_equal(f->cfg.nshards, 2);
    assert_string_equal(f->cfg.shards[1], "tcp://127.0.0.1:7401");
    assert_int_equal(f->cfg.interval_ms, 500);
    assert_int_equal(f->cfg.log_level, ORBIT_LOG_WARN);
    assert_int_equal(f->cfg.xid_window_s, 120);
    assert_string_equal(f->cfg.config_file, f->file);
    assert_string_equal(f->cfg.labels, "rack=r1\nzone=z1\n");
    /* Flags override, wherever --config appears. */
    assert_int_equal(parse(f, "--node", "cli", "--label", "rack=r9", "--config", f->file, "--shard",
                           "tcp://127.0.0.1:9", (char *)NULL),
                     ORBIT_OK);
    assert_string_equal(f->cfg.node, "cli");
    assert_int_equal(f->cfg.nshards, 1);
    assert_string_equal(f->cfg.labels, "rack=r9\nzone=z1\n");
    assert_int_equal(f->cfg.interval_ms, 500);
}

static void bad_config_files(void **state)
{
    fixture_t *f = *state;
    BAD(f, "cannot read config file '/nonexistent/leaf.cfg'", "--config", "/nonexistent/leaf.cfg");
    BAD(f, "--config needs a value", "--config");
    write_file(f, "leaf\n    intervall-ms = 500\n");
    BAD(f, "unknown key leaf/intervall-ms", "--config", f->file, SHARD);
    unlink(f->file);
    write_file(f, "leaf\n    interval-ms = 5\n");
    BAD(f, "--interval-ms", "--config", f->file, SHARD);
    unlink(f->file);
    write_file(f, "leaf\n    label\n        rack = \"a=b\"\n");
    BAD(f, "bad label", "--config", f->file, SHARD);
    unlink(f->file);
    write_file(f, "leaf\n    shard = \"tcp://nohost\"\n");
    BAD(f, "malformed endpoint 'tcp://nohost'", "--config", f->file);
    unlink(f->file);
    write_file(f, "leaf\n    nvml-lib =\n");
    BAD(f, "leaf/nvml-lib has no value", "--config", f->file, SHARD);
    unlink(f->file);
    write_file(f, "leaf\n    root = \"tcp://127.0.0.1:7000\"\n");
    BAD(f, "--root needs this node's rack", "--config", f->file);
    unlink(f->file);
    write_file(f, "leaf\n    xid-critical-window-s = 0\n");
    BAD(f, "--xid-critical-window-s", "--config", f->file, SHARD);
    unlink(f->file);
    write_file(f, "leaf\n   node = n1\n");
    BAD(f, "not valid ZPL", "--config", f->file, SHARD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(minimal_with_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(every_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(label_values_may_hold_commas, setup, teardown),
        cmocka_unit_test_setup_teardown(node_defaults_to_host_name, setup, teardown),
        cmocka_unit_test_setup_teardown(help_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(root_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_intervals, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_names_and_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(config_file_then_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_config_files, setup, teardown),
        cmocka_unit_test_setup_teardown(capsule_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
