# sched.cmake: unit tests of orbit-sched's parts (scoring, rounds, the
# reaper) over hand-built scheduling views; included from
# tests/CMakeLists.txt.
include_guard(GLOBAL)

orbit_unit_test(test_sched_score orbit_sched PkgConfig::JANSSON)
orbit_unit_test(test_sched_plan orbit_sched PkgConfig::JANSSON)
orbit_unit_test(test_sched_reaper orbit_sched PkgConfig::JANSSON)
