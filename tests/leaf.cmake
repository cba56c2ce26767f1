# leaf.cmake: the leaf's tests (included from tests/CMakeLists.txt).
include_guard(GLOBAL)
if(NOT TARGET PkgConfig::CMOCKA)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()

# A stand-in libnvidia-ml.so steered by FAKE_NVML_* variables.
add_library(fake_nvml SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_nvml.c)
target_include_directories(fake_nvml PRIVATE ${PROJECT_SOURCE_DIR}/leaf)

foreach(t test_leaf_procfs test_leaf_nvml test_leaf_link test_leaf_config test_leaf_agent
          test_leaf_home test_leaf_capsule test_leaf_desired test_leaf_exec)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
  target_link_libraries(${t} PRIVATE orbit_leaf PkgConfig::CMOCKA)
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES LABELS unit TIMEOUT 60)
endforeach()
add_dependencies(test_leaf_nvml fake_nvml)
add_dependencies(test_leaf_agent fake_nvml)
target_compile_definitions(test_leaf_nvml PRIVATE FAKE_NVML_PATH="$<TARGET_FILE:fake_nvml>")
target_compile_definitions(test_leaf_agent PRIVATE FAKE_NVML_PATH="$<TARGET_FILE:fake_nvml>")

add_test(NAME leaf_cli COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/leaf_cli.sh $<TARGET_FILE:orbit-leaf>)
set_tests_properties(leaf_cli PROPERTIES LABELS integration TIMEOUT 60)

# orbit-sim --root and orbit-leaf --root against 3 root replicas and 2 shards
# declared in the topology: discovery, re-home of only the moved rack,
# failover and return.
add_test(NAME sim_root COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sim_root.sh)
set_tests_properties(sim_root PROPERTIES LABELS integration TIMEOUT 120
                     ENVIRONMENT "BIN=${CMAKE_BINARY_DIR}")

# orbit-leaf --root runs the capsules placed on its node (3 replicas, a shard,
# commitments proposed by hand): start, exact-node filter, exit, revocation,
# failures with reasons, no capsule outliving the leaf.
add_test(NAME exec_leaf COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/exec_leaf.sh)
set_tests_properties(exec_leaf PROPERTIES LABELS integration TIMEOUT 120
                     ENVIRONMENT "BIN=${CMAKE_BINARY_DIR}")
