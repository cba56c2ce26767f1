# sched_view: unit tests of the scheduling view (commitments, own notes,
# telemetry rows, snapshots of a real ledger).
orbit_unit_test(test_sched_view orbit_sched_view)
