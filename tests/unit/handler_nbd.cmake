# The nbd handler against real nbdkit servers: the test plays the core's
# ring thread (accessors, completions and the loop over watched fds), so it
# links neither the core nor handler_harness.c.
tcmu_add_unit_test(handler_nbd SOURCES unit/handler_nbd_fixture.c
  LIBRARIES ${CMAKE_DL_LIBS} PROPERTIES TIMEOUT 120)
target_compile_definitions(test_handler_nbd PRIVATE _GNU_SOURCE
  HANDLER_NBD_PATH="$<TARGET_FILE:handler_nbd>")
target_include_directories(test_handler_nbd PRIVATE ${PROJECT_SOURCE_DIR})
set_target_properties(test_handler_nbd PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(test_handler_nbd handler_nbd)
