# consensus: the Raft seam. Unit tests on raft's deterministic in-memory
# fixture; three replicas over TCP on loopback in one process.
orbit_unit_test(test_consensus_fixture orbit_consensus)
orbit_unit_test(test_consensus_io orbit_consensus)

add_executable(test_consensus_uv test_consensus_uv.c)
target_link_libraries(test_consensus_uv PRIVATE PkgConfig::CMOCKA orbit_consensus)
add_test(NAME test_consensus_uv COMMAND test_consensus_uv)
set_tests_properties(test_consensus_uv PROPERTIES LABELS integration TIMEOUT 120)

# orbit-root's posix_fallocate for raft's segments (root/consensus_segments.c
# is part of the orbit-root executable, not of a library).
add_executable(test_consensus_segments test_consensus_segments.c ../root/consensus_segments.c)
target_link_libraries(test_consensus_segments PRIVATE PkgConfig::CMOCKA ${CMAKE_DL_LIBS})
add_test(NAME test_consensus_segments COMMAND test_consensus_segments)
set_tests_properties(test_consensus_segments PROPERTIES LABELS unit TIMEOUT 120)

# orbit-root itself must export them, or libraft binds libc's instead.
add_test(NAME orbit_root_interposes
         COMMAND sh -c "nm -D --defined-only \"$1\" | grep -qw posix_fallocate && nm -D --defined-only \"$1\" | grep -qw syscall" sh $<TARGET_FILE:orbit-root>)
set_tests_properties(orbit_root_interposes PROPERTIES LABELS unit TIMEOUT 30)
