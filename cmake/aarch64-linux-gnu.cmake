# CMake toolchain file: cross-compile entrollm for 64-bit ARM Linux (aarch64)
# with Debian's cross compiler and the arm64 -dev packages of its dependencies
# installed through multiarch (dpkg --add-architecture arm64).
#
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# scripts/test-arm.sh installs what this needs, builds and runs the tests
# under qemu-user; docs/DEVELOPING.md ("ARM") explains.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(ELLM_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${ELLM_CROSS_TRIPLE}-gcc)
set(CMAKE_AR ${ELLM_CROSS_TRIPLE}-ar CACHE FILEPATH "Archiver")
set(CMAKE_RANLIB ${ELLM_CROSS_TRIPLE}-ranlib CACHE FILEPATH "Ranlib")
set(CMAKE_STRIP ${ELLM_CROSS_TRIPLE}-strip CACHE FILEPATH "Strip")

# Debian multiarch: the arm64 libraries live beside the host's under /usr, in
# /usr/lib/aarch64-linux-gnu, and the cross gcc already searches there. The
# sysroot stays "/"; pkg-config must only see the arm64 .pc files (the host's
# ones would hand out x86-64 link lines).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${ELLM_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# Programs from the build host; libraries and headers for the target.
set(CMAKE_FIND_ROOT_PATH /usr/${ELLM_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# -march=native means the build machine's CPU: meaningless for a cross build
# (and x86 gcc's answer would not be aarch64's). ARMv8-A is the baseline every
# 64-bit ARM board runs (NEON kernels with SMULL/SADALP); with
# -DELLM_ARM_MARCH=armv8.2-a+dotprod (Cortex-A55/A76 and later, Apple, Graviton2)
# the integer kernels use SDOT. The flag is read when a build directory is
# first configured: use a new directory per -march (scripts/test-arm.sh does).
set(ELLM_NATIVE OFF CACHE BOOL "No -march=native when cross-compiling" FORCE)
set(ELLM_ARM_MARCH "armv8-a" CACHE STRING "aarch64 -march for the cross build")
set(CMAKE_C_FLAGS_INIT "-march=${ELLM_ARM_MARCH}")

# ctest runs the test executables through qemu-user. The arm64 loader and
# libraries are installed natively through multiarch, so qemu needs no -L.
# Override with -DCMAKE_CROSSCOMPILING_EMULATOR=... (e.g. "qemu-aarch64;-cpu;max").
find_program(ELLM_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(ELLM_QEMU_AARCH64 AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ELLM_QEMU_AARCH64} CACHE STRING "Runs aarch64 test executables")
endif()

# GCC 12.2 (Debian bookworm's cross compiler) crashes when -O3 vectorises a
# double fmax() reduction of widened floats, the "largest difference" loop of
# several tests (internal compiler error in vect_transform_reduction; 12.2 on
# x86-64 is fine; -O2 or -fno-tree-loop-vectorize avoid it). The tests gain
# nothing from loop vectorisation, so it is switched off for test sources only
# and the library keeps -O3 as on every other target. Source properties are
# directory-scoped: this file is read inside project() in the top directory.
execute_process(COMMAND ${CMAKE_C_COMPILER} -dumpfullversion
  OUTPUT_VARIABLE ELLM_CROSS_GCC_VERSION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(ELLM_CROSS_GCC_VERSION VERSION_LESS 12.3 AND EXISTS ${CMAKE_SOURCE_DIR}/src)
  file(GLOB ELLM_CROSS_TEST_SOURCES ${CMAKE_SOURCE_DIR}/src/*/test_*.c)
  set_source_files_properties(${ELLM_CROSS_TEST_SOURCES} PROPERTIES COMPILE_OPTIONS -fno-tree-loop-vectorize)
endif()
