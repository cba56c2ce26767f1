# root: unit tests of the root view's queries.
orbit_unit_test(test_root_view orbit_root)
# The pipelined ledger client against fake replicas on loopback.
orbit_unit_test(test_ledger_pipe orbit_client)
