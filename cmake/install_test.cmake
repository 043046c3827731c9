# ctest install_test: installs the build into a scratch prefix (cmake
# --install --prefix, as `make install PREFIX=...` does), then builds
# examples/quickstart.c against the installed copy twice — through
# pkg-config (rlog.pc) and through find_package(rlog) with rlog::rlog and
# rlog::rlog_static — and runs each program. Fails on the first step that
# fails, printing its output.
# The same rlog.pc is also generated for a multiarch libdir
# (lib/x86_64-linux-gnu) and checked with pkg-config and a program.
#   cmake -DBUILD_DIR=.. -DSOURCE_DIR=.. -DLIBDIR=.. -DC_COMPILER=.. -DRLOG_VERSION=..
#         [-DEXTRA_FLAGS="-fsanitize=..."] -P install_test.cmake
# (EXTRA_FLAGS: compile/link flags the programs need, e.g. a sanitized
# library's.)
set(root ${BUILD_DIR}/tmp/install_test)
file(REMOVE_RECURSE ${root})
file(MAKE_DIRECTORY ${root})
set(prefix ${root}/prefix)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 240)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_test: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "install_test: ${what}: ok")
endfunction()

step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/rlog/log.h ${LIBDIR}/pkgconfig/rlog.pc ${LIBDIR}/cmake/rlog/rlogConfig.cmake
          ${LIBDIR}/cmake/rlog/rlogTargets.cmake bin/rlog share/man/man1/rlog.1)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install_test: ${prefix}/${f} was not installed")
  endif()
endforeach()

# pkg-config: compile and link flags of the installed rlog.pc only. With
# PKG_CONFIG_PATH at pcdir, `pkg-config --cflags --libs rlog` must name
# ${pfx}/include and ${pfx}/${libdir}; quickstart.c built with those flags
# alone (as ${tag}) must run.
find_program(PKG_CONFIG pkg-config REQUIRED)
function(pc_quickstart tag pcdir pfx libdir)
  set(ENV{PKG_CONFIG_PATH} ${pcdir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs rlog OUTPUT_VARIABLE flags
                  RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REGEX MATCH "-I([^ ]+)" inc "${flags}")
  file(REAL_PATH "${CMAKE_MATCH_1}" inc_real)
  string(REGEX MATCH "-L([^ ]+)" lib "${flags}")
  file(REAL_PATH "${CMAKE_MATCH_1}" lib_real)
  if(NOT rc EQUAL 0 OR NOT inc_real STREQUAL "${pfx}/include"
     OR NOT lib_real STREQUAL "${pfx}/${libdir}")
    message(FATAL_ERROR "install_test: pkg-config rlog (${tag}) gave '${flags}' (rc ${rc}): the "
                        "include and library directories must be ${pfx}/include and "
                        "${pfx}/${libdir}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags} ${EXTRA_FLAGS}")
  step("cc quickstart.c $(pkg-config --cflags --libs rlog) (${tag})"
       ${C_COMPILER} -std=c11 -o ${root}/quickstart_${tag} ${SOURCE_DIR}/examples/quickstart.c
       ${flags})
  set(ENV{LD_LIBRARY_PATH} ${pfx}/${libdir})
  step("run quickstart (${tag} build)" ${root}/quickstart_${tag} ${root}/log_${tag})
endfunction()
pc_quickstart(pc ${prefix}/${LIBDIR}/pkgconfig ${prefix} ${LIBDIR})

# The same rlog.pc generated for a Debian multiarch libdir
# (lib/x86_64-linux-gnu, three levels below the prefix), installed with the
# headers and the shared library into a second prefix: pkg-config must still
# give the right directories and a program must link and run.
set(ma lib/x86_64-linux-gnu)
set(prefix2 ${root}/prefix-multiarch)
file(MAKE_DIRECTORY ${root}/pc)
file(WRITE ${root}/pc/CMakeLists.txt "cmake_minimum_required(VERSION 3.25)
project(rlog VERSION ${RLOG_VERSION} LANGUAGES NONE)
include(GNUInstallDirs)
include(${SOURCE_DIR}/cmake/rlogPkgConfig.cmake)
rlog_pc_file(rlog)
")
step("configure rlog.pc for ${ma}" ${CMAKE_COMMAND} -S ${root}/pc -B ${root}/pc/build
     -DCMAKE_INSTALL_LIBDIR=${ma})
step("install rlog.pc for ${ma}" ${CMAKE_COMMAND} --install ${root}/pc/build --prefix ${prefix2})
file(COPY ${prefix}/include DESTINATION ${prefix2})
file(GLOB libs ${prefix}/${LIBDIR}/librlog.so*)
file(COPY ${libs} DESTINATION ${prefix2}/${ma})
pc_quickstart(ma ${prefix2}/${ma}/pkgconfig ${prefix2} ${ma})
set(ENV{LD_LIBRARY_PATH} ${prefix}/${LIBDIR})

# CMake: find_package(rlog) from the scratch prefix
file(MAKE_DIRECTORY ${root}/consumer)
file(COPY ${SOURCE_DIR}/examples/quickstart.c DESTINATION ${root}/consumer)
file(WRITE ${root}/consumer/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(rlog 0.1 REQUIRED)
add_executable(quickstart_shared quickstart.c)
target_link_libraries(quickstart_shared PRIVATE rlog::rlog)
add_executable(quickstart_static quickstart.c)
target_link_libraries(quickstart_static PRIVATE rlog::rlog_static)
]=])
step("cmake configure (find_package(rlog))" ${CMAKE_COMMAND} -S ${root}/consumer
     -B ${root}/consumer/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
     "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
step("cmake build" ${CMAKE_COMMAND} --build ${root}/consumer/build)
step("run quickstart (rlog::rlog)" ${root}/consumer/build/quickstart_shared ${root}/log_shared)
step("run quickstart (rlog::rlog_static)" ${root}/consumer/build/quickstart_static
     ${root}/log_static)
file(REMOVE_RECURSE ${root})
