# sim.cmake: orbit-sim (simulated leaves) and orbit-bench (ingest, tree and
# ledger benchmarks); included from tools/CMakeLists.txt.
include_guard(GLOBAL)

# The fleet model and the simulator engine, shared by orbit-sim, orbit-bench
# and the tests.
add_library(orbit_sim STATIC orbit_sim_model.c orbit_sim.c orbit_sim_capsules.c)
target_include_directories(orbit_sim PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(orbit_sim PUBLIC orbit_leaf orbit_topology_fetch orbit_sched_view orbit_proto m)

add_executable(orbit-sim orbit_sim_main.c)
target_link_libraries(orbit-sim PRIVATE orbit_sim)
install(TARGETS orbit-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The benchmarks as a library, so that the tests reach their parts.
add_library(orbit_bench STATIC orbit_bench_stats.c orbit_bench_frames.c orbit_bench_proc.c
                               orbit_bench_ingest.c orbit_bench_tree.c
                               orbit_bench_ledger.c orbit_bench_placement.c orbit_bench_sched.c)
target_include_directories(orbit_bench PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(orbit_bench PUBLIC orbit_sim orbit_root orbit_shard orbit_sched_view
                                          PkgConfig::JANSSON)

add_executable(orbit-bench orbit_bench_main.c)
target_link_libraries(orbit-bench PRIVATE orbit_bench)
install(TARGETS orbit-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
