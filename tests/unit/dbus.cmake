# Unit tests of dbus.c; included from tests/CMakeLists.txt. Each mode runs
# a private dbus-daemon (package dbus-daemon) and calls as nobody through
# gdbus (libglib2.0-bin); see the top of test_dbus.c.
# It loads the real handlers, which bring libtcmu.so.1: it runs on that
# core, as the daemon does (a static copy besides would be a second core),
# with config_str.c, a pure parser, of its own.
add_executable(test_dbus unit/test_dbus.c ${PROJECT_SOURCE_DIR}/core/config_str.c)
target_link_libraries(test_dbus PRIVATE tcmu PkgConfig::GIO PkgConfig::CMOCKA)
target_compile_definitions(test_dbus PRIVATE
  HANDLER_FILE_PATH="$<TARGET_FILE:handler_file>"
  HANDLER_ALLOC_PATH="$<TARGET_FILE:handler_alloc>"
  TCMU_POLICY_FILE="${PROJECT_SOURCE_DIR}/tcmu-runner.conf")
add_dependencies(test_dbus handler_file handler_alloc)
foreach(mode open policy nobus)
  add_test(NAME dbus_${mode} COMMAND test_dbus ${mode})
  set_tests_properties(dbus_${mode} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()
