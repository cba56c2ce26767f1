# topology: unit tests of the tree model — the ledger's rules and refusals,
# validation, rendezvous stability, candidates, drains and plans — including
# a differential run against the real ledger state machine (hence
# orbit_ledger, on a temporary LMDB environment).
orbit_unit_test(test_topology orbit_topology orbit_ledger m)
orbit_unit_test(test_topology_fetch orbit_topology_fetch)
