# Unit tests of dbus.c; included from tests/CMakeLists.txt. Each mode runs
# a private dbus-daemon (package dbus-daemon) and calls as nobody through
# gdbus (libglib2.0-bin); see the top of test_dbus.c.
add_executable(test_dbus unit/test_dbus.c)
# Whole archive, as the daemon: the handlers it loads use all of libtcmu.h.
target_link_libraries(test_dbus PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,tcmu_core>" PkgConfig::CMOCKA)
target_compile_definitions(test_dbus PRIVATE
  HANDLER_FILE_PATH="$<TARGET_FILE:handler_file>"
  HANDLER_ALLOC_PATH="$<TARGET_FILE:handler_alloc>"
  TCMU_POLICY_FILE="${PROJECT_SOURCE_DIR}/tcmu-runner.conf")
# The handlers it dlopens find the libtcmu.h API here before the libtcmu.so.1
# they name (the executable comes first in the lookup order), so they drive
# this core as they drive the daemon's.
target_link_options(test_dbus PRIVATE
  "-Wl,--dynamic-list=${TCMU_PUBLIC_DYNAMIC_LIST}")
add_dependencies(test_dbus handler_file handler_alloc)
foreach(mode open policy nobus)
  add_test(NAME dbus_${mode} COMMAND test_dbus ${mode})
  set_tests_properties(dbus_${mode} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()
