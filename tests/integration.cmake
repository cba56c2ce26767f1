# Multi-process tests on loopback (bash + jq), each with bounded waits.
add_executable(fuzz_frames fuzz_frames.c)
target_link_libraries(fuzz_frames PRIVATE orbit_proto)

function(orbit_script_test name label timeout script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout}
                       ENVIRONMENT "BIN=${CMAKE_BINARY_DIR}")
endfunction()

orbit_script_test(tree_totals integration 120 tree.sh totals)
orbit_script_test(tree_shard_failure fault 120 tree.sh failure)
orbit_script_test(shard_fuzz fault 120 fuzz.sh)
orbit_script_test(leaf_e2e integration 120 leaf_e2e.sh)

add_executable(ledger_load ledger_load.c)
target_link_libraries(ledger_load PRIVATE orbit_root)
orbit_script_test(ledger_basic integration 180 ledger_cluster.sh basic)
orbit_script_test(ledger_failover fault 180 ledger_cluster.sh failover)
orbit_script_test(ledger_compaction integration 180 ledger_cluster.sh compaction)
orbit_script_test(ledger_members integration 180 ledger_cluster.sh members)
orbit_script_test(topology_cli integration 120 topology_cli.sh)
orbit_script_test(mission_cli integration 120 mission_cli.sh)
orbit_script_test(topology_rehome integration 180 topology.sh rehome)
orbit_script_test(topology_drain integration 180 topology.sh drain)
orbit_script_test(topology_failover fault 180 topology.sh failover)
