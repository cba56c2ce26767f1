# ledger: unit tests of the Ephemeris state machine (apply, reads, hash,
# history, snapshots) on temporary LMDB environments.
orbit_unit_test(test_ledger orbit_ledger)
