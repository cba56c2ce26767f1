/* Tests of orbit_selector: node selector syntax and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_selector.h"

static void test_valid(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_true(orbit_selector_valid("", &why));
    assert_true(orbit_selector_valid("rack=local", &why));
    assert_true(orbit_selector_valid("gpu=a100,rack=r-1,zone=eu/west:2", &why));
    struct {
        const char *sel, *why;
    } bad[] = {
        {"rack", "selector: want k=v"},
        {"=x", "selector: empty or bad key"},
        {"rack=", "selector: empty or bad value"},
        {"rack=a b", "selector: bad character"},
        {"rack=a,", "selector: trailing comma"},
        {"zone=z,rack=r", "selector keys must be sorted and unique"},
        {"rack=a,rack=b", "selector keys must be sorted and unique"},
        {"rack=a,,zone=b", "selector: empty or bad key"},
        {"ra ck=a", "selector: want k=v"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_false(orbit_selector_valid(bad[i].sel, &why));
        assert_string_equal(why, bad[i].why);
    }
    char big[2048];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(orbit_selector_valid(big, &why));
    assert_string_equal(why, "selector too long");
    char key[80];
    memset(key, 'k', 64);
    strcpy(key + 64, "=v");
    assert_false(orbit_selector_valid(key, &why));
    assert_string_equal(why, "selector key too long");
    assert_false(orbit_selector_valid(NULL, NULL));
}

static void test_matches(void **state)
{
    (void)state;
    const char *labels = "gpu=a100\nrack=local\nzone=z1\n";
    assert_true(orbit_selector_matches("", labels));
    assert_true(orbit_selector_matches(NULL, labels));
    assert_true(orbit_selector_matches("rack=local", labels));
    assert_true(orbit_selector_matches("gpu=a100,zone=z1", labels));
    assert_false(orbit_selector_matches("rack=loc", labels));    /* value prefix */
    assert_false(orbit_selector_matches("rack=local2", labels)); /* longer value */
    assert_false(orbit_selector_matches("rac=local", labels));
    assert_false(orbit_selector_matches("rack=local,zone=z2", labels));
    assert_false(orbit_selector_matches("rack=local", ""));
    assert_false(orbit_selector_matches("rack=local", NULL));
    assert_true(orbit_selector_matches("zone=z1", "zone=z1")); /* last label without newline */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
