# consensus: the Raft seam. Unit tests on raft's deterministic in-memory
# fixture; three replicas over TCP on loopback in one process.
orbit_unit_test(test_consensus_fixture orbit_consensus)
