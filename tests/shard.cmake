# shard: unit tests of aggregation, the node table, the subtree and the
# pending-request ring.
orbit_unit_test(test_shard_agg orbit_shard)
orbit_unit_test(test_shard_nodes orbit_shard)
orbit_unit_test(test_shard_subtree orbit_shard)
orbit_unit_test(test_shard_pending orbit_shard)
