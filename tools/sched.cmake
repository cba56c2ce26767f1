# sched.cmake: orbit-sched, the reference scheduler and the reaper;
# included from tools/CMakeLists.txt.
include_guard(GLOBAL)

find_package(Threads REQUIRED)

# The scheduler's parts as a library, so that the tests and the benchmark
# reach them: scoring, rounds, the reaper and the proposer threads.
add_library(orbit_sched STATIC orbit_sched_score.c orbit_sched_plan.c orbit_sched_reaper.c
                               orbit_sched_work.c)
target_include_directories(orbit_sched PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(orbit_sched PUBLIC orbit_sched_view orbit_client orbit_proto
                                         Threads::Threads)

add_executable(orbit-sched orbit_sched_main.c)
target_link_libraries(orbit-sched PRIVATE orbit_sched PkgConfig::JANSSON)
install(TARGETS orbit-sched RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
