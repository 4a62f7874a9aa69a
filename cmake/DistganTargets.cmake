# Shared settings for every distgan target: warnings, and one precompiled LibTorch header that
# all targets reuse (each TU that includes torch/torch.h otherwise costs ~25 s to compile here).

function(distgan_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# The PCH owner: an object library compiled with exactly the flags the other targets use.
add_library(distgan_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/pch.cpp)
target_link_libraries(distgan_pch PUBLIC distgan_torch)
target_precompile_headers(distgan_pch PRIVATE <torch/torch.h>)
distgan_warnings(distgan_pch)
set_target_properties(distgan_pch PROPERTIES POSITION_INDEPENDENT_CODE OFF)

# Uses LibTorch and the shared precompiled header.
function(distgan_use_torch target)
  target_link_libraries(${target} PUBLIC distgan_torch)
  target_precompile_headers(${target} REUSE_FROM distgan_pch)
endfunction()

# Runs a test binary on NP MPI ranks through mpiexec, as ctest test NAME.
function(distgan_add_mpi_test name)
  cmake_parse_arguments(T "" "NP;TARGET" "LABELS;ARGS" ${ARGN})
  set(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1)
  add_test(NAME ${name}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP} --oversubscribe ${MPIEXEC_PREFLAGS}
            $<TARGET_FILE:${T_TARGET}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" ENVIRONMENT "${env}" PROCESSORS ${T_NP}
                       TIMEOUT 300)
endfunction()
