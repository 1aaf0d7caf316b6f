# The nbd handler against real nbdkit servers: the test plays the core's
# ring thread (accessors, completions and the loop over watched fds), so it
# links neither the core nor handler_harness.c.
add_executable(test_handler_nbd unit/test_handler_nbd.c unit/handler_nbd_fixture.c)
target_compile_definitions(test_handler_nbd PRIVATE _GNU_SOURCE
  HANDLER_NBD_PATH="$<TARGET_FILE:handler_nbd>")
target_include_directories(test_handler_nbd PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(test_handler_nbd PRIVATE PkgConfig::CMOCKA ${CMAKE_DL_LIBS})
set_target_properties(test_handler_nbd PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(test_handler_nbd handler_nbd)
add_test(NAME handler_nbd COMMAND test_handler_nbd)
set_tests_properties(handler_nbd PROPERTIES TIMEOUT 120)
