# rlog_pc_file(NAME): configures cmake/NAME.pc.in into the build tree and
# installs it into <libdir>/pkgconfig. Relocatable when the libdir and
# includedir are relative (inside the prefix): prefix is computed from the
# .pc file's own directory — ${pcfiledir}/../.. for lib/pkgconfig,
# ${pcfiledir}/../../.. for a multiarch lib/x86_64-linux-gnu/pkgconfig — so
# DESTDIR staging and `cmake --install --prefix` both give working files.
# With an absolute libdir or includedir the configured paths are used.
# Needs GNUInstallDirs and PROJECT_VERSION. Used by CMakeLists.txt and by
# the install test (cmake/install_test.cmake) for a multiarch libdir.
set(RLOG_PC_TEMPLATES ${CMAKE_CURRENT_LIST_DIR})
set(RLOG_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(RLOG_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(RLOG_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(RLOG_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH rlog_pc_up "/root/${RLOG_PC_DIR}" "/root")
  string(REGEX REPLACE "/$" "" rlog_pc_up "${rlog_pc_up}")
  set(RLOG_PC_PREFIX "\${pcfiledir}/${rlog_pc_up}")
  set(RLOG_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(RLOG_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
function(rlog_pc_file name)
  configure_file(${RLOG_PC_TEMPLATES}/${name}.pc.in ${PROJECT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${name}.pc DESTINATION ${RLOG_PC_DIR})
endfunction()
