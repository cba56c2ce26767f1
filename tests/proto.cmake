# proto: unit tests of the envelope, node codec, sockets, command line and
# logging.
orbit_unit_test(test_orbit_wire orbit_proto)
orbit_unit_test(test_orbit_node orbit_proto)
orbit_unit_test(test_orbit_cli orbit_proto)
orbit_unit_test(test_orbit_log orbit_proto)
orbit_unit_test(test_orbit_sock orbit_proto)
orbit_unit_test(test_orbit_selector orbit_proto)
