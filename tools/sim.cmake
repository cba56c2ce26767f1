# sim.cmake: orbit-sim, the leaf simulator; included from tools/CMakeLists.txt.
include_guard(GLOBAL)

# The fleet model and the simulator engine, shared by orbit-sim and the
# tests.
add_library(orbit_sim STATIC orbit_sim_model.c orbit_sim.c)
target_include_directories(orbit_sim PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(orbit_sim PUBLIC orbit_leaf orbit_proto m)

add_executable(orbit-sim orbit_sim_main.c)
target_link_libraries(orbit-sim PRIVATE orbit_sim)
install(TARGETS orbit-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
