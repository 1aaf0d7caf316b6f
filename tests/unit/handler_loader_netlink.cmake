# Unit tests of handler_loader.c and netlink.c; included from tests/CMakeLists.txt.

# Builds of loader_test_handler.c, each keeping or breaking one rule of the
# handler contract. They use libc only; outside sanitizer builds (whose
# runtime they would need) the link proves it.
function(loader_test_module name)
  add_library(loader_test_${name} MODULE unit/loader_test_handler.c)
  set_target_properties(loader_test_${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/loader_test_modules)
  target_include_directories(loader_test_${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(loader_test_${name} PRIVATE _GNU_SOURCE ${ARGN})
  if(NOT TCMU_SANITIZE)
    target_link_options(loader_test_${name} PRIVATE -Wl,-z,defs)
  endif()
endfunction()

loader_test_module(good TEST_SUBTYPE="good")
loader_test_module(good_two TEST_SUBTYPE="goodtwo")
loader_test_module(duplicate TEST_SUBTYPE="good" TEST_NAME="duplicate")
loader_test_module(other_abi TEST_SUBTYPE="otherabi" TEST_ABI_VERSION=999)
loader_test_module(tiny_struct TEST_SUBTYPE="tiny" TEST_STRUCT_SIZE=8)
loader_test_module(older TEST_SUBTYPE="older"
  "TEST_STRUCT_SIZE=offsetof(struct tcmu_handler, unmap)")
loader_test_module(no_open TEST_SUBTYPE="noopen" TEST_OMIT_OPEN)
loader_test_module(load_fails TEST_SUBTYPE="loadfails" TEST_LOAD_FAILS)
loader_test_module(bad_subtype TEST_SUBTYPE="bad/subtype")
loader_test_module(no_init TEST_NO_INIT)
loader_test_module(init_null TEST_INIT_RETURNS_NULL)
# For test_dbus: a check_config that waits, as one waiting for a server does.
loader_test_module(check_waits TEST_SUBTYPE="checkwaits" TEST_CHECK_WAITS)
# Described by the section the build embeds, so listed without being
# loaded: whole; with a symbol nothing defines (its dlopen fails, as when a
# library it needs is missing); and under another's description (a stale
# build).
loader_test_module(lazy TEST_SUBTYPE="lazy")
tcmu_embed_handler_info(loader_test_lazy)
loader_test_module(lazy_unresolved TEST_SUBTYPE="lazy" TEST_UNRESOLVED)
set_property(TARGET loader_test_lazy_unresolved PROPERTY LINK_OPTIONS "")
tcmu_embed_handler_info(loader_test_lazy_unresolved FROM loader_test_lazy)
loader_test_module(lazy_stale TEST_SUBTYPE="stale")
tcmu_embed_handler_info(loader_test_lazy_stale FROM loader_test_lazy)

# Handlers built against handler_abi_v1.h, the layout of handler ABI
# version 1, as a daemon of a later version meets them: whole, and from
# before get_lba_status was appended.
foreach(module version_one version_one_older)
  add_library(loader_test_${module} MODULE unit/loader_test_v1_handler.c)
  set_target_properties(loader_test_${module} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/loader_test_modules)
  target_include_directories(loader_test_${module} PRIVATE ${PROJECT_SOURCE_DIR})
  if(NOT TCMU_SANITIZE)
    target_link_options(loader_test_${module} PRIVATE -Wl,-z,defs)
  endif()
endforeach()
target_compile_definitions(loader_test_version_one PRIVATE TEST_SUBTYPE="versionone")
target_compile_definitions(loader_test_version_one_older PRIVATE TEST_SUBTYPE="versiononeolder"
  "TEST_STRUCT_SIZE=offsetof(struct tcmu_handler_v1, get_lba_status)")

tcmu_add_unit_test(handler_loader)
foreach(module good good_two duplicate other_abi tiny_struct older no_open load_fails
        bad_subtype no_init init_null version_one version_one_older lazy lazy_unresolved
        lazy_stale)
  string(TOUPPER ${module} upper_module)
  target_compile_definitions(test_handler_loader PRIVATE
    TEST_MODULE_${upper_module}="$<TARGET_FILE:loader_test_${module}>")
  add_dependencies(test_handler_loader loader_test_${module})
endforeach()

# Defines the device.c functions netlink.c calls, so device.c stays out.
tcmu_add_unit_test(netlink)

