# Unit tests of dbus.c; included from tests/CMakeLists.txt. Each mode runs
# a private dbus-daemon (package dbus-daemon) and calls as nobody through
# gdbus (libglib2.0-bin); see the top of test_dbus.c and dbus_fixture.c.
# It loads the real handlers, which bring libtcmu.so.1: it runs on that
# core, as the daemon does (a static copy besides would be a second core),
# with config_str.c, a pure parser, of its own.
tcmu_add_unit_test(dbus SOURCES unit/dbus_fixture.c ${PROJECT_SOURCE_DIR}/core/config_str.c
  LIBRARIES tcmu PkgConfig::GIO
  MODES open policy nobus
  PROPERTIES SKIP_RETURN_CODE 77)
target_compile_definitions(test_dbus PRIVATE
  HANDLER_FILE_PATH="$<TARGET_FILE:handler_file>"
  HANDLER_ALLOC_PATH="$<TARGET_FILE:handler_alloc>"
  HANDLER_CHECK_WAITS_PATH="$<TARGET_FILE:loader_test_check_waits>"
  TCMU_POLICY_FILE="${PROJECT_SOURCE_DIR}/tcmu-runner.conf")
add_dependencies(test_dbus handler_file handler_alloc loader_test_check_waits)
