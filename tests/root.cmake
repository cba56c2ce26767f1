# root: unit tests of the root view's queries.
orbit_unit_test(test_root_view orbit_root)
