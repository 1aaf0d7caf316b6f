# Installation and the Debian package, included at the end of the top-level
# CMakeLists.txt, so that it installs every handler defined there.

# The daemon, dbus-daemon, systemd and logrotate read these places whatever
# the install prefix is, so they are absolute; DESTDIR still applies.
set(TCMU_CONFIG_DIR "/etc/tcmu")	# main.c reads /etc/tcmu/tcmu.conf
set(TCMU_DBUS_POLICY_DIR "/usr/share/dbus-1/system.d"
    CACHE PATH "Where the system bus reads the D-Bus policy tcmu-runner.conf")
set(TCMU_DBUS_SERVICE_DIR "/usr/share/dbus-1/system-services"
    CACHE PATH "Where the system bus finds the activation file")
set(TCMU_SYSTEMD_UNIT_DIR "/lib/systemd/system"
    CACHE PATH "Where systemd finds tcmu-runner.service")
set(TCMU_LOGROTATE_DIR "/etc/logrotate.d" CACHE PATH "logrotate's configuration directory")

set(TCMU_DAEMON_PATH "${CMAKE_INSTALL_FULL_BINDIR}/tcmu-runner")
configure_file(dist/tcmu-runner.service.in tcmu-runner.service @ONLY)
configure_file(dist/org.kernel.TCMUService1.service.in org.kernel.TCMUService1.service @ONLY)
configure_file(dist/libtcmu.pc.in libtcmu.pc @ONLY)

# Where the dynamic linker does not look by itself (/usr/local/lib/<arch>
# is in ld.so.conf but needs an ldconfig run first), the installed daemon
# and handlers carry the path to libtcmu; a /usr install needs none.
if(NOT CMAKE_INSTALL_FULL_LIBDIR IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
  set(tcmu_install_rpath ${CMAKE_INSTALL_FULL_LIBDIR})
endif()
install(TARGETS tcmu LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set_target_properties(tcmu-runner PROPERTIES INSTALL_RPATH "${tcmu_install_rpath}")
install(TARGETS tcmu-runner tcmu-admin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Every handler_<subtype> module that CMakeLists.txt defines.
get_property(tcmu_directory_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
foreach(target IN LISTS tcmu_directory_targets)
  if(target MATCHES "^handler_")
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "${tcmu_install_rpath}")
    install(TARGETS ${target} LIBRARY DESTINATION ${TCMU_HANDLER_DIR})
  endif()
endforeach()

# For handlers built outside this tree: the header and its pkg-config file
# (libtcmu.so, the link-time name, comes with the library above).
install(FILES libtcmu.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/libtcmu.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES tcmu.conf DESTINATION ${TCMU_CONFIG_DIR})
install(FILES tcmu-runner.conf DESTINATION ${TCMU_DBUS_POLICY_DIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/org.kernel.TCMUService1.service
        DESTINATION ${TCMU_DBUS_SERVICE_DIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tcmu-runner.service dist/run-tcmu-alloc.mount
        DESTINATION ${TCMU_SYSTEMD_UNIT_DIR})
install(FILES dist/tcmu-runner.logrotate DESTINATION ${TCMU_LOGROTATE_DIR}
        RENAME tcmu-runner)
install(FILES man/tcmu-runner.8 man/tcmu-scripts.8 man/tcmu-admin.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# `cpack -G DEB` in the build directory. Configure with
# -DCMAKE_INSTALL_PREFIX=/usr for a package that follows Debian's layout:
# the package installs where the daemon was built to look.
set(CPACK_PACKAGE_NAME tcmu-runner)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tcmu-runner maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "userspace backstores for the Linux SCSI target (LIO target_core_user)")
set(CPACK_PACKAGE_DESCRIPTION
    "tcmu-runner serves LIO user:<subtype> backstores from userspace through the
kernel's TCMU ring, with the alloc (memory) and file handlers, a D-Bus service
that lets targetcli create and check them, and libtcmu, the library, header
and pkg-config file that third-party handlers build against.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dbus, targetcli-fb")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "open-iscsi, logrotate")
find_program(TCMU_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(TCMU_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libc6, libglib2.0-0, libkmod2, libnl-3-200, libnl-genl-3-200, liburing2")
endif()
# A shlibs file, so that packages of third-party handlers depend on this one.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
configure_file(dist/deb/conffiles.in deb/conffiles @ONLY)
foreach(script postinst prerm postrm)
  file(COPY dist/deb/${script} DESTINATION deb
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
endforeach()
# libc-bin's ldconfig trigger, as dh_makeshlibs adds for a package with a
# shared library: the dynamic linker's cache learns of libtcmu.so.1.
file(COPY dist/deb/triggers DESTINATION deb)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_BINARY_DIR}/deb/conffiles ${CMAKE_CURRENT_BINARY_DIR}/deb/postinst
    ${CMAKE_CURRENT_BINARY_DIR}/deb/prerm ${CMAKE_CURRENT_BINARY_DIR}/deb/postrm
    ${CMAKE_CURRENT_BINARY_DIR}/deb/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
