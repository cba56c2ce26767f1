# ledger: unit tests of the Ephemeris state machine (apply, reads, hash,
# history, snapshots) on temporary LMDB environments.
orbit_unit_test(test_ledger orbit_ledger)
# The thread that faults in the pages past the data file's last page.
orbit_unit_test(test_ledger_prefault orbit_ledger)
