# shard: unit tests of aggregation, the node table, the subtree and the
# pending-request ring; a shard's place in the topology.
orbit_unit_test(test_shard_agg orbit_shard)
orbit_unit_test(test_shard_nodes orbit_shard)
orbit_unit_test(test_shard_subtree orbit_shard)
orbit_unit_test(test_shard_pending orbit_shard)
# discovery mode: place, refetch schedule, epochs in acks, re-homing away.
orbit_unit_test(test_shard_topology orbit_shard)
