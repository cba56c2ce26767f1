# execution.cmake: the scheduling and execution plane end to end (included
# from tests/CMakeLists.txt): a mission running on this machine's leaf,
# four schedulers over a simulated fleet with the reaper, and the reaper's
# lease fencing.
include_guard(GLOBAL)

function(orbit_exec_script_test name label timeout script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout}
                       ENVIRONMENT "BIN=${CMAKE_BINARY_DIR}")
endfunction()

orbit_exec_script_test(mission_run integration 150 mission_run.sh)
orbit_exec_script_test(sched_fleet integration 300 sched_fleet.sh)
orbit_exec_script_test(sched_reaper fault 200 sched_reaper.sh)
