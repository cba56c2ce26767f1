# root: unit tests of the root view's queries.
orbit_unit_test(test_root_view orbit_root)
# The pipelined ledger client against fake replicas on loopback.
orbit_unit_test(test_ledger_pipe orbit_client)
# A follower's entries applied in batches on the applier's thread.
orbit_unit_test(test_ledger_applier orbit_root)
