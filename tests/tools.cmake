# tools.cmake: tests of orbit-sim and orbit-bench (included from
# tests/CMakeLists.txt): unit tests of the fleet model and the benchmark
# parts, and loopback scripts with bounded waits.
include_guard(GLOBAL)

orbit_unit_test(test_orbit_sim_model orbit_sim)
orbit_unit_test(test_orbit_bench orbit_bench)
orbit_unit_test(test_orbit_sim_capsules orbit_sim)

# orbit_tools_script_test(NAME LABEL TIMEOUT SCRIPT ARGS...): bash SCRIPT
# with BIN pointing at the build tree.
function(orbit_tools_script_test name label timeout script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout}
                       ENVIRONMENT "BIN=${CMAKE_BINARY_DIR}")
endfunction()

orbit_tools_script_test(sim_integration integration 120 sim_integration.sh)
orbit_tools_script_test(sim_bad_flags integration 60 sim_bad_flags.sh)
orbit_tools_script_test(bench_smoke integration 240 bench_smoke.sh)
